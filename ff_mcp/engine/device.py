"""Device and mixed-precision choices."""

from __future__ import annotations

import contextlib

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
AMP_CHOICES = ("none", "bf16", "fp16")


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" picks cuda, then mps, then cpu; an explicit choice that is not present is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for but CUDA is not available; use 'cpu' or 'auto'")
        return torch.device(name)
    if name == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise ValueError("device 'mps' was asked for but MPS is not available; use 'cpu' or 'auto'")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"device must be one of {list(DEVICE_CHOICES)} (or 'cuda:N'), got {name!r}")


def autocast(device: torch.device, amp: str):
    """A context manager: bf16/fp16 autocast on CUDA (bf16 also on CPU), or nothing for "none"."""
    if amp == "none":
        return contextlib.nullcontext()
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {list(AMP_CHOICES)}, got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp 'fp16' needs a CUDA device, got {device.type!r}; use 'bf16' or 'none'")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
