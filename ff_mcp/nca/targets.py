"""The NCA's committed targets: small RGBA images drawn by this project (``python -m ff_mcp.nca.targets``
redraws them bit for bit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent / "images"
SIZE = 32


def _disk(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float) -> np.ndarray:
    """Anti-aliased coverage of a disk (1 inside, 0 outside, a one-pixel ramp at the edge)."""
    return np.clip(r + 0.5 - np.hypot(yy - cy, xx - cx), 0.0, 1.0)


def draw(name: str) -> np.ndarray:
    """(SIZE, SIZE, 4) uint8 RGBA of a named target."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) + 0.5
    c = SIZE / 2
    rgb = np.zeros((SIZE, SIZE, 3))
    if name == "smiley":  # a yellow face, dark eyes, a red mouth
        alpha = _disk(yy, xx, c, c, 13.0)
        rgb[:] = (1.0, 0.82, 0.1)
        eyes = np.maximum(_disk(yy, xx, c - 4, c - 5, 2.2), _disk(yy, xx, c - 4, c + 5, 2.2))
        mouth = np.clip(1.5 - np.abs(np.hypot(yy - c + 1, xx - c) - 8.0), 0, 1) * (yy > c + 3)
        for mark, colour in ((eyes, (0.15, 0.1, 0.1)), (mouth, (0.85, 0.1, 0.1))):
            rgb = rgb * (1 - mark[..., None]) + np.array(colour) * mark[..., None]
    elif name == "ring":  # a blue ring around an orange centre
        r = np.hypot(yy - c, xx - c)
        ring = np.clip(1.0 - np.abs(r - 10.5) / 3.0, 0, 1)
        centre = _disk(yy, xx, c, c, 4.0)
        alpha = np.maximum(ring, centre)
        rgb[:] = (0.1, 0.35, 0.95)
        rgb = rgb * (1 - centre[..., None]) + np.array((1.0, 0.55, 0.1)) * centre[..., None]
    else:
        raise ValueError(f"target must be one of {NAMES}, got {name!r}")
    rgba = np.concatenate([rgb * (alpha[..., None] > 0), alpha[..., None]], axis=-1)
    return np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8)


NAMES = ("smiley", "ring")


def path_of(name: str) -> Path:
    return HERE / f"{name}.png"


if __name__ == "__main__":
    from PIL import Image

    for target in NAMES:
        Image.fromarray(draw(target), "RGBA").save(path_of(target), optimize=False)
        print(path_of(target))
