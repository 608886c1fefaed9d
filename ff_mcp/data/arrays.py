"""User data as a Dataset: checks rows, features and labels, and says exactly what is wrong.

Inputs may be torch tensors, numpy arrays or nested Python lists (as they arrive from JSON).
Tensors keep their device; everything else becomes a CPU tensor. x values must be finite as
float32 (|v| < 3.4e38).
"""

from __future__ import annotations

import logging
import numbers
from typing import Any

import numpy as np
import torch

from ff_mcp.data.base import Dataset

logger = logging.getLogger(__name__)


def from_arrays(
    x: Any,
    y: Any,
    num_classes: int | None = None,
    x_test: Any = None,
    y_test: Any = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    name: str = "arrays",
) -> Dataset:
    """Return a Dataset from x (N, D) features and y (N,) integer labels in [0, num_classes).

    num_classes defaults to max label + 1. Without x_test/y_test, a seeded random `test_fraction`
    of the rows (at least one, never all) is held out; rows keep their input order within each split.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    features = as_feature_matrix(x, "x")
    labels = as_labels(y, "y")
    if labels.shape[0] != features.shape[0]:
        raise ValueError(f"y has {labels.shape[0]} labels but x has {features.shape[0]} rows")
    if features.shape[0] < 2:
        raise ValueError(f"x must have at least 2 rows, got {features.shape[0]}")
    if (x_test is None) != (y_test is None):
        raise ValueError("x_test and y_test must be given together")

    test_features = test_labels = None
    if x_test is not None:
        test_features = as_feature_matrix(x_test, "x_test")
        test_labels = as_labels(y_test, "y_test")
        if test_features.shape[1] != features.shape[1]:
            raise ValueError(f"x_test rows must have {features.shape[1]} features, got {test_features.shape[1]}")
        if test_labels.shape[0] != test_features.shape[0]:
            raise ValueError(f"y_test has {test_labels.shape[0]} labels but x_test has {test_features.shape[0]} rows")
        if test_features.shape[0] < 1:
            raise ValueError("x_test must have at least 1 row, got 0")

    num_classes = _checked_num_classes(num_classes, labels, test_labels)
    _check_label_range(labels, num_classes, "")
    if test_labels is not None:
        _check_label_range(test_labels, num_classes, " of y_test")

    if test_features is None:
        if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real) or not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        train_rows, test_rows = split_rows(features.shape[0], float(test_fraction), seed)
        x_train, y_train = features[train_rows.to(features.device)], labels[train_rows.to(labels.device)]
        x_held, y_held = features[test_rows.to(features.device)], labels[test_rows.to(labels.device)]
        source = f"user arrays: {features.shape[0]} rows, seeded split test_fraction={test_fraction}, seed={seed}"
    else:
        x_train, y_train = features.clone(), labels.clone()
        x_held, y_held = test_features.clone(), test_labels.clone()
        source = f"user arrays: {features.shape[0]} train rows, {test_features.shape[0]} test rows given"
    logger.debug("%s: %d train, %d test rows, %d classes", name, len(y_train), len(y_held), num_classes)
    return Dataset(
        name=name,
        x_train=x_train.contiguous(),
        y_train=y_train.contiguous(),
        x_test=x_held.contiguous(),
        y_test=y_held.contiguous(),
        num_classes=num_classes,
        image_shape=None,
        source=source,
    )


def validate_features(x: Any, in_features: int) -> torch.Tensor:
    """Return x as a (N, in_features) float32 tensor for prediction; ValueError saying what is wrong."""
    if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
        raise ValueError(f"in_features must be a positive int, got {in_features!r}")
    try:
        features = as_feature_matrix(x, "x")
    except ValueError as err:
        if _shape_of(x) == (in_features,):
            raise ValueError(f"{err}; wrap a single row in a list: [row]") from err
        raise
    if features.shape[1] != in_features:
        raise ValueError(f"x rows must have {in_features} features, got {features.shape[1]}")
    return features


def split_rows(n: int, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (train_rows, test_rows): sorted int64 indices, a seeded random round(n * test_fraction) held out."""
    n_test = min(max(round(n * test_fraction), 1), n - 1)  # at least one row on each side
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    return order[n_test:].sort().values, order[:n_test].sort().values


