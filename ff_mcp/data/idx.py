"""Reader for IDX files, the format of MNIST and Fashion-MNIST, gzipped or plain.

Layout (LeCun, "THE MNIST DATABASE of handwritten digits", section "FILE FORMATS"):
two zero bytes, one dtype code, one byte with the number of dimensions, then one
big-endian uint32 per dimension, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import logging
import math
import zlib
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# dtype code -> numpy dtype; multi-byte values are big-endian on disk.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx_bytes(path: str | Path) -> bytes:
    """Return the decompressed bytes of an IDX file; gzip is detected from the content, not the name."""
    path = Path(path)
    with open(path, "rb") as handle:
        raw = handle.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:  # EOFError: stream cut short; BadGzipFile is an OSError
        raise ValueError(f"{path}: not a valid gzip stream (truncated or corrupt): {err}") from err


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Return the array held by decompressed IDX bytes, in native byte order; `source` names it in errors."""
    if len(data) < 4:
        raise ValueError(f"{source}: too short for an IDX header ({len(data)} bytes, need at least 4)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{source}: not an IDX file (magic number starts with {data[0]:#04x} {data[1]:#04x}, expected 0x00 0x00)"
        )
    dtype_code, ndim = data[2], data[3]
    if dtype_code not in IDX_DTYPES:
        allowed = ", ".join(f"{code:#04x}" for code in IDX_DTYPES)
        raise ValueError(f"{source}: unknown IDX dtype code {dtype_code:#04x}; allowed: {allowed}")
    if ndim == 0:
        raise ValueError(f"{source}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ValueError(f"{source}: truncated IDX header ({len(data)} bytes, need {header_len} for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[dtype_code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header_len
    if found < expected:
        raise ValueError(
            f"{source}: truncated IDX file: header declares shape {shape} ({expected} bytes of data), "
            f"found {found} bytes"
        )
    if found > expected:
        raise ValueError(
            f"{source}: malformed IDX file: {found - expected} unexpected trailing bytes after shape {shape}"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    # astype copies: the result is writable and in native byte order (torch.from_numpy needs both).
    return values.astype(dtype.newbyteorder("="))


def read_idx_shape(path: str | Path) -> tuple[int, ...]:
    """Return the shape declared in an IDX file's header, reading only the header (cheap even for gzip)."""
    path = Path(path)
    try:
        with open(path, "rb") as raw:
            stream = gzip.GzipFile(fileobj=raw) if raw.read(2) == _GZIP_MAGIC else raw
            raw.seek(0)
            head = stream.read(4)
            if len(head) == 4 and head[:2] == b"\x00\x00":
                head += stream.read(4 * head[3])
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{path}: not a valid gzip stream (truncated or corrupt): {err}") from err
    if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {head[:4].hex() or 'empty'})")
    if len(head) < 4 + 4 * head[3]:
        raise ValueError(f"{path}: truncated IDX header")
    return tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=head[3], offset=4))


def read_idx(path: str | Path) -> np.ndarray:
    """Return the array stored in an IDX file (gzip or plain); ValueError naming the file if it is malformed."""
    path = Path(path)
    array = parse_idx(read_idx_bytes(path), source=str(path))
    logger.debug("read %s: shape %s, dtype %s", path, array.shape, array.dtype)
    return array


def encode_idx(array: np.ndarray) -> bytes:
    """Return the uncompressed IDX bytes holding `array` (uint8, int8, int16, int32, float32 or float64)."""
    array = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        allowed = ", ".join(sorted(str(dtype) for dtype in codes))
        raise ValueError(f"cannot write dtype {array.dtype} as IDX; allowed: {allowed}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {array.ndim}")
    code = codes[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write `array` as an IDX file, gzipped when `compress` (default: when the name ends in .gz)."""
    path = Path(path)
    payload = encode_idx(array)
    if compress is None:
        compress = path.suffix == ".gz"
    # mtime=0 keeps the output byte-identical across runs.
    path.write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
