"""IDX reader: round trips, and clear errors naming the file for every kind of damage."""

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ff_mcp.data.idx import encode_idx, parse_idx, read_idx, read_idx_shape, write_idx

SHARED_MNIST = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist"

idx_dtypes = st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
idx_arrays = idx_dtypes.flatmap(
    lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5))
)


@settings(max_examples=60, deadline=None)
@given(idx_arrays)
def test_encoded_arrays_parse_back_identical_with_shape_and_dtype(array):
    parsed = parse_idx(encode_idx(array))
    assert parsed.shape == array.shape
    assert parsed.dtype == array.dtype
    np.testing.assert_array_equal(parsed, array)


@settings(max_examples=60, deadline=None)
@given(idx_arrays.filter(lambda a: a.size > 0), st.data())
def test_every_cut_short_file_is_reported_as_truncated_or_malformed(array, data):
    encoded = encode_idx(array)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(ValueError, match="<cut>"):
        parse_idx(encoded[:cut], source="<cut>")


def test_gzip_and_plain_files_read_the_same(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3-ubyte.gz", array)
    write_idx(tmp_path / "a-idx3-ubyte", array)
    assert gzip.open(tmp_path / "a-idx3-ubyte.gz").read() == (tmp_path / "a-idx3-ubyte").read_bytes()
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), array)
    assert read_idx_shape(tmp_path / "a-idx3-ubyte.gz") == (2, 3, 4)


def test_header_shape_of_real_mnist_files_is_read_without_the_data():
    assert read_idx_shape(SHARED_MNIST / "train-images-idx3-ubyte.gz") == (60000, 28, 28)
    assert read_idx_shape(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz") == (10000,)


def test_truncated_gzip_mnist_file_error_names_the_file(tmp_path):
    damaged = tmp_path / "t10k-labels-idx1-ubyte.gz"
    original = (SHARED_MNIST / "t10k-labels-idx1-ubyte.gz").read_bytes()
    damaged.write_bytes(original[: len(original) // 2])
    with pytest.raises(ValueError) as error:
        read_idx(damaged)
    assert str(error.value).startswith(f"{damaged}: not a valid gzip stream (truncated or corrupt)")


def test_truncated_data_inside_a_valid_gzip_names_file_shape_and_byte_counts(tmp_path):
    damaged = tmp_path / "labels.gz"
    payload = encode_idx(np.zeros(100, dtype=np.uint8))
    damaged.write_bytes(gzip.compress(payload[:-10]))
    with pytest.raises(ValueError) as error:
        read_idx(damaged)
    assert str(error.value) == (
        f"{damaged}: truncated IDX file: header declares shape (100,) (100 bytes of data), found 90 bytes"
    )


def test_wrong_magic_number_is_not_an_idx_file(tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_bytes(b"hello world, not idx")
    with pytest.raises(ValueError, match=r"notes.txt: not an IDX file \(magic number starts with 0x68 0x65"):
        read_idx(bogus)


def test_unknown_dtype_code_lists_the_allowed_codes():
    with pytest.raises(ValueError, match=r"unknown IDX dtype code 0x07; allowed: 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e"):
        parse_idx(bytes([0, 0, 7, 1, 0, 0, 0, 1, 5]))


def test_trailing_bytes_after_the_data_are_malformed():
    with pytest.raises(ValueError, match=r"<x>: malformed IDX file: 2 unexpected trailing bytes after shape \(3,\)"):
        parse_idx(encode_idx(np.zeros(3, dtype=np.uint8)) + b"\x00\x00", source="<x>")


def test_plain_copy_of_real_labels_reads_like_the_gzip_original(tmp_path):
    plain = tmp_path / "t10k-labels-idx1-ubyte"
    with gzip.open(SHARED_MNIST / "t10k-labels-idx1-ubyte.gz") as source, open(plain, "wb") as target:
        shutil.copyfileobj(source, target)
    labels = read_idx(plain)
    assert labels.shape == (10000,)
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]
