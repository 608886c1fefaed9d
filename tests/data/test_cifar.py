"""CIFAR-10 from the shared JPEG copy: decoded once to the recorded checksum, cached, class-balanced rows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ff_mcp.data import DatasetNotFoundError, list_datasets, load_dataset
from ff_mcp.data import cifar

SHARED = Path(os.path.abspath(Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10-jpeg"))
needs_archive = pytest.mark.skipif(not (SHARED / cifar.ARCHIVE).is_file(),
                                   reason=f"the shared CIFAR-10 JPEG copy is not at {SHARED}")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FF_MCP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@needs_archive
def test_decoding_reproduces_the_recorded_checksum_then_the_cache_serves_it(cache, monkeypatch):
    data = load_dataset("cifar10")
    assert (data.train_size, data.test_size, data.in_features, data.image_shape) == (50000, 10000, 3072, (3, 32, 32))
    pixels = (data.x_train * 255).round().to(torch.uint8).numpy()
    test = (data.x_test * 255).round().to(torch.uint8).numpy()
    digest = cifar.decoded_digest(np.concatenate([pixels.reshape(-1), test.reshape(-1)]),
                                  np.concatenate([data.y_train.numpy(), data.y_test.numpy()]))
    assert digest == cifar.DECODED_SHA256
    # row 10 i + c is image i of class c: every block of ten rows holds each class once
    assert data.y_train[:20].tolist() == list(range(10)) * 2
    assert torch.bincount(data.y_train[-10000:]).tolist() == [1000] * 10
    # the channel means of CIFAR-10's training images (0.4914, 0.4822, 0.4465), within the JPEG loss
    means = data.x_train.reshape(-1, 3, 1024).mean(dim=(0, 2))
    assert torch.allclose(means, torch.tensor([0.4914, 0.4822, 0.4465]), atol=3e-3)
    # a second load reads the cache and decodes nothing
    monkeypatch.setattr(cifar, "decode_archive", lambda path: pytest.fail("decoded again"))
    again = load_dataset("cifar10", limit_train=10, limit_test=5)
    assert torch.equal(again.x_train, data.x_train[:10]) and again.test_size == 5


@needs_archive
def test_a_damaged_cache_is_decoded_again(cache):
    cache.mkdir(parents=True)
    (cache / f"cifar10-jpeg-q75-{cifar.ARCHIVE_SHA256[:16]}.npz").write_bytes(b"not an npz")
    assert load_dataset("cifar10", limit_train=3, limit_test=3).y_train.tolist() == [0, 1, 2]


def test_a_missing_archive_names_the_file_and_the_places_searched(tmp_path, monkeypatch, cache):
    monkeypatch.setattr(cifar, "search_dirs", lambda data_dir=None: [tmp_path / "nowhere"])
    with pytest.raises(DatasetNotFoundError, match=f"need {cifar.ARCHIVE} .*searched {tmp_path / 'nowhere'}"):
        load_dataset("cifar10")
    info = {i.name: i for i in list_datasets()}["cifar10"]
    assert not info.available and "needs cifar10-jpeg-q75.tar.gz" in info.detail


def test_an_archive_with_another_checksum_is_refused(tmp_path):
    fake = tmp_path / cifar.ARCHIVE
    fake.write_bytes(b"x")
    with pytest.raises(ValueError, match="is not the shared copy's"):
        cifar.decode_archive(fake)
