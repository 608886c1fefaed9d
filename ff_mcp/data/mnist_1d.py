"""MNIST-1D (Greydanus & Kobak 2020), generated offline by the `mnist1d` package.

`make_dataset(get_dataset_args())` builds the standard 4000 train / 1000 test set of 40-point
signals, 10 classes, from the package's templates with seed 42; `get_dataset(download=True)` is never
called. The package already centres and scales x with statistics of the whole set (test included);
this loader re-standardizes with ONE scalar mean and std taken from the training rows only, so no
test information leaks in and the signals keep their shape along the 40 positions.
Published baselines: logistic regression 32%, MLP 68%, CNN 94%, GRU 91% test accuracy.
"""

from __future__ import annotations

import functools
import logging
import random
import threading

import numpy as np
import torch

from ff_mcp.data.base import Dataset

logger = logging.getLogger(__name__)

DESCRIPTION = "MNIST-1D synthetic 40-point signals, 10 classes, 4000/1000 (Greydanus & Kobak 2020), generated offline"
_generate_lock = threading.Lock()  # make_dataset reseeds the global RNGs: one generation at a time
TRAIN_SIZE = 4000
TEST_SIZE = 1000
IN_FEATURES = 40


def mnist1d_installed() -> bool:
    """Return True when the mnist1d package can be imported (without importing it: that takes ~1 s)."""
    import importlib.util

    return importlib.util.find_spec("mnist1d") is not None


@functools.lru_cache(maxsize=1)
def _generate() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (x, y, x_test, y_test) as read-only arrays; generating takes ~1 s, so it is kept in memory."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        raise ModuleNotFoundError(
            "the mnist1d data set needs the mnist1d package (pip install mnist1d); it is generated offline"
        ) from err
    # make_dataset reseeds Python's and numpy's global RNGs; put the caller's state back afterwards.
    with _generate_lock:
        python_state, numpy_state = random.getstate(), np.random.get_state()
        try:
            generated = make_dataset(get_dataset_args())
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
    arrays = tuple(np.asarray(generated[key]) for key in ("x", "y", "x_test", "y_test"))
    for array in arrays:
        array.setflags(write=False)  # shared by every call through the cache
    logger.debug("generated mnist1d: x %s, x_test %s", arrays[0].shape, arrays[2].shape)
    return arrays  # type: ignore[return-value]


def load_mnist1d_dataset() -> Dataset:
    """Return MNIST-1D: x (N, 40) float32 standardized with the train mean/std, y (N,) int64; 4000/1000 rows."""
    x, y, x_test, y_test = _generate()
    mean, std = float(x.mean()), float(x.std())  # scalars over all train values
    return Dataset(
        name="mnist1d",
        x_train=torch.tensor((x - mean) / std, dtype=torch.float32),  # (4000, 40)
        y_train=torch.tensor(y, dtype=torch.int64),
        x_test=torch.tensor((x_test - mean) / std, dtype=torch.float32),  # (1000, 40)
        y_test=torch.tensor(y_test, dtype=torch.int64),
        num_classes=10,
        image_shape=None,
        source="mnist1d.data.make_dataset(get_dataset_args()), seed 42, generated offline; "
        "standardized with the train mean and std",
    )
