"""Checkpoints: one safetensors file holding the weights, the configs, the metrics and a digest.

- Tensors are stored with safetensors (no pickle is ever loaded).
- Config and metrics are JSON strings in the safetensors header metadata, so the file is
  self-describing and a model rebuilds itself from it.
- ``sha256`` in the metadata covers every tensor's name, dtype, shape and bytes, so a
  truncated or altered file is refused with a clear error instead of loading garbage.
- Writes are atomic: a temporary file in the same directory, fsync, then ``os.replace``.
- Format 2 names the model kind (``model_kind``) and stores its config as ``model_config``; the
  kind's registered class rebuilds the model. Format 1 files (written before model kinds) hold a
  dense MLP's ``network_config`` and load as kind "ff", predicting exactly as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from . import network as _dense  # noqa: F401  (registers the "ff" kind, which format 1 files hold)
from .protocol import FFModel, get_model_kind

FORMAT = "ff-mcp/checkpoint-v2"
FORMAT_1 = "ff-mcp/checkpoint-v1"
FORMATS = (FORMAT, FORMAT_1)


_MAX_HEADER_BYTES = 64 * 1024 * 1024


class CheckpointError(ValueError):
    """A checkpoint could not be read: missing, truncated, altered or of another format."""


@dataclass
class Checkpoint:
    model: FFModel
    train_config: dict[str, Any]
    metrics: dict[str, Any]
    extra: dict[str, Any]
    kind: str = "ff"
    format: str = FORMAT
    resume: Any = None  # a trainer.ResumeState when the run can go on from here (ff-mcp train --resume)

    @property
    def network(self) -> FFModel:
        return self.model


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-dim too
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


RESUME_PREFIX = "resume/"  # tensors of the resume state, beside the model's own


def save_checkpoint(path: str | Path, network: FFModel, train_config: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                    resume: Any = None) -> Path:
    """Write the model (any registered kind) and its metadata atomically; returns the path written.
    ``resume`` (a trainer.ResumeState): also keep the optimizer, schedule and RNG state, so the run
    can go on from here."""
    path = Path(path)
    if not network.kind:
        raise ValueError(f"{type(network).__name__} has no registered model kind; register_model_kind it first")
    tensors = {name: t.detach().cpu().contiguous() for name, t in network.state_dict().items()}
    resume_meta = None
    if resume is not None:
        skeleton = {"epoch": resume.epoch, "partial": resume.partial, "history": resume.history,
                    "session": resume.session, "rng": resume.rng}
        resume_tensors: dict[str, torch.Tensor] = {}
        resume_meta = json.dumps(_flatten(skeleton, RESUME_PREFIX, resume_tensors))
        tensors.update(resume_tensors)
    metadata = {
        "format": FORMAT,
        "model_kind": network.kind,
        "model_config": json.dumps(network.config.to_dict()),
        "methods": json.dumps(network.prediction_methods()),
        "train_config": json.dumps(train_config or {}),
        "metrics": json.dumps(metrics or {}),
        "extra": json.dumps(extra or {}),
        "sha256": tensor_digest(tensors),
        **({"resume": resume_meta} if resume_meta is not None else {}),
    }
    atomic_write_bytes(path, st_save(tensors, metadata=metadata))
    return path


def _flatten(value: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON for ``value`` with each tensor moved into ``tensors`` (a {"tensor": name} in its place);
    dicts keep their keys' types ({"dict": [[key, value], ...]}), tuples become lists."""
    if isinstance(value, torch.Tensor):
        key = f"{name}{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"tensor": key}
    if isinstance(value, dict):
        return {"dict": [[k, _flatten(v, name, tensors)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_flatten(v, name, tensors) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"resume state holds a {type(value).__name__}, which a checkpoint cannot keep")


def _unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict) and set(value) == {"tensor"}:
        return tensors[value["tensor"]]
    if isinstance(value, dict) and set(value) == {"dict"}:
        return {k: _unflatten(v, tensors) for k, v in value["dict"]}
    if isinstance(value, list):
        return [_unflatten(v, tensors) for v in value]
    return value


def _read_header_metadata(raw: bytes, path: Path) -> dict[str, str]:
    if len(raw) < 8:
        raise CheckpointError(f"checkpoint {path} is truncated ({len(raw)} bytes)")
    header_len = int.from_bytes(raw[:8], "little")
    if header_len <= 0 or 8 + header_len > len(raw):
        raise CheckpointError(f"checkpoint {path} is truncated or not a safetensors file (header of {header_len} bytes)")
    try:
        header = json.loads(raw[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint {path} has a corrupt header") from None
    return header.get("__metadata__") or {}


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> Checkpoint:
    """Read and verify a checkpoint; raises CheckpointError with the reason on any problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    metadata = _read_header_metadata(raw, path)
    if metadata.get("format") not in FORMATS:
        raise CheckpointError(f"checkpoint {path} is not an ff-mcp checkpoint (format {metadata.get('format')!r})")
    kind, config_json = model_kind_and_config(metadata)
    try:
        cls = get_model_kind(kind)
    except ValueError:
        raise CheckpointError(f"checkpoint {path} holds a model of kind {kind!r}, which is not registered here "
                              f"(registered: {_kind_list()}); import the module that defines it") from None
    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {exc}") from None
    if tensor_digest(tensors) != metadata.get("sha256"):
        raise CheckpointError(f"checkpoint {path} was altered: its tensors do not match the stored sha256")
    resume_tensors = {k: tensors.pop(k) for k in [k for k in tensors if k.startswith(RESUME_PREFIX)]}
    try:
        config = cls.config_class.from_dict(json.loads(config_json))
        model = cls(config)
        model.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} does not describe a valid {kind!r} model: {exc}") from None
    resume = None
    if "resume" in metadata:
        from .trainer import ResumeState

        try:
            saved = _unflatten(json.loads(metadata["resume"]), resume_tensors)
            resume = ResumeState(int(saved["epoch"]), saved["session"], saved["rng"], saved["history"],
                                 bool(saved["partial"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} has a corrupt resume state: {exc}") from None
    return Checkpoint(
        model=model.to(device).eval(),
        train_config=json.loads(metadata.get("train_config", "{}")),
        metrics=json.loads(metadata.get("metrics", "{}")),
        extra=json.loads(metadata.get("extra", "{}")),
        kind=kind,
        format=metadata["format"],
        resume=resume,
    )


def model_kind_and_config(metadata: dict[str, str]) -> tuple[str, str]:
    """(kind, config JSON) of a checkpoint's metadata, either format."""
    if metadata.get("format") == FORMAT_1:
        return "ff", metadata.get("network_config", "{}")
    return str(metadata.get("model_kind", "")), metadata.get("model_config", "{}")


def methods_of(metadata: dict[str, str]) -> dict[str, str]:
    """The prediction methods a checkpoint's model has (name -> description), from its header only."""
    if metadata.get("format") == FORMAT_1:
        from .network import FFNetwork, NetworkConfig

        return FFNetwork.methods_for(NetworkConfig.from_dict(json.loads(metadata.get("network_config", "{}"))))
    return json.loads(metadata.get("methods", "{}"))


def _kind_list() -> list[str]:
    from .protocol import model_kind_names

    return model_kind_names()


def read_metadata(path: Path) -> dict[str, str]:
    """The safetensors header's ``__metadata__`` without reading the tensors."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"checkpoint {path.name} is truncated ({len(head)} bytes)")
            size = int.from_bytes(head, "little")
            if not 0 < size <= _MAX_HEADER_BYTES:
                raise CheckpointError(f"checkpoint {path.name} is not a safetensors file (header of {size} bytes)")
            raw = f.read(size)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path.name} does not exist") from None
    if len(raw) < size:
        raise CheckpointError(f"checkpoint {path.name} is truncated")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"checkpoint {path.name} has a corrupt header") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}
