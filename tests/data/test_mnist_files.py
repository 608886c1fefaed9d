"""MNIST and Fashion-MNIST from IDX files: real data, search order, overrides and the not-found message."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import ff_mcp.data.mnist as mnist_module
from ff_mcp.data import DatasetNotFoundError, load_dataset
from ff_mcp.data.idx import write_idx
from ff_mcp.data.mnist import IDX_FILES, candidate_dirs

SHARED = Path(os.path.abspath(Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))

# Class counts of the canonical MNIST files (train, then t10k).
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Search only under tmp_path: no FF_MCP_DATA, a fake repository root, cwd and system directory."""
    monkeypatch.delenv("FF_MCP_DATA", raising=False)
    (tmp_path / "checkout" / "repo").mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(mnist_module, "REPO_ROOT", tmp_path / "checkout" / "repo")
    monkeypatch.setattr(mnist_module, "SYSTEM_DIRS", {"fashion-mnist": (tmp_path / "usr-share-fashion",)})
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path


def write_fake_set(directory: Path, n_train: int = 12, n_test: int = 5, first_label: int = 3) -> None:
    """Write four small IDX files whose pixels encode the row number, so a test can tell them from real data."""
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = np.arange(n) * 10
        labels = (np.arange(n) + first_label) % 10
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))


