"""Input normalisation applied before each FF layer.

FF "normalizes the length of the hidden vector before using it as input to the next layer"
(Hinton 2022, section 2), so the next layer sees only the *direction* of the activity and
cannot read the previous layer's goodness off its length.
"""

from __future__ import annotations

import torch

NORM_NAMES = ("rms", "l2", "none")

# Hinton's ffnormrows uses tiny = exp(-100) in double; 1e-8 is safe in float32/bf16.
_EPS = 1e-8


def rms_normalize(x: torch.Tensor) -> torch.Tensor:
    """(B, D) -> (B, D): x / RMS(x), so sum of squares averages 1 per unit (Matlab ``ffnormrows``)."""
    return x * torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + _EPS)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """(B, D) -> (B, D): x / (||x|| + 1e-4) (mpezeshki, fflib)."""
    return x / (x.norm(dim=-1, keepdim=True) + 1e-4)


def normalize(x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "rms":
        return rms_normalize(x)
    if kind == "l2":
        return l2_normalize(x)
    if kind == "none":
        return x
    raise ValueError(f"norm must be one of {list(NORM_NAMES)}, got {kind!r}")


def norm_scale(x: torch.Tensor, kind: str) -> torch.Tensor:
    """(B, D) -> (B, 1): the factor s with normalize(x) == s * x (1 for "none")."""
    if kind == "rms":
        return torch.rsqrt(x.square().mean(dim=-1, keepdim=True) + _EPS)
    if kind == "l2":
        return 1.0 / (x.norm(dim=-1, keepdim=True) + 1e-4)
    if kind == "none":
        return torch.ones_like(x[:, :1])
    raise ValueError(f"norm must be one of {list(NORM_NAMES)}, got {kind!r}")


def scale_from_sumsq(sumsq: torch.Tensor, width: int, kind: str) -> torch.Tensor:
    """(B,) row sums of squares -> (B, 1): the same factor as ``norm_scale`` without re-reading the rows
    (the fused step gets each layer's sums of squares for free from the goodness of the layer below)."""
    if kind == "rms":
        return torch.rsqrt(sumsq / width + _EPS).unsqueeze(1)
    if kind == "l2":
        return (1.0 / (sumsq.sqrt() + 1e-4)).unsqueeze(1)
    if kind == "none":
        return torch.ones_like(sumsq).unsqueeze(1)
    raise ValueError(f"norm must be one of {list(NORM_NAMES)}, got {kind!r}")
