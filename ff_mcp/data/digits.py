"""scikit-learn's 8x8 digits (UCI optical digits test set, 1797 images) with a fixed stratified split.

sklearn ships no train/test split, so this module fixes one: `train_test_split(stratify=y,
test_size=0.25, random_state=0)`, giving 1347 train / 450 test rows with every class in the
same proportion on both sides. Pixels are 0..16 integers, divided by 16 into [0, 1].
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ff_mcp.data.base import Dataset

logger = logging.getLogger(__name__)

TEST_SIZE = 0.25  # a quarter held out: ~45 test images per class, enough for a stable accuracy
SPLIT_SEED = 0  # fixed so every run and every machine sees the same split
TRAIN_SIZE_EXPECTED = 1347
TEST_SIZE_EXPECTED = 450
DESCRIPTION = "scikit-learn 8x8 handwritten digits (1797 images), 10 classes, fixed stratified 1347/450 split"


def load_digits_dataset() -> Dataset:
    """Return sklearn digits: x (N, 64) float32 in [0, 1], y (N,) int64, split 1347 train / 450 test."""
    # Imported here: sklearn takes ~0.5 s to import and only this loader needs it.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # (1797, 64): pixel counts 0..16 -> [0, 1]
    y = bunch.target.astype(np.int64)  # (1797,)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y
    )
    logger.debug("digits split: %d train, %d test", len(y_train), len(y_test))
    return Dataset(
        name="digits",
        x_train=torch.from_numpy(np.ascontiguousarray(x_train)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_train)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_test)),
        y_test=torch.from_numpy(np.ascontiguousarray(y_test)),
        num_classes=10,
        image_shape=(8, 8),
        source=(
            f"sklearn.datasets.load_digits(), train_test_split(stratify=y, test_size={TEST_SIZE}, "
            f"random_state={SPLIT_SEED})"
        ),
    )
