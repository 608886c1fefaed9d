"""Data set loaders returning torch tensors: MNIST, Fashion-MNIST, sklearn digits, MNIST-1D, CIFAR-10 (the
shared JPEG copy) and user arrays.

Nothing is ever downloaded: MNIST and Fashion-MNIST are read from IDX files on disk (see
`ff_mcp.data.mnist` for the search order), digits ship with scikit-learn, and MNIST-1D is generated
by the mnist1d package.
"""

from __future__ import annotations

import importlib.util
import logging
import os

from ff_mcp.data.arrays import from_arrays, validate_features
from ff_mcp.data.base import Dataset, DatasetInfo, DatasetNotFoundError, checked_limit
from ff_mcp.data.digits import DESCRIPTION as DIGITS_DESCRIPTION
from ff_mcp.data.digits import TEST_SIZE_EXPECTED as DIGITS_TEST_SIZE
from ff_mcp.data.digits import TRAIN_SIZE_EXPECTED as DIGITS_TRAIN_SIZE
from ff_mcp.data.digits import load_digits_dataset
from ff_mcp.data.mnist import SPECS as IDX_SPECS
from ff_mcp.data.idx import read_idx_shape
from ff_mcp.data.mnist import TEST_LABELS, TRAIN_LABELS, load_idx_dataset, locate
from ff_mcp.data import cifar, mnist_1d
from ff_mcp.data.graphs import GRAPH_DATASETS, GraphDataset, graph_from_arrays, graph_infos, load_planetoid

__all__ = [
    "DATASETS",
    "Dataset",
    "DatasetInfo",
    "DatasetNotFoundError",
    "GRAPH_DATASETS",
    "GraphDataset",
    "from_arrays",
    "graph_from_arrays",
    "list_datasets",
    "load_data",
    "load_dataset",
    "validate_features",
]

logger = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist", "digits", "mnist1d", "cifar10")

# Spelling variants accepted by load_dataset, keyed by the name with "-" and "_" removed.
_ALIASES = {name.replace("-", ""): name for name in DATASETS}


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> Dataset:
    """Return data set `name` (one of DATASETS) as tensors; limits keep the first N rows of each split.

    data_dir matters only for the file-based sets (mnist, fashion-mnist); it is searched first.
    Raises DatasetNotFoundError when their files are nowhere, ValueError for an unknown name or bad limit.
    """
    key = canonical_name(name)
    checked_limit("limit_train", limit_train, 0)  # fail on a bad limit before any slow loading
    checked_limit("limit_test", limit_test, 0)
    if key in IDX_SPECS:
        return load_idx_dataset(key, data_dir, limit_train, limit_test)
    if key == "digits":
        return load_digits_dataset().head(limit_train, limit_test)
    if key == "cifar10":
        return cifar.load_cifar10(data_dir).head(limit_train, limit_test)
    return mnist_1d.load_mnist1d_dataset().head(limit_train, limit_test)


def load_data(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> Dataset | GraphDataset:
    """``load_dataset`` for the row data sets, ``load_planetoid`` for the graphs (cora, citeseer)."""
    if isinstance(name, str) and name.strip().lower() in GRAPH_DATASETS:
        if limit_train is not None or limit_test is not None:
            raise ValueError(f"limit_train/limit_test: {name.strip().lower()} is one graph with a fixed split; "
                             "rows cannot be cut from it")
        return load_planetoid(name, data_dir)
    return load_dataset(name, data_dir, limit_train, limit_test)


def canonical_name(name: str) -> str:
    """Return the DATASETS entry `name` refers to ("Fashion_MNIST" -> "fashion-mnist"); ValueError if none."""
    key = name.strip().lower().replace("_", "").replace("-", "") if isinstance(name, str) else None
    if key not in _ALIASES:
        graphs = f" (graphs, for variant 'gnn': {', '.join(GRAPH_DATASETS)})" if key in GRAPH_DATASETS else ""
        raise ValueError(f"unknown data set {name!r}; choose one of: {', '.join(DATASETS)}{graphs}")
    return _ALIASES[key]


def list_datasets(data_dir: str | os.PathLike[str] | None = None) -> list[DatasetInfo]:
    """Return what is known about every data set and whether it can be loaded here; never raises for missing data."""
    infos = [_idx_info(name, data_dir) for name in IDX_SPECS]
    sklearn_found = importlib.util.find_spec("sklearn") is not None
    infos.append(
        DatasetInfo(
            name="digits",
            available=sklearn_found,
            location="bundled with scikit-learn (sklearn.datasets.load_digits)" if sklearn_found else None,
            num_classes=10,
            in_features=64,
            train_size=DIGITS_TRAIN_SIZE,
            test_size=DIGITS_TEST_SIZE,
            image_shape=(8, 8),
            description=DIGITS_DESCRIPTION,
            detail=None if sklearn_found else "needs the scikit-learn package (pip install scikit-learn)",
        )
    )
    mnist1d_found = mnist_1d.mnist1d_installed()
    infos.append(
        DatasetInfo(
            name="mnist1d",
            available=mnist1d_found,
            location="generated offline by the mnist1d package" if mnist1d_found else None,
            num_classes=10,
            in_features=mnist_1d.IN_FEATURES,
            train_size=mnist_1d.TRAIN_SIZE,
            test_size=mnist_1d.TEST_SIZE,
            image_shape=None,
            description=mnist_1d.DESCRIPTION,
            detail=None if mnist1d_found else "needs the mnist1d package (pip install mnist1d)",
        )
    )
    archive = cifar.locate(data_dir)
    infos.append(
        DatasetInfo(
            name="cifar10",
            available=archive is not None,
            location=str(archive) if archive else None,
            searched=[str(p) for p in cifar.search_dirs(data_dir)],
            num_classes=10,
            in_features=3 * 32 * 32,
            train_size=cifar.TRAIN_SIZE,
            test_size=cifar.TEST_SIZE,
            image_shape=cifar.IMAGE_SHAPE,
            description=cifar.DESCRIPTION,
            detail=None if archive else f"needs {cifar.ARCHIVE} (the shared JPEG copy) in one of the searched places",
        )
    )
    return infos + graph_infos(data_dir)


def _idx_info(name: str, data_dir: str | os.PathLike[str] | None) -> DatasetInfo:
    spec = IDX_SPECS[name]
    result = locate(name, data_dir)
    train_size, test_size, detail = spec.train_size, spec.test_size, None
    if result.found is None:
        detail = "the four IDX files are in none of the searched directories"
    else:
        # Sizes from the label files' headers: a user's copy may be a subset of the standard set.
        try:
            train_size = read_idx_shape(result.files[TRAIN_LABELS])[0]
            test_size = read_idx_shape(result.files[TEST_LABELS])[0]
        except ValueError as err:
            detail = str(err)
    return DatasetInfo(
        name=name,
        available=result.found is not None and detail is None,
        location=str(result.found.path) if result.found else None,
        searched=result.searched,
        num_classes=spec.num_classes,
        in_features=spec.image_shape[0] * spec.image_shape[1],
        train_size=train_size,
        test_size=test_size,
        image_shape=spec.image_shape,
        description=spec.description,
        detail=detail,
    )
