"""load_dataset, list_datasets and the Dataset container."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import ff_mcp.data.mnist as mnist_module
from ff_mcp.data import DATASETS, GRAPH_DATASETS, Dataset, DatasetNotFoundError, list_datasets, load_dataset
from ff_mcp.data.idx import write_idx

SHARED = Path(os.path.abspath(Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """Make every search place an empty directory under tmp_path."""
    monkeypatch.delenv("FF_MCP_DATA", raising=False)
    (tmp_path / "checkout" / "repo").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(mnist_module, "REPO_ROOT", tmp_path / "checkout" / "repo")
    monkeypatch.setattr(mnist_module, "SYSTEM_DIRS", {"fashion-mnist": (tmp_path / "usr-share-fashion",)})
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def test_datasets_names_the_five_built_in_sets():
    assert DATASETS == ("mnist", "fashion-mnist", "digits", "mnist1d", "cifar10")


def test_unknown_name_lists_the_allowed_names():
    with pytest.raises(ValueError) as error:
        load_dataset("cifar100")
    assert str(error.value) == ("unknown data set 'cifar100'; choose one of: mnist, fashion-mnist, digits, mnist1d, "
                                "cifar10")


@pytest.mark.parametrize(
    ("spelling", "name"), [("MNIST", "mnist"), ("Fashion_MNIST", "fashion-mnist"), (" mnist1d ", "mnist1d")]
)
def test_names_are_matched_ignoring_case_and_separators(spelling, name):
    assert load_dataset(spelling, limit_train=3, limit_test=3).name == name


@pytest.mark.parametrize("limit", [0, -5, 2.5, True, "10"])
def test_bad_limits_are_rejected_before_loading(limit):
    expected = f"limit_train must be a positive int or None, got {limit!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_dataset("mnist", limit_train=limit)


def test_limits_larger_than_the_data_keep_everything():
    data = load_dataset("digits", limit_train=10**9, limit_test=10)
    assert data.train_size == 1347 and data.test_size == 10


def test_list_datasets_finds_the_shared_data():
    infos = {info.name: info for info in list_datasets()}
    assert list(infos) == list(DATASETS) + list(GRAPH_DATASETS)
    assert infos["cora"].available and infos["cora"].data_kind == "graph" and infos["cora"].nodes == 2708
    assert infos["cora"].location == str((SHARED / "planetoid").resolve())
    assert infos["mnist"].available and infos["mnist"].location == str(SHARED / "mnist")
    assert infos["fashion-mnist"].location == str(SHARED / "fashion-mnist")
    assert (infos["mnist"].train_size, infos["mnist"].test_size, infos["mnist"].in_features) == (60000, 10000, 784)
    assert infos["digits"].available and (infos["digits"].train_size, infos["digits"].test_size) == (1347, 450)
    assert infos["mnist1d"].available and infos["mnist1d"].in_features == 40


def test_list_datasets_reports_missing_files_without_raising(nowhere):
    infos = {info.name: info for info in list_datasets(data_dir=nowhere / "empty")}
    mnist = infos["mnist"]
    assert not mnist.available and mnist.location is None
    assert mnist.searched[:2] == [str(nowhere / "empty" / "mnist"), str(nowhere / "empty")]
    assert mnist.detail == "the four IDX files are in none of the searched directories"
    assert not infos["fashion-mnist"].available
    assert infos["fashion-mnist"].searched[-1] == str(nowhere / "usr-share-fashion")
    assert infos["digits"].available and infos["mnist1d"].available


def test_list_datasets_reports_the_sizes_of_a_user_copy(nowhere):
    (nowhere / "mine").mkdir()
    for prefix, n in (("train", 30), ("t10k", 7)):
        write_idx(nowhere / "mine" / f"{prefix}-images-idx3-ubyte.gz", np.zeros((n, 28, 28), dtype=np.uint8))
        write_idx(nowhere / "mine" / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(n, dtype=np.uint8))
    mnist = list_datasets(data_dir=nowhere / "mine")[0]
    assert mnist.available and (mnist.train_size, mnist.test_size) == (30, 7)


def test_list_datasets_marks_a_damaged_copy_unavailable_and_says_why(nowhere):
    (nowhere / "mine").mkdir()
    for name in mnist_module.IDX_FILES:
        (nowhere / "mine" / name).write_bytes(b"not gzip, not idx")
    mnist = list_datasets(data_dir=nowhere / "mine")[0]
    assert not mnist.available and mnist.location == str(nowhere / "mine")
    assert mnist.detail.startswith(f"{nowhere / 'mine' / 'train-labels-idx1-ubyte.gz'}: not an IDX file")


def test_not_found_error_is_a_file_not_found_error_carrying_the_file_names(nowhere):
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("mnist")
    assert isinstance(error.value, DatasetNotFoundError)
    assert error.value.missing_files == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]


def test_dataset_rejects_tensors_of_the_wrong_kind():
    x, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.int64)
    wrong_dtype = r"^x_train must be a 2-D float32 tensor, got 2-D torch.float64 tensor of shape \(4, 3\)$"
    with pytest.raises(ValueError, match=wrong_dtype):
        Dataset("d", x.double(), y, x, y, 2, None, "test")
    with pytest.raises(ValueError, match=r"^y_test has 4 labels but x_test has 2 rows$"):
        Dataset("d", x, y, x[:2], y, 2, None, "test")
    with pytest.raises(ValueError, match=r"^image_shape \(2, 2\) does not hold 3 features$"):
        Dataset("d", x, y, x, y, 2, (2, 2), "test")


def test_dataset_repr_is_a_short_summary():
    data = load_dataset("digits", limit_train=5, limit_test=2)
    assert repr(data).startswith(
        "Dataset(name='digits', train=5, test=2, in_features=64, num_classes=10, image_shape=(8, 8), source="
    )
