"""Checkpoints: one safetensors file holding the weights, the configs, the metrics and a digest.

- Tensors are stored with safetensors (no pickle is ever loaded).
- Config and metrics are JSON strings in the safetensors header metadata, so the file is
  self-describing and a model rebuilds itself from it.
- ``sha256`` in the metadata covers every tensor's name, dtype, shape and bytes, so a
  truncated or altered file is refused with a clear error instead of loading garbage.
- Writes are atomic: a temporary file in the same directory, fsync, then ``os.replace``.
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

from .network import FFNetwork, NetworkConfig

FORMAT = "ff-mcp/checkpoint-v1"


class CheckpointError(ValueError):
    """A checkpoint could not be read: missing, truncated, altered or of another format."""


@dataclass
class Checkpoint:
    network: FFNetwork
    train_config: dict[str, Any]
    metrics: dict[str, Any]
    extra: dict[str, Any]


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
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


def save_checkpoint(path: str | Path, network: FFNetwork, train_config: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write the network and its metadata atomically; returns the path written."""
    path = Path(path)
    tensors = {name: t.detach().cpu().contiguous() for name, t in network.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "network_config": json.dumps(network.config.to_dict()),
        "train_config": json.dumps(train_config or {}),
        "metrics": json.dumps(metrics or {}),
        "extra": json.dumps(extra or {}),
        "sha256": tensor_digest(tensors),
    }
    atomic_write_bytes(path, st_save(tensors, metadata=metadata))
    return path


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
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not an ff-mcp checkpoint (format {metadata.get('format')!r})")
    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt: {exc}") from None
    if tensor_digest(tensors) != metadata.get("sha256"):
        raise CheckpointError(f"checkpoint {path} was altered: its tensors do not match the stored sha256")
    try:
        config = NetworkConfig.from_dict(json.loads(metadata["network_config"]))
        network = FFNetwork(config)
        network.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {path} does not describe a valid network: {exc}") from None
    return Checkpoint(
        network=network.to(device).eval(),
        train_config=json.loads(metadata.get("train_config", "{}")),
        metrics=json.loads(metadata.get("metrics", "{}")),
        extra=json.loads(metadata.get("extra", "{}")),
    )
