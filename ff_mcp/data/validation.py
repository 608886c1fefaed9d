"""Validation splits held out of the training rows, so choices (recipe, prediction method, epochs) are
made without looking at the test set.

MNIST and Fashion-MNIST hold out their last 10,000 training images (as loeweX does); every other data
set a fixed stratified 15 % (seed 0): the same rows every time, each class in proportion.
"""

from __future__ import annotations

import dataclasses

import torch

from ff_mcp.data.base import Dataset

LAST_ROWS = {"mnist": 10_000, "fashion-mnist": 10_000}
FRACTION = 0.15
SEED = 0


def validation_split(data: Dataset) -> tuple[Dataset, torch.Tensor, torch.Tensor, str]:
    """(data whose training rows exclude the validation rows, x_val, y_val, how they were chosen).
    The test split is untouched."""
    n = data.train_size
    last = LAST_ROWS.get(data.name)
    if last is not None and n > last:
        keep, held = torch.arange(0, n - last), torch.arange(n - last, n)
        how = f"the last {last} training rows"
    else:
        held = stratified_rows(data.y_train, FRACTION, SEED)
        mask = torch.ones(n, dtype=torch.bool)
        mask[held] = False
        keep = mask.nonzero().flatten()
        how = f"a stratified {int(FRACTION * 100)} % of the training rows (seed {SEED})"
    if held.numel() == 0 or keep.numel() == 0:
        raise ValueError(f"data set {data.name!r} has {n} training rows: too few to hold out a validation split")
    trained = dataclasses.replace(data, x_train=data.x_train[keep].clone(), y_train=data.y_train[keep].clone(),
                                  source=f"{data.source}; validation: {how} held out")
    return trained, data.x_train[held].clone(), data.y_train[held].clone(), how


def stratified_rows(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of round(fraction x count) rows of every class (at least one of a class with two or more)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for label in labels.unique(sorted=True):
        rows = (labels == label).nonzero().flatten()
        take = min(max(round(fraction * rows.numel()), 1 if rows.numel() > 1 else 0), rows.numel() - 1)
        chosen.append(rows[torch.randperm(rows.numel(), generator=generator)[:take]])
    return torch.cat(chosen).sort().values if chosen else torch.zeros(0, dtype=torch.long)
