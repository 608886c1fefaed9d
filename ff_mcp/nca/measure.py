"""What a trained NCA rule does: growth from the seed, regeneration after damage, the picture strip,
and the rule's file (safetensors: w1, b1, w2, b2, with the target and settings as metadata)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import jax
import jax.numpy as jnp

from ff_mcp.nca import core

GROW_STEPS = 96
RESTORED = 0.15  # a damaged pixel counts as restored when every RGBA value is within this of the target


def fixed_damage(shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the evaluation's damage, a disk of radius H/5 left of the centre (the same every time)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    return np.hypot(yy - h / 2, xx - (w / 2 - w / 6)) < h / 5


def growth_and_regeneration(params: dict, target: jnp.ndarray, runs: int = 4, seed: int = 0,
                            grow: int = GROW_STEPS, regrow: int = GROW_STEPS) -> dict[str, Any]:
    """Grow ``runs`` states from the seed for ``grow`` steps, erase ``fixed_damage``, run ``regrow`` more.
    Returns the RGBA MSE to the target after growth, the fraction of the damaged target pixels that were
    right before the damage and after regrowth, and the MSE after regrowth."""
    h, w = target.shape[:2]
    states = jnp.tile(core.seed_state(h, w)[None], (runs, 1, 1, 1))
    k_grow, k_regrow = jax.random.split(jax.random.PRNGKey(seed))
    run = jax.jit(core.run, static_argnums=(3,))
    grown = run(params, states, k_grow, grow)
    hole = jnp.asarray(fixed_damage((h, w)))
    regrown = run(params, grown * (~hole)[None, :, :, None], k_regrow, regrow)
    region = np.asarray(hole & (target[..., 3] > core.ALIVE_THRESHOLD))

    def right(states):
        close = np.asarray(jnp.max(jnp.abs(states[..., :4] - target), axis=-1) < RESTORED)  # (runs, H, W)
        return round(float(close[:, region].mean()), 4) if region.any() else None  # the damage missed the target

    mse = lambda s: float(jnp.mean((s[..., :4] - target) ** 2))  # noqa: E731
    return {"growth_mse": round(mse(grown), 6), "regrown_mse": round(mse(regrown), 6),
            "damaged_pixels": int(region.sum()), "right_before_damage": right(grown),
            "restored_after_damage": right(regrown), "runs": runs, "grow_steps": grow,
            "regrow_steps": regrow}


def strip(params: dict, target: jnp.ndarray, steps: int = GROW_STEPS, damage: bool = True, seed: int = 0,
          scale: int = 4) -> np.ndarray:
    """(H', W', 3) uint8 picture: growth from the seed at a few steps, then (``damage``) the damaged state and
    its regrowth, each frame upscaled ``scale`` times and set on white, the target last."""
    h, w = target.shape[:2]
    marks = sorted({0, steps // 8, steps // 4, steps // 2, steps})
    key = jax.random.PRNGKey(seed)
    path = jax.jit(core.trajectory, static_argnums=(3,))
    frames = []
    state = core.seed_state(h, w)[None]
    grown = path(params, state, key, steps)[:, 0] if steps else state
    frames += [np.asarray(state[0]) if m == 0 else np.asarray(grown[m - 1]) for m in marks]
    if damage:
        hole = jnp.asarray(fixed_damage((h, w)))
        damaged = grown[-1] * (~hole)[:, :, None] if steps else state[0]
        frames.append(np.asarray(damaged))
        again = path(params, damaged[None], jax.random.fold_in(key, 1), steps)[:, 0] if steps else damaged[None]
        frames += [np.asarray(again[m - 1]) for m in marks if m > 0]
    pictures = [core.on_white(core.rgba_image(f)) for f in frames]
    target_rgba = np.round(np.clip(np.asarray(_straight(target)), 0, 1) * 255).astype(np.uint8)
    pictures.append(core.on_white(target_rgba))
    big = [np.kron(p, np.ones((scale, scale, 1), np.uint8)) for p in pictures]
    gap = np.full((h * scale, 2, 3), 128, np.uint8)
    row = [big[0]]
    for picture in big[1:]:
        row += [gap, picture]
    return np.concatenate(row, axis=1)


def _straight(target: jnp.ndarray) -> jnp.ndarray:
    alpha = target[..., 3:4]
    return jnp.concatenate([jnp.where(alpha > 1e-3, target[..., :3] / jnp.maximum(alpha, 1e-3), 0.0), alpha], -1)


def png_bytes(picture: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(picture, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def save_rule(path: str | Path, params: dict, meta: dict[str, Any]) -> Path:
    """The rule's weights and ``meta`` (JSON, with the target as premultiplied RGBA) in one safetensors file."""
    from safetensors.numpy import save

    from ff_mcp.engine.checkpoint import atomic_write_bytes

    path = Path(path)
    tensors = {k: np.ascontiguousarray(np.asarray(v, np.float32)) for k, v in params.items()}
    atomic_write_bytes(path, save(tensors, metadata={"ff_mcp_nca": json.dumps(meta)}))  # never half a file
    return path


def load_rule(path: str | Path) -> tuple[dict, dict[str, Any]]:
    """(params, meta) of a rule written by ``save_rule``; ValueError naming what is wrong otherwise."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model: no NCA rule at {path}")
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta_text = (f.metadata() or {}).get("ff_mcp_nca")
            params = {k: jnp.asarray(f.get_tensor(k)) for k in f.keys()}
    except Exception as exc:  # a truncated or foreign file
        raise ValueError(f"model: {path} is not a safetensors file ({exc})") from None
    if meta_text is None or set(params) != {"w1", "b1", "w2", "b2"}:
        raise ValueError(f"model: {path} is not an NCA rule written by ff-mcp nca train")
    try:
        meta = json.loads(meta_text)
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        raise ValueError(f"model: {path} has unreadable NCA metadata")
    shapes = {k: tuple(v.shape) for k, v in params.items()}
    hidden = shapes["w1"][1] if len(shapes["w1"]) == 2 else -1
    want = {"w1": (3 * core.CHANNELS, hidden), "b1": (hidden,), "w2": (hidden, core.CHANNELS), "b2": (core.CHANNELS,)}
    if hidden < 1 or shapes != want:
        raise ValueError(f"model: {path} has weights of shapes {shapes}; an NCA rule maps "
                         f"{3 * core.CHANNELS} -> H -> {core.CHANNELS}")
    return params, meta