def as_feature_matrix(values: Any, what: str) -> torch.Tensor:
    """Return `values` as a 2-D float32 tensor with finite entries; errors name `what`, the row and the column."""
    tensor = _as_tensor(values, what)
    if tensor.dim() != 2:
        raise ValueError(f"{what} must be 2-D (rows, features), got shape {tuple(tensor.shape)}")
    if tensor.shape[1] < 1:
        raise ValueError(f"{what} must have at least 1 feature, got shape {tuple(tensor.shape)}")
    if tensor.is_complex():
        raise ValueError(f"{what} must hold real numbers, got {tensor.dtype}")
    tensor = tensor.detach().to(torch.float32)
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        row, column = (int(i) for i in (~finite).nonzero()[0])
        raise ValueError(f"{what} contains NaN or inf at row {row}, column {column}")
    return tensor


def as_labels(values: Any, what: str) -> torch.Tensor:
    """Return `values` as a 1-D int64 tensor; integral floats (3.0) are accepted, anything else is an error."""
    tensor = _as_tensor(values, what)
    if tensor.dim() != 1:
        raise ValueError(f"{what} must be 1-D (one label per row), got shape {tuple(tensor.shape)}")
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise ValueError(f"{what} must hold integer class labels, got {tensor.dtype}")
    tensor = tensor.detach()
    if tensor.is_floating_point():
        integral = torch.isfinite(tensor) & (tensor == tensor.round())
        if not bool(integral.all()):
            row = int((~integral).nonzero()[0, 0])
            raise ValueError(f"label {float(tensor[row])} at row {row} of {what} is not an integer")
    return tensor.to(torch.int64)


def _as_tensor(values: Any, what: str) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values
    if values is None:
        raise ValueError(f"{what} is missing (got None)")
    if isinstance(values, (list, tuple)):
        _check_rectangular(values, what)
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{what} must be a rectangular array of numbers: {err}") from err
    if array.dtype.kind not in "biuf":
        raise ValueError(_first_non_number(values, array, what))
    if array.dtype.kind == "u" and array.dtype.itemsize > 1:
        array = array.astype(np.int64)  # torch lacks most unsigned types
    return torch.from_numpy(np.ascontiguousarray(array))


def _check_rectangular(rows: list | tuple, what: str) -> None:
    """Raise naming the first ragged row of a nested list; one level deep, numpy reports deeper ones."""
    if not rows:
        return
    first = _row_length(rows[0])
    for index, row in enumerate(rows):
        length = _row_length(row)
        if length == first:
            continue
        if first is None or length is None:
            kinds = ("a number" if first is None else "a sequence", "a number" if length is None else "a sequence")
            raise ValueError(f"{what} mixes numbers and rows: row 0 is {kinds[0]} but row {index} is {kinds[1]}")
        raise ValueError(f"{what} is ragged: row {index} has {length} values but row 0 has {first}")


def _row_length(row: Any) -> int | None:
    if isinstance(row, (str, bytes)):
        return None
    try:
        return len(row)
    except TypeError:
        return None


def _shape_of(values: Any) -> tuple[int, ...] | None:
    if isinstance(values, torch.Tensor):
        return tuple(values.shape)
    try:
        return np.shape(values)
    except (ValueError, TypeError):
        return None


def _first_non_number(values: Any, array: np.ndarray, what: str) -> str:
    found = _find_non_number(values, ())
    if found is None:
        return f"{what} must hold numbers, got dtype {array.dtype}"
    position, value = found
    where = ", ".join(f"{axis} {i}" for axis, i in zip(("row", "column", "index"), position)) or "top level"
    return f"{what} must hold numbers; found {value!r} at {where}"


def _find_non_number(values: Any, position: tuple[int, ...]) -> tuple[tuple[int, ...], Any] | None:
    """Return (position, value) of the first element that is not a real number, walking the input as given."""
    if isinstance(values, np.ndarray):
        values = values.tolist()  # np.str_('a') -> 'a', so messages show plain values
    if isinstance(values, (list, tuple)):
        for index, item in enumerate(values):
            found = _find_non_number(item, (*position, index))
            if found is not None:
                return found
        return None
    if isinstance(values, numbers.Real):
        return None
    return position, values


def _checked_num_classes(num_classes: int | None, labels: torch.Tensor, test_labels: torch.Tensor | None) -> int:
    if num_classes is None:
        largest = int(labels.max())
        if test_labels is not None and test_labels.numel():
            largest = max(largest, int(test_labels.max()))
        if largest + 1 < 2:
            raise ValueError(
                f"need at least 2 classes, but the largest label is {largest} (num_classes defaults to max label + 1)"
            )
        return largest + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    return int(num_classes)


def _check_label_range(labels: torch.Tensor, num_classes: int, of_what: str) -> None:
    outside = (labels < 0) | (labels >= num_classes)
    if bool(outside.any()):
        row = int(outside.nonzero()[0, 0])
        raise ValueError(f"label {int(labels[row])} at row {row}{of_what} is out of range [0, {num_classes})")
