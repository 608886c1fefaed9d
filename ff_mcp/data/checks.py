"""Checks of user data before training, in one place: ``ff_train`` on rows (the MCP server, and the
Clojure bridge over stdio) calls it; the CLI trains on named data sets, which need none; Python API
users call it in place of ``from_arrays`` to get the same checks and label mapping.

``checked_arrays(x, y)`` refuses what cannot train, with a message that says what to do: one class
only, fewer than two rows of a class, a class with no training row after the split, NaN or inf
(``from_arrays``). Labels that are not 0..K-1 ({3, 7}, {-1, 1}) are mapped to class indices, and the
mapping travels with the model (``label_values`` in the checkpoint) so predictions come back in the
user's labels. Constant features train but are reported as warnings.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from ff_mcp.data.arrays import as_feature_matrix, as_labels, from_arrays
from ff_mcp.data.base import Dataset

MAX_LISTED = 8


def checked_arrays(x: Any, y: Any, name: str = "arrays", seed: int = 0) -> Dataset:
    """``from_arrays`` after the checks above; the Dataset carries ``label_values`` and ``warnings``."""
    features = as_feature_matrix(x, "x")  # its own mistakes (ragged, NaN) first
    labels = as_labels(y, "y")
    if labels.shape[0] != features.shape[0]:
        raise ValueError(f"y has {labels.shape[0]} labels but x has {features.shape[0]} rows")
    values, indices = torch.unique(labels, sorted=True, return_inverse=True)
    classes = [int(v) for v in values]
    if len(classes) < 2:
        shown = classes[0] if classes else "none"
        raise ValueError(f"y holds one class only ({shown}): Forward-Forward learns by contrasting classes; "
                         f"give rows of at least two classes")
    counts = torch.bincount(indices, minlength=len(classes))
    few = [classes[i] for i in range(len(classes)) if int(counts[i]) < 2]
    if few:
        raise ValueError(f"y has fewer than 2 rows of class{'es' if len(few) > 1 else ''} {_listed(few)} "
                         f"({labels.shape[0]} rows, {len(classes)} classes): give at least two rows of every class "
                         f"(one to train on, one to test)")
    identity = classes == list(range(len(classes)))
    data = from_arrays(features, labels if identity else indices.to(torch.int64), num_classes=len(classes), name=name,
                       seed=seed)
    missing = sorted(set(range(len(classes))) - set(int(v) for v in data.y_train.unique()))
    if missing:
        raise ValueError(f"class{'es' if len(missing) > 1 else ''} {_listed([classes[i] for i in missing])} "
                         f"got no row in the training split (a seeded 20 % of the rows is held out for testing); "
                         f"give more rows of {'them' if len(missing) > 1 else 'it'}")
    warnings = []
    constant = (data.x_train.max(dim=0).values == data.x_train.min(dim=0).values).nonzero().flatten().tolist()
    if constant:
        warnings.append(f"x has {len(constant)} constant feature{'s' if len(constant) > 1 else ''} "
                        f"(column{'s' if len(constant) > 1 else ''} {_listed(constant)}): "
                        f"they carry no information; drop them if you can")
    return dataclasses.replace(data, label_values=None if identity else tuple(classes), warnings=tuple(warnings))


def to_user_labels(indices: list[int], label_values: list[int] | tuple[int, ...] | None) -> list[int]:
    """Class indices -> the user's labels (unchanged without a mapping)."""
    if not label_values:
        return list(indices)
    return [int(label_values[i]) for i in indices]


def to_class_indices(labels: list[int], label_values: list[int] | tuple[int, ...] | None, field: str) -> list[int]:
    """The user's labels -> class indices; ValueError naming ``field`` for a label the model does not have."""
    if not label_values:
        return list(labels)
    where = {int(v): i for i, v in enumerate(label_values)}
    for row, label in enumerate(labels):
        if label not in where:
            raise ValueError(f"{field}[{row}] is {label}; this model's labels are {', '.join(map(str, label_values))}")
    return [where[label] for label in labels]


def _listed(values: list[int]) -> str:
    shown = ", ".join(str(v) for v in values[:MAX_LISTED])
    return shown + (f" and {len(values) - MAX_LISTED} more" if len(values) > MAX_LISTED else "")
