"""The model registry: one safetensors checkpoint per model name under ``<root>/models``.

Names are validated before any path is built, and the built path must resolve inside the root.
Checkpoints are written atomically by the engine (temporary ``.<name>.<random>.tmp`` file,
fsync, rename), so a killed server leaves at worst a hidden temporary file: the registry never
lists those, and deletes them all when it opens and no other live server shares the directory
(each server holds a shared lock on ``<root>/registry.lock``; an exclusive lock at start means
nobody else is writing). Errors speak of model names, never of host paths. A model name being
written by one call (a training job, color learning) cannot be written by another at the same time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ff_mcp.engine import CheckpointError, FFNetwork, load_checkpoint, save_checkpoint
from ff_mcp.engine.checkpoint import FORMATS, Checkpoint, methods_of, model_kind_and_config, read_metadata
from ff_mcp.server.dirlock import DirectoryLock
from ff_mcp.server.errors import NotFoundError
from ff_mcp.tools import NAME_PATTERN, is_valid_name, validate_name  # noqa: F401  (names are the tools' names)
from ff_mcp.server.schemas import ModelCard

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"
STALE_TMP_SECONDS = 60.0  # with another live server on the directory: older temporaries are nobody's
LOCK_FILE = "registry.lock"


class UnknownModelError(NotFoundError):
    """No model of that name is saved."""


class ModelRegistry:
    """Saved models by name; safe to use from several threads."""

    def __init__(self, root: str | os.PathLike[str], cache_size: int = 8) -> None:
        self.root = Path(root).expanduser().resolve()
        self.models_dir = self.root / "models"
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[tuple[int, int, int], Checkpoint]] = OrderedDict()
        self._cache_size = cache_size
        self._writers: dict[str, str] = {}  # model name -> what is writing it
        self._directory = DirectoryLock(self.root / LOCK_FILE, while_alone=lambda: self.clean_stale_temporaries(0.0))
        if not self._directory.alone:  # another live server may be writing: only old temporaries are dead
            self.clean_stale_temporaries(STALE_TMP_SECONDS)

    def close(self) -> None:
        self._directory.close()

    # ---- who writes what ---------------------------------------------------------------------

    @contextmanager
    def writing(self, name: str, holder: str) -> Iterator[None]:
        """Reserve model ``name`` for ``holder`` (e.g. "job job-1a2b", "an ff_color_learn call") while the
        block runs; ValueError naming the model and its writer if another call holds it."""
        self.claim(name, holder)
        try:
            yield
        finally:
            self.release(name, holder)

    def claim(self, name: str, holder: str) -> None:
        validate_name(name)
        with self._lock:
            other = self._writers.get(name)
            if other is not None:
                raise ValueError(f"model {name!r} is being written by {other}; wait for it to finish "
                                 f"(or cancel it) before writing {name!r} again")
            self._writers[name] = holder

    def release(self, name: str, holder: str) -> None:
        with self._lock:
            if self._writers.get(name) == holder:
                del self._writers[name]

    def writer_of(self, name: str) -> str | None:
        with self._lock:
            return self._writers.get(name)

    # ---- paths ------------------------------------------------------------------------------

    def path_for(self, name: str) -> Path:
        """The checkpoint path of a validated name; never leaves ``<root>/models``."""
        validate_name(name)
        path = self.models_dir / f"{name}{SUFFIX}"
        # Defence in depth: the regex already excludes separators; a symlinked file must not escape either.
        if not path.resolve().is_relative_to(self.models_dir):
            raise ValueError(f"model {name!r} resolves outside the registry")
        return path

    def clean_stale_temporaries(self, older_than: float = STALE_TMP_SECONDS) -> list[str]:
        """Delete ``.*.tmp`` files left by killed writers; returns their names."""
        removed = []
        now = time.time()
        for path in self.models_dir.glob(".*.tmp"):
            try:
                if now - path.stat().st_mtime >= older_than:
                    path.unlink()
                    removed.append(path.name)
            except OSError:
                continue
        if removed:
            log.info("removed %d stale temporary file(s) from %s", len(removed), self.models_dir)
        return removed

    # ---- writing ----------------------------------------------------------------------------

    def save(self, name: str, network: FFNetwork, train_config: dict[str, Any] | None = None,
             metrics: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> ModelCard:
        """Write (or replace) model `name` atomically and return its card."""
        path = self.path_for(name)
        extra = {"created": _now_iso(), **(extra or {})}
        with self._model_errors(name, path):
            save_checkpoint(path, network, train_config or {}, metrics or {}, extra)
        with self._lock:
            self._cache.pop(name, None)
        return self.info(name)

    def delete(self, name: str) -> None:
        path = self.path_for(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise self._unknown(name) from None
        with self._lock:
            self._cache.pop(name, None)

    # ---- reading ----------------------------------------------------------------------------

    def exists(self, name: str) -> bool:
        return self.path_for(name).is_file()

    def names(self) -> list[str]:
        found = []
        for path in self.models_dir.glob(f"*{SUFFIX}"):
            stem = path.name[: -len(SUFFIX)]
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                continue
            if is_valid_name(stem) and path.is_file():
                found.append(stem)
        return sorted(found)

    def load(self, name: str, device: str = "cpu") -> Checkpoint:
        """The model's checkpoint, cached until the file changes. Treat the network as read-only."""
        path = self.path_for(name)
        key = self._file_key(path, name)
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] == key and device == "cpu":
                self._cache.move_to_end(name)
                return hit[1]
        with self._model_errors(name, path):
            checkpoint = load_checkpoint(path, device=device)
        if device == "cpu":
            with self._lock:
                self._cache[name] = (key, checkpoint)
                self._cache.move_to_end(name)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return checkpoint

    def info(self, name: str) -> ModelCard:
        """The model card, read from the checkpoint header only (no tensors are loaded)."""
        path = self.path_for(name)
        stat = self._stat(path, name)
        with self._model_errors(name, path):
            meta = read_metadata(path)
        if meta.get("format") not in FORMATS:
            raise CheckpointError(f"model {name!r} is not an ff-mcp checkpoint (format {meta.get('format')!r})")
        try:
            kind, config_json = model_kind_and_config(meta)
            config = json.loads(config_json)
            methods = methods_of(meta)
            train_config = json.loads(meta.get("train_config", "{}"))
            metrics = json.loads(meta.get("metrics", "{}"))
            extra = json.loads(meta.get("extra", "{}"))
        except (json.JSONDecodeError, TypeError, ValueError):
            raise CheckpointError(f"model {name!r} has corrupt metadata") from None
        final = metrics.get("final") if isinstance(metrics.get("final"), dict) else {
            k: v for k, v in metrics.items() if k != "history"}
        if isinstance(metrics.get("final"), dict) and "train_seconds" in metrics:
            final = {**final, "train_seconds": metrics["train_seconds"]}
        final = {k: v for k, v in final.items() if k != "layers"}
        created = extra.get("created") or _iso(stat.st_mtime)
        return ModelCard(
            name=name, uri=f"ff://models/{name}", created=str(created), bytes=stat.st_size,
            state=metrics.get("state"), dataset=extra.get("dataset"), kind=kind, methods=list(methods),
            config=config,
            train_config=train_config, metrics=final,
            extra={k: v for k, v in extra.items() if k not in ("created", "dataset")},
        )

    def list(self) -> list[ModelCard]:
        cards = []
        for name in self.names():
            try:
                cards.append(self.info(name))
            except (CheckpointError, UnknownModelError, OSError) as exc:
                try:
                    stat = self.path_for(name).stat()
                except OSError:
                    continue  # deleted meanwhile
                cards.append(ModelCard(name=name, uri=f"ff://models/{name}", created=_iso(stat.st_mtime),
                                       bytes=stat.st_size, error=str(exc)))
        return cards

    # ---- helpers ----------------------------------------------------------------------------

    @contextmanager
    def _model_errors(self, name: str, path: Path) -> Iterator[None]:
        """Checkpoint errors name the checkpoint's file; a client knows it by model name only."""
        try:
            yield
        except CheckpointError as exc:
            raise CheckpointError(self._without_paths(str(exc), name, path)) from None
        except FileNotFoundError:
            raise self._unknown(name) from None
        except OSError as exc:
            raise CheckpointError(f"model {name!r} cannot be read or written: {exc.strerror or type(exc).__name__}") from None

    def _without_paths(self, text: str, name: str, path: Path) -> str:
        for where in (f"checkpoint {path}", f"checkpoint {path.name}"):
            text = text.replace(where, f"model {name!r}")
        for where in (str(path), str(self.models_dir), str(self.root), path.name):
            text = text.replace(where, f"model {name!r}")
        return text

    def _unknown(self, name: str) -> UnknownModelError:
        known = self.names()
        hint = f"saved models: {', '.join(known[:20])}" if known else "no models are saved yet; train one with ff_train"
        return UnknownModelError(f"model {name!r} does not exist; {hint}")

    def _stat(self, path: Path, name: str) -> os.stat_result:
        try:
            return path.stat()
        except FileNotFoundError:
            raise self._unknown(name) from None

    def _file_key(self, path: Path, name: str) -> tuple[int, int, int]:
        stat = self._stat(path, name)
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
