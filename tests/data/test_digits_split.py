"""sklearn digits: a fixed, stratified 1347/450 split of all 1797 images, pixels in [0, 1]."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ff_mcp.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_digits_split_has_the_documented_sizes_and_shapes(digits):
    assert digits.x_train.shape == (1347, 64) and digits.x_test.shape == (450, 64)
    assert digits.num_classes == 10 and digits.image_shape == (8, 8) and digits.in_features == 64
    assert digits.x_train.dtype == torch.float32 and digits.y_test.dtype == torch.int64


def test_digits_pixels_are_sklearn_counts_divided_by_16(digits):
    assert float(digits.x_train.min()) == 0.0 and float(digits.x_train.max()) == 1.0
    assert torch.equal((digits.x_train * 16).round(), digits.x_train * 16)


def test_digits_split_is_stratified(digits):
    all_counts = np.bincount(load_digits().target, minlength=10)
    test_counts = torch.bincount(digits.y_test, minlength=10).numpy()
    # each class gets a quarter of its images in the test split, up to rounding
    assert np.all(np.abs(test_counts - all_counts * 0.25) <= 1)
    assert test_counts.sum() == 450


def test_digits_train_and_test_together_are_exactly_the_1797_images(digits):
    bunch = load_digits()
    expected = sorted(map(tuple, np.column_stack([bunch.data / 16.0, bunch.target]).astype(np.float32).tolist()))
    rows = torch.cat([
        torch.column_stack([digits.x_train, digits.y_train.float()]),
        torch.column_stack([digits.x_test, digits.y_test.float()]),
    ])
    assert sorted(map(tuple, rows.tolist())) == expected


def test_digits_split_is_identical_on_every_load(digits):
    again = load_dataset("digits")
    assert torch.equal(again.x_train, digits.x_train) and torch.equal(again.y_test, digits.y_test)
    assert digits.y_train[:10].tolist() == [7, 3, 6, 6, 7, 6, 7, 9, 2, 9]  # pinned: sklearn random_state=0
