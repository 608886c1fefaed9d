"""Label embedding: how a supervised FF net sees the label beside the data.

- ``overlay``: the first K inputs are replaced by ``strength * onehot(y)`` (Hinton's Matlab
  ``data(:, 1:10) = labelstrength * targets``; loeweX). The input width stays D.
- ``concat``: ``[strength * onehot(y), x]`` (fflib, nebuly). The input width becomes K + D.
- ``none``: no label (unsupervised FF, e.g. hybrid-image negatives).

The neutral label is 1/K in every label slot (Matlab's "all 10 label pixels = 0.1").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LABEL_MODES = ("overlay", "concat", "none")


@dataclass(frozen=True)
class LabelEmbedding:
    mode: str
    num_classes: int
    strength: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in LABEL_MODES:
            raise ValueError(f"label_mode must be one of {list(LABEL_MODES)}, got {self.mode!r}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")

    def input_width(self, data_width: int) -> int:
        """Width of the embedded rows fed to the first layer."""
        if self.mode == "overlay" and data_width <= self.num_classes:
            raise ValueError(
                f"label_mode 'overlay' needs more than num_classes={self.num_classes} features, "
                f"got {data_width}; use label_mode 'concat'"
            )
        return data_width + self.num_classes if self.mode == "concat" else data_width

    def embed(self, x: torch.Tensor, label_code: torch.Tensor | None) -> torch.Tensor:
        """x: (B, D), label_code: (B, K) float (one-hot or neutral) -> (B, D') embedded rows."""
        if self.mode == "none" or label_code is None:
            return x
        code = self.strength * label_code.to(x.dtype)
        if self.mode == "concat":
            return torch.cat([code, x], dim=1)
        return torch.cat([code, x[:, self.num_classes :]], dim=1)

    def one_hot(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """y: (B,) int64 -> (B, K) one-hot."""
        return torch.nn.functional.one_hot(y, self.num_classes).to(dtype)

    def neutral(self, rows: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """(rows, K) filled with 1/K."""
        return torch.full((rows, self.num_classes), 1.0 / self.num_classes, dtype=dtype, device=device)

    def embed_labels(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.embed(x, self.one_hot(y, x.dtype))

    def embed_neutral(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x, self.neutral(x.shape[0], x.dtype, x.device))

    def strip(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D') embedded -> (B, D'-K) the data part without the label slots (label-free width)."""
        if self.mode == "none":
            return x
        return x[:, self.num_classes :]


@dataclass
class LabeledRows:
    """Rows that differ only in their label slots, stored once.

    Row ``g * B + r`` of the batch is ``base[r]`` with label ``labels[g * B + r]`` in its first K
    entries: ``strength * onehot(label)``, or the neutral code (``strength / K`` everywhere) where
    the label is -1. Positives, negatives that reuse the positives' data with another label, and
    neutral rows are G copies of the same B data rows, so the fused first layer computes
    ``base @ W^T`` once and adds each row's label column (engine/fused.py); anything else calls
    ``materialize``.

    base: (B, D') embedded rows whose K label slots are zero; labels: (G*B,) int64 in [-1, K).
    """

    base: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    strength: float

    NEUTRAL = -1

    @property
    def shape(self) -> tuple[int, int]:
        return (self.labels.shape[0], self.base.shape[1])

    @property
    def groups(self) -> int:
        return self.labels.shape[0] // self.base.shape[0]

    def codes(self) -> torch.Tensor:
        """(G*B, K) the label codes, strength included."""
        k = self.num_classes
        codes = torch.full((self.labels.shape[0], k), self.strength / k, dtype=self.base.dtype, device=self.base.device)
        labelled = self.labels >= 0
        codes[labelled] = self.strength * torch.nn.functional.one_hot(self.labels[labelled], k).to(codes.dtype)
        return codes

    def materialize(self) -> torch.Tensor:
        """(G*B, D') the rows themselves."""
        rows = self.base.repeat(self.groups, 1)
        rows[:, : self.num_classes] = self.codes()
        return rows

    def __getitem__(self, index) -> torch.Tensor:
        return self.materialize()[index]
