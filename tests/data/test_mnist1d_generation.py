"""MNIST-1D: generated offline, 4000/1000 rows of 40 features, standardized with train statistics."""

import random

import numpy as np
import pytest
import torch

from ff_mcp.data import load_dataset


@pytest.fixture(scope="module")
def mnist1d():
    return load_dataset("mnist1d")


def test_mnist1d_has_4000_train_and_1000_test_rows_of_40_features(mnist1d):
    assert mnist1d.x_train.shape == (4000, 40) and mnist1d.x_test.shape == (1000, 40)
    assert mnist1d.num_classes == 10 and mnist1d.in_features == 40 and mnist1d.image_shape is None
    assert sorted(torch.unique(mnist1d.y_train).tolist()) == list(range(10))
    assert mnist1d.x_train.dtype == torch.float32 and mnist1d.y_train.dtype == torch.int64


def test_mnist1d_train_values_have_zero_mean_and_unit_std(mnist1d):
    assert float(mnist1d.x_train.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(mnist1d.x_train.std(unbiased=False)) == pytest.approx(1.0, abs=1e-5)
    assert abs(float(mnist1d.x_test.mean())) < 0.1  # test uses the train statistics, so only close


def test_mnist1d_is_the_same_data_on_every_load(mnist1d):
    again = load_dataset("mnist1d")
    assert torch.equal(again.x_train, mnist1d.x_train) and torch.equal(again.y_test, mnist1d.y_test)
    assert mnist1d.y_train[:10].tolist() == [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]  # pinned: mnist1d seed 42


def test_mnist1d_tensors_are_independent_copies(mnist1d):
    again = load_dataset("mnist1d", limit_train=10)
    again.x_train.add_(100.0)
    assert not torch.equal(load_dataset("mnist1d", limit_train=10).x_train, again.x_train)


def test_mnist1d_generation_leaves_the_global_random_state_alone():
    import ff_mcp.data.mnist_1d as module

    module._generate.cache_clear()
    np.random.seed(1234)
    random.seed(1234)
    load_dataset("mnist1d", limit_train=1, limit_test=1)
    assert np.random.randint(1 << 30) == np.random.RandomState(1234).randint(1 << 30)
    assert random.random() == random.Random(1234).random()