def link_real_set(directory: Path, name: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for file_name in IDX_FILES:
        (directory / file_name).symlink_to(SHARED / name / file_name)


def test_mnist_loads_60000_train_and_10000_test_rows_of_784_pixels_in_unit_range(mnist):
    assert mnist.name == "mnist"
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.x_train.dtype == torch.float32 and mnist.y_train.dtype == torch.int64
    assert float(mnist.x_train.min()) == 0.0 and float(mnist.x_train.max()) == 1.0
    assert mnist.in_features == 784 and mnist.num_classes == 10 and mnist.image_shape == (28, 28)
    assert mnist.source == str(SHARED / "mnist")


def test_mnist_labels_are_the_canonical_ones(mnist):
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]
    assert mnist.y_test[:5].tolist() == [7, 2, 1, 0, 4]
    assert torch.bincount(mnist.y_train, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(mnist.y_test, minlength=10).tolist() == MNIST_TEST_COUNTS


def test_mnist_pixels_are_bytes_divided_by_255(mnist):
    assert torch.equal((mnist.x_train[:100] * 255).round() / 255, mnist.x_train[:100])
    assert int((mnist.x_train[0] > 0).sum()) == 166  # the first "5" lights up 166 pixels


def test_limits_keep_the_first_rows_of_the_full_load(mnist):
    small = load_dataset("mnist", limit_train=2000, limit_test=300)
    assert small.train_size == 2000 and small.test_size == 300
    assert torch.equal(small.x_train, mnist.x_train[:2000]) and torch.equal(small.y_test, mnist.y_test[:300])


def test_fashion_mnist_loads_with_6000_train_and_1000_test_images_per_class():
    fashion = load_dataset("fashion-mnist")
    assert fashion.x_train.shape == (60000, 784) and fashion.x_test.shape == (10000, 784)
    assert float(fashion.x_test.min()) == 0.0 and float(fashion.x_test.max()) == 1.0
    assert fashion.y_train[:5].tolist() == [9, 0, 0, 3, 0]
    assert torch.bincount(fashion.y_train).tolist() == [6000] * 10
    assert torch.bincount(fashion.y_test).tolist() == [1000] * 10
    assert fashion.source == str(SHARED / "fashion-mnist")


def test_data_dir_with_a_name_subdirectory_is_searched_first(isolated):
    write_fake_set(isolated / "mine" / "mnist")
    data = load_dataset("mnist", data_dir=isolated / "mine")
    assert data.source == str(isolated / "mine" / "mnist")
    assert data.train_size == 12 and data.test_size == 5
    assert data.y_train[:3].tolist() == [3, 4, 5]
    assert data.x_train[:3, 0].tolist() == pytest.approx([0.0, 10 / 255, 20 / 255])


def test_data_dir_itself_holding_the_files_is_accepted(isolated):
    write_fake_set(isolated / "flat")
    assert load_dataset("mnist", data_dir=str(isolated / "flat")).source == str(isolated / "flat")


def test_symlinked_real_files_in_data_dir_load_as_mnist(isolated):
    link_real_set(isolated / "links", "mnist")
    data = load_dataset("mnist", data_dir=isolated / "links", limit_train=5, limit_test=5)
    assert data.source == str(isolated / "links")
    assert data.y_train.tolist() == [5, 0, 4, 1, 9]


def test_ff_mcp_data_environment_variable_is_searched(isolated, monkeypatch):
    write_fake_set(isolated / "env" / "fashion-mnist", n_train=7)
    monkeypatch.setenv("FF_MCP_DATA", str(isolated / "env"))
    data = load_dataset("fashion-mnist")
    assert data.source == str(isolated / "env" / "fashion-mnist") and data.train_size == 7


def test_data_dir_wins_over_ff_mcp_data(isolated, monkeypatch):
    write_fake_set(isolated / "arg", n_train=8)
    write_fake_set(isolated / "env", n_train=9)
    monkeypatch.setenv("FF_MCP_DATA", str(isolated / "env"))
    assert load_dataset("mnist", data_dir=isolated / "arg").train_size == 8
    assert load_dataset("mnist").train_size == 9


def test_shared_data_beside_the_repository_is_found_when_nothing_else_is_given(isolated):
    write_fake_set(isolated / "checkout" / "shared" / "data" / "mnist", n_train=6)
    assert load_dataset("mnist").source == str(isolated / "checkout" / "shared" / "data" / "mnist")


def test_shared_data_beside_the_working_directory_is_found_too(isolated):
    write_fake_set(isolated / "shared" / "data" / "mnist", n_train=6)
    assert load_dataset("mnist").source == str(isolated / "shared" / "data" / "mnist")


def test_debian_system_directory_is_a_fallback_for_fashion_mnist(isolated):
    write_fake_set(isolated / "usr-share-fashion", n_train=4, first_label=9)
    assert load_dataset("fashion-mnist").source == str(isolated / "usr-share-fashion")


def test_directory_missing_one_of_the_four_files_does_not_count(isolated, monkeypatch):
    write_fake_set(isolated / "partial" / "mnist")
    (isolated / "partial" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    write_fake_set(isolated / "env", n_train=9)
    monkeypatch.setenv("FF_MCP_DATA", str(isolated / "env"))
    assert load_dataset("mnist", data_dir=isolated / "partial").source == str(isolated / "env")


def test_uncompressed_files_count_like_gzip_ones(isolated):
    write_fake_set(isolated / "plain" / "mnist")
    for name in IDX_FILES:
        gz = isolated / "plain" / "mnist" / name
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert load_dataset("mnist", data_dir=isolated / "plain").train_size == 12


def test_bare_directory_of_mnist_files_is_not_taken_for_fashion_mnist(isolated):
    link_real_set(isolated / "bare-mnist", "mnist")
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("fashion-mnist", data_dir=isolated / "bare-mnist")
    reason = "holds mnist files (recognised by their first labels), not fashion-mnist"
    assert f"{isolated / 'bare-mnist'} (data_dir): {reason}" in str(error.value)


def test_missing_data_error_names_the_four_files_every_place_searched_and_how_to_fix_it(isolated, monkeypatch):
    monkeypatch.setenv("FF_MCP_DATA", str(isolated / "env"))
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("mnist", data_dir=isolated / "mine")
    message = str(error.value)
    searched = [
        isolated / "mine" / "mnist",
        isolated / "mine",
        isolated / "env" / "mnist",
        isolated / "env",
        isolated / "checkout" / "repo" / ".." / "shared" / "data" / "mnist",
        isolated / "work" / ".." / "shared" / "data" / "mnist",
    ]
    searched = [os.path.abspath(path) for path in searched]
    assert error.value.searched == searched
    assert isinstance(error.value, FileNotFoundError)
    assert message.startswith(
        "mnist data not found: need the four IDX files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (or the same names without .gz) "
        "together in one directory."
    )
    assert f"  {searched[0]} (data_dir): does not exist\n" in message
    assert f"  {searched[2]} (FF_MCP_DATA): does not exist\n" in message
    assert f"  {searched[4]} (repository ../shared/data): does not exist\n" in message
    assert f"  {searched[5]} (working directory ../shared/data): does not exist\n" in message
    assert message.endswith(
        "Pass --data-dir DIR or set FF_MCP_DATA=DIR, where DIR/mnist or DIR itself holds the four files. "
        "Nothing is downloaded."
    )


def test_missing_data_error_says_which_files_an_incomplete_directory_lacks(isolated):
    write_fake_set(isolated / "partial")
    (isolated / "partial" / "train-images-idx3-ubyte.gz").unlink()
    (isolated / "partial" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="missing train-images-idx3-ubyte.gz, t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", data_dir=isolated / "partial")


def test_fashion_mnist_search_ends_with_the_debian_directory(isolated):
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("fashion-mnist")
    assert error.value.searched[-1] == str(isolated / "usr-share-fashion")
    assert f"{isolated / 'usr-share-fashion'} (system package): does not exist" in str(error.value)


def test_truncated_file_in_the_found_directory_raises_naming_it(isolated):
    write_fake_set(isolated / "broken")
    labels = isolated / "broken" / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:20])
    with pytest.raises(ValueError, match=f"^{labels}: not a valid gzip stream"):
        load_dataset("mnist", data_dir=isolated / "broken")


def test_candidate_directories_are_deduplicated(isolated, monkeypatch):
    monkeypatch.setenv("FF_MCP_DATA", str(isolated / "same"))
    paths = [candidate.path for candidate in candidate_dirs("mnist", isolated / "same")]
    assert paths.count(isolated / "same") == 1 and len(paths) == len(set(paths))
