"""MNIST and Fashion-MNIST from the four standard IDX files, found on disk; never downloaded.

Search order for a data set NAME ("mnist" or "fashion-mnist"); the first directory holding all four
files wins, and in each place NAME/ is tried before the place itself:
  1. the `data_dir` argument: data_dir/NAME, then data_dir
  2. the FF_MCP_DATA environment variable (several directories joined by os.pathsep allowed), same two forms
  3. ../shared/data/NAME relative to the repository root, then relative to the current working directory
  4. fashion-mnist only: /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist)
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ff_mcp.data.base import Dataset, DatasetNotFoundError, checked_limit
from ff_mcp.data.idx import read_idx

logger = logging.getLogger(__name__)

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

ENV_VAR = "FF_MCP_DATA"
# The repository root is the parent of the ff_mcp package directory; module globals so tests can move them.
REPO_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),  # Debian package dataset-fashion-mnist
}


def data_dirs(folder: str, data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where a file-based data set ``folder`` is looked for, in order, without repeats: data_dir/folder,
    data_dir, each FF_MCP_DATA directory the same two ways, then ../shared/data/folder beside the
    repository and beside the working directory."""
    places: list[Path] = []
    for base in ([Path(data_dir)] if data_dir else []) + [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep)
                                                          if p.strip()]:
        places += [base / folder, base]
    places += [REPO_ROOT / ".." / "shared" / "data" / folder, Path.cwd() / ".." / "shared" / "data" / folder]
    unique: dict[Path, None] = {}
    for place in places:
        unique.setdefault(place.resolve(), None)
    return list(unique)


@dataclass(frozen=True)
class IdxSetSpec:
    """What an IDX-file data set should look like once loaded."""

    name: str
    description: str
    first_train_labels: tuple[int, ...]  # a fingerprint telling MNIST and Fashion-MNIST files apart
    num_classes: int = 10
    image_shape: tuple[int, int] = (28, 28)
    train_size: int = 60_000
    test_size: int = 10_000


SPECS: dict[str, IdxSetSpec] = {
    "mnist": IdxSetSpec(
        "mnist",
        "MNIST handwritten digits, 28x28 grey, 10 classes (LeCun et al. 1998)",
        first_train_labels=(5, 0, 4, 1, 9, 2, 1, 3, 1, 4),
    ),
    "fashion-mnist": IdxSetSpec(
        "fashion-mnist",
        "Fashion-MNIST clothing images, 28x28 grey, 10 classes (Xiao et al. 2017, Zalando)",
        first_train_labels=(9, 0, 0, 3, 0, 2, 7, 2, 5, 5),
    ),
}


@dataclass(frozen=True)
class Candidate:
    """One directory to look in, and why it is on the list."""

    path: Path
    origin: str  # e.g. "data_dir", "FF_MCP_DATA", "repository ../shared/data"
    flat: bool  # True when the directory itself (not a NAME/ subdirectory) should hold the files


@dataclass(frozen=True)
class SearchResult:
    """Where a data set was found (or not), with every candidate and the reason it was passed over."""

    name: str
    found: Candidate | None
    files: dict[str, Path] = field(default_factory=dict)  # standard .gz name -> the file on disk
    rejected: list[tuple[Candidate, str]] = field(default_factory=list)

    @property
    def searched(self) -> list[str]:
        """Every directory looked at, in order, as strings."""
        paths = [str(candidate.path) for candidate, _ in self.rejected]
        return paths + ([str(self.found.path)] if self.found else [])


def candidate_dirs(name: str, data_dir: str | os.PathLike[str] | None = None) -> list[Candidate]:
    """Return the directories to search for data set `name`, in order, without duplicates."""
    spec = _spec(name)
    candidates: list[Candidate] = []
    if data_dir is not None and str(data_dir) != "":
        candidates += _both_forms(Path(data_dir), spec.name, "data_dir")
    for entry in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if entry.strip():
            candidates += _both_forms(Path(entry.strip()), spec.name, ENV_VAR)
    shared = Path("..", "shared", "data", spec.name)
    candidates.append(Candidate(_absolute(REPO_ROOT / shared), "repository ../shared/data", False))
    try:
        candidates.append(Candidate(_absolute(Path.cwd() / shared), "working directory ../shared/data", False))
    except OSError:  # the working directory was deleted under us; skip it rather than fail a search
        pass
    for system_dir in SYSTEM_DIRS.get(spec.name, ()):
        candidates.append(Candidate(_absolute(system_dir), "system package", False))
    unique: dict[Path, Candidate] = {}
    for candidate in candidates:
        unique.setdefault(candidate.path, candidate)
    return list(unique.values())


def locate(name: str, data_dir: str | os.PathLike[str] | None = None) -> SearchResult:
    """Return where data set `name` is, trying `candidate_dirs` in order; never raises for missing data."""
    spec = _spec(name)
    rejected: list[tuple[Candidate, str]] = []
    for candidate in candidate_dirs(spec.name, data_dir):
        files, reason = _check_dir(candidate, spec)
        if reason is None:
            return SearchResult(spec.name, candidate, files, rejected)
        rejected.append((candidate, reason))
    return SearchResult(spec.name, None, {}, rejected)


