"""The Dataset every loader returns, and the error raised when data files are missing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are in none of the searched places; the message names the files and every place."""

    def __init__(
        self, message: str, *, name: str = "", missing_files: Sequence[str] = (), searched: Sequence[str] = ()
    ):
        super().__init__(message)
        self.name = name
        self.missing_files = list(missing_files)
        self.searched = list(searched)


# eq=False: comparing tensors with == is elementwise, so identity is the only sane equality here.
@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification data set as tensors: x (N, D) float32, y (N,) int64, plus a held-out test split."""

    name: str
    x_train: torch.Tensor  # (N, D) float32
    y_train: torch.Tensor  # (N,) int64
    x_test: torch.Tensor  # (M, D) float32
    y_test: torch.Tensor  # (M,) int64
    num_classes: int
    image_shape: tuple[int, ...] | None  # (28, 28) MNIST/Fashion, (8, 8) digits, None for mnist1d/user arrays
    source: str  # where it was found / how it was generated
    # the user's label of each class index when their labels were not 0..K-1 ({3, 7} -> (3, 7)); None: identity
    label_values: tuple[int, ...] | None = None
    warnings: tuple[str, ...] = ()  # what the data checks noticed but did not refuse (ff_mcp/data/checks.py)

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.x_train, self.y_train), ("test", self.x_test, self.y_test)):
            if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.dtype != torch.float32:
                raise ValueError(f"x_{split} must be a 2-D float32 tensor, got {_describe(x)}")
            if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.dtype != torch.int64:
                raise ValueError(f"y_{split} must be a 1-D int64 tensor, got {_describe(y)}")
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"y_{split} has {y.shape[0]} labels but x_{split} has {x.shape[0]} rows")
        if self.x_train.shape[1] != self.x_test.shape[1]:
            raise ValueError(
                f"x_test rows must have {self.x_train.shape[1]} features like x_train, got {self.x_test.shape[1]}"
            )
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {self.num_classes!r}")
        if self.label_values is not None and len(self.label_values) != self.num_classes:
            raise ValueError(f"label_values must name all {self.num_classes} classes, got {self.label_values}")
        if self.image_shape is not None and math.prod(self.image_shape) != self.x_train.shape[1]:
            raise ValueError(f"image_shape {self.image_shape} does not hold {self.x_train.shape[1]} features")

    @property
    def in_features(self) -> int:
        """Number of features per row (D)."""
        return int(self.x_train.shape[1])

    @property
    def train_size(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def test_size(self) -> int:
        return int(self.x_test.shape[0])

    def head(self, limit_train: int | None = None, limit_test: int | None = None) -> Dataset:
        """Return a copy keeping the first `limit_train` / `limit_test` rows (None keeps all); deterministic."""
        n_train = checked_limit("limit_train", limit_train, self.train_size)
        n_test = checked_limit("limit_test", limit_test, self.test_size)
        if n_train == self.train_size and n_test == self.test_size:
            return self
        # clone: a slice would keep the full storage alive.
        return replace(
            self,
            x_train=self.x_train[:n_train].clone(),
            y_train=self.y_train[:n_train].clone(),
            x_test=self.x_test[:n_test].clone(),
            y_test=self.y_test[:n_test].clone(),
        )

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={self.train_size}, test={self.test_size}, "
            f"in_features={self.in_features}, num_classes={self.num_classes}, "
            f"image_shape={self.image_shape}, source={self.source!r})"
        )


@dataclass(frozen=True)
class DatasetInfo:
    """What `list_datasets` knows about one data set without loading it."""

    name: str
    available: bool
    location: str | None  # the directory found, or how the data is produced; None when unavailable
    searched: list[str] = field(default_factory=list)  # directories looked at, in order (file-based sets only)
    num_classes: int = 0
    in_features: int = 0
    train_size: int = 0
    test_size: int = 0
    image_shape: tuple[int, ...] | None = None
    description: str = ""
    detail: str | None = None  # why it is unavailable, in one sentence
    data_kind: str = "rows"  # rows | graph (node classification: sizes count nodes)
    nodes: int = 0  # graphs: all nodes (train_size / val_size / test_size: the split's labelled nodes)
    val_size: int = 0  # graphs: the standard split's validation nodes


def checked_limit(what: str, limit: int | None, size: int) -> int:
    if limit is None:
        return size
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"{what} must be a positive int or None, got {limit!r}")
    return min(limit, size)


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dim()}-D {value.dtype} tensor of shape {tuple(value.shape)}"
    return type(value).__name__