def not_found_error(result: SearchResult) -> DatasetNotFoundError:
    """Return the error for a failed search: the four files, every place searched, and how to point at the data."""
    lines = [
        f"{result.name} data not found: need the four IDX files {', '.join(IDX_FILES)} "
        "(or the same names without .gz) together in one directory.",
        "Searched, in order:",
    ]
    lines += [f"  {candidate.path} ({candidate.origin}): {reason}" for candidate, reason in result.rejected]
    lines.append(
        f"Pass --data-dir DIR or set {ENV_VAR}=DIR, where DIR/{result.name} or DIR itself holds the four files. "
        "Nothing is downloaded."
    )
    return DatasetNotFoundError(
        "\n".join(lines), name=result.name, missing_files=IDX_FILES, searched=result.searched
    )


def load_idx_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> Dataset:
    """Return MNIST or Fashion-MNIST: x (N, 784) float32 in [0, 1], y (N,) int64; limits keep the first rows."""
    spec = _spec(name)
    result = locate(spec.name, data_dir)
    if result.found is None:
        raise not_found_error(result)
    if data_dir is not None and result.found.origin != "data_dir":
        logger.warning("no %s files in data_dir %s; using %s", spec.name, data_dir, result.found.path)
    files = result.files
    x_train, y_train = _read_split(files[TRAIN_IMAGES], files[TRAIN_LABELS], spec, limit_train, "limit_train")
    x_test, y_test = _read_split(files[TEST_IMAGES], files[TEST_LABELS], spec, limit_test, "limit_test")
    logger.info("loaded %s from %s: %d train, %d test rows", spec.name, result.found.path, len(y_train), len(y_test))
    return Dataset(
        name=spec.name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=spec.num_classes,
        image_shape=spec.image_shape,
        source=str(result.found.path),
    )


def _read_split(
    images_path: Path, labels_path: Path, spec: IdxSetSpec, limit: int | None, limit_name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected 3-D ubyte images, got {images.ndim}-D {images.dtype}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{labels_path}: expected 1-D ubyte labels, got {labels.ndim}-D {labels.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{labels_path} has {labels.shape[0]} labels but {images_path} has {images.shape[0]} images")
    if labels.size and int(labels.max()) >= spec.num_classes:
        row = int(np.argmax(labels >= spec.num_classes))
        raise ValueError(f"{labels_path}: label {labels[row]} at row {row} is out of range [0, {spec.num_classes})")
    n = checked_limit(limit_name, limit, len(labels))
    # Slice the uint8 data before widening to float32: 4x less memory when a limit is set.
    x = torch.from_numpy(images[:n].reshape(n, -1)).to(torch.float32).div_(255.0)  # (n, H*W) in [0, 1]
    y = torch.from_numpy(labels[:n]).to(torch.int64)  # (n,)
    return x, y


def _check_dir(candidate: Candidate, spec: IdxSetSpec) -> tuple[dict[str, Path], str | None]:
    """Return (files, None) when `candidate` holds all four files, else ({}, the reason it does not)."""
    try:
        if not candidate.path.is_dir():
            return {}, "does not exist" if not candidate.path.exists() else "not a directory"
        files: dict[str, Path] = {}
        missing: list[str] = []
        for standard in IDX_FILES:
            gz, plain = candidate.path / standard, candidate.path / standard.removesuffix(".gz")
            found = gz if gz.is_file() else plain if plain.is_file() else None
            if found is None:
                missing.append(standard)
            else:
                files[standard] = found
    except OSError as err:  # e.g. permission denied: report it as a reason, never raise from a search
        return {}, f"cannot be read ({err.strerror or err})"
    if missing:
        return {}, f"missing {', '.join(missing)}"
    if candidate.flat:
        # A bare directory of IDX files could hold either data set (the file names are the same);
        # refuse the one whose first labels are another known set's fingerprint.
        other = _fingerprint_match(files[TRAIN_LABELS])
        if other is not None and other != spec.name:
            return {}, f"holds {other} files (recognised by their first labels), not {spec.name}"
    return files, None


def _fingerprint_match(labels_path: Path) -> str | None:
    """Return the known data set whose first train labels these are, or None (unknown or unreadable)."""
    try:
        with open(labels_path, "rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
            data = stream.read(8 + 10)  # 8-byte header of a 1-D IDX file, then 10 labels
    except (OSError, EOFError, zlib.error):
        return None
    for spec in SPECS.values():
        if tuple(data[8:]) == spec.first_train_labels:
            return spec.name
    return None


def _both_forms(root: Path, name: str, origin: str) -> list[Candidate]:
    root = _absolute(root)
    return [Candidate(root / name, origin, False), Candidate(root, origin, True)]


def _absolute(path: Path) -> Path:
    # abspath, not resolve: keep the user's symlinked names in messages, but fold "..".
    return Path(os.path.abspath(path.expanduser()))


def _spec(name: str) -> IdxSetSpec:
    if name not in SPECS:
        raise ValueError(f"unknown IDX data set {name!r}; choose one of: {', '.join(SPECS)}")
    return SPECS[name]
