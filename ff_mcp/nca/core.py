"""The Growing Neural Cellular Automaton (Mordvintsev et al., Distill 2020) in JAX.

A state is (B, H, W, 16): RGBA (colour premultiplied by alpha) and 12 hidden channels. One step:

1. perception: each channel convolved with identity, Sobel x and Sobel y (divided by 8), zero padding
   -> 48 features per cell, ordered [c0: id, sx, sy, c1: id, sx, sy, ...] (as a depthwise convolution);
2. the update rule, the same small MLP at every cell: 48 -> 128 ReLU -> 16, its last layer
   zero-initialised and no output ReLU (cells can grow and shrink);
3. stochastic update: each cell applies its update with probability ``fire_rate`` (0.5);
4. alive masking: a cell is alive when the 3x3 max-pool of alpha is above 0.1 before and after the
   step; every channel of a dead cell is set to 0.

The seed is one live cell in the centre: alpha and the hidden channels 1, colour 0. With the
zero-initialised last layer the update is 0 and the seed stays as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

try:  # the optional extra
    import jax
    import jax.numpy as jnp
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the NCA needs the jax extra: pip install 'ff-mcp[jax]' (jax, optax)") from exc

CHANNELS = 16
HIDDEN = 128
FIRE_RATE = 0.5
ALIVE_THRESHOLD = 0.1
SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
IDENTITY = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


def perception_kernel(channels: int = CHANNELS) -> jnp.ndarray:
    """(3, 3, 1, 3C) HWIO depthwise kernel: identity, Sobel x, Sobel y for every channel."""
    per_channel = np.stack([IDENTITY, SOBEL_X, SOBEL_X.T], axis=-1)  # (3, 3, 3)
    return jnp.asarray(np.tile(per_channel, (1, 1, channels))[:, :, None, :], jnp.float32)


def perceive(state: jnp.ndarray) -> jnp.ndarray:
    """(B, H, W, C) -> (B, H, W, 3C) perception vectors."""
    channels = state.shape[-1]
    return jax.lax.conv_general_dilated(state, perception_kernel(channels), (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels)


def alive(state: jnp.ndarray) -> jnp.ndarray:
    """(B, H, W, C) -> (B, H, W, 1) bool: the 3x3 max-pool of alpha above the threshold."""
    alpha = state[..., 3:4]
    pooled = jax.lax.reduce_window(alpha, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
    return pooled > ALIVE_THRESHOLD


def init_params(key: jax.Array, hidden: int = HIDDEN, channels: int = CHANNELS) -> dict[str, jnp.ndarray]:
    """The update rule's weights: the first layer Glorot-uniform with zero bias, the last all zero."""
    fan_in = 3 * channels
    limit = float(np.sqrt(6.0 / (fan_in + hidden)))
    return {"w1": jax.random.uniform(key, (fan_in, hidden), jnp.float32, -limit, limit),
            "b1": jnp.zeros(hidden, jnp.float32),
            "w2": jnp.zeros((hidden, channels), jnp.float32),
            "b2": jnp.zeros(channels, jnp.float32)}


def hidden_activity(params: dict[str, jnp.ndarray], features: jnp.ndarray) -> jnp.ndarray:
    return jax.nn.relu(features @ params["w1"] + params["b1"])


def update(params: dict[str, jnp.ndarray], features: jnp.ndarray) -> jnp.ndarray:
    """(..., 48) perception -> (..., 16) state change proposed by the rule."""
    return hidden_activity(params, features) @ params["w2"] + params["b2"]


def step(params: dict[str, jnp.ndarray], state: jnp.ndarray, key: jax.Array,
         fire_rate: float = FIRE_RATE) -> jnp.ndarray:
    """One NCA step of a batch of states."""
    before = alive(state)
    change = update(params, perceive(state))
    fire = jax.random.uniform(key, state.shape[:-1] + (1,)) <= fire_rate
    state = state + change * fire
    return state * (before & alive(state))


def run(params: dict[str, jnp.ndarray], state: jnp.ndarray, key: jax.Array, steps: int,
        fire_rate: float = FIRE_RATE) -> jnp.ndarray:
    """``steps`` NCA steps (a jax.lax.scan; differentiable end to end)."""

    def body(s, k):
        return step(params, s, k, fire_rate), None

    state, _ = jax.lax.scan(body, state, jax.random.split(key, steps))
    return state


def trajectory(params: dict[str, jnp.ndarray], state: jnp.ndarray, key: jax.Array, steps: int,
               fire_rate: float = FIRE_RATE) -> jnp.ndarray:
    """(steps, ...) the states after each of ``steps`` NCA steps."""

    def body(s, k):
        s = step(params, s, k, fire_rate)
        return s, s

    _, path = jax.lax.scan(body, state, jax.random.split(key, steps))
    return path


def seed_state(height: int, width: int, channels: int = CHANNELS) -> jnp.ndarray:
    """(H, W, C): one live cell in the centre, alpha and hidden channels 1."""
    state = np.zeros((height, width, channels), np.float32)
    state[height // 2, width // 2, 3:] = 1.0
    return jnp.asarray(state)


def load_target(path: str | Path, pad: int) -> jnp.ndarray:
    """An RGBA image as (H + 2 pad, W + 2 pad, 4) floats in [0, 1], colour premultiplied by alpha."""
    from PIL import Image

    try:
        image = Image.open(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"target: cannot read {path} as an image ({exc})") from None
    rgba = np.asarray(image.convert("RGBA"), np.float32) / 255.0
    if max(rgba.shape[:2]) > 128:
        raise ValueError(f"target: at most 128x128 pixels (the NCA runs on the CPU), got "
                         f"{rgba.shape[1]}x{rgba.shape[0]}")
    if rgba[..., 3].max() <= ALIVE_THRESHOLD:
        raise ValueError(f"target: {path} is fully transparent; the NCA grows the opaque part of an RGBA image")
    rgba[..., :3] *= rgba[..., 3:4]
    return jnp.asarray(np.pad(rgba, ((pad, pad), (pad, pad), (0, 0))))


def damage(state: jnp.ndarray, key: jax.Array, radius_range: tuple[float, float] = (0.1, 0.4)) -> jnp.ndarray:
    """Each state with a random disk erased (all channels 0): centre within the middle half of the grid,
    radius 0.1-0.4 of the half-grid (the Distill paper's damage: r in [0.1, 0.4] in [-1, 1] coordinates)."""
    b, h, w, _ = state.shape
    kc, kr = jax.random.split(key)
    centre = jax.random.uniform(kc, (b, 2), minval=0.25, maxval=0.75) * jnp.array([h, w])
    radius = jax.random.uniform(kr, (b,), minval=radius_range[0], maxval=radius_range[1]) * min(h, w) / 2
    yy, xx = jnp.mgrid[0:h, 0:w]
    inside = (yy[None] - centre[:, 0, None, None]) ** 2 + (xx[None] - centre[:, 1, None, None]) ** 2 < radius[:, None, None] ** 2
    return state * (~inside)[..., None]


def rgba_image(state: jnp.ndarray) -> np.ndarray:
    """(H, W, C) state -> (H, W, 4) uint8 straight-alpha RGBA for viewing (composited on white later)."""
    rgba = np.clip(np.asarray(state[..., :4]), 0.0, 1.0)
    alpha = rgba[..., 3:4]
    rgb = np.where(alpha > 1e-3, rgba[..., :3] / np.maximum(alpha, 1e-3), 0.0)
    return np.round(np.concatenate([np.clip(rgb, 0, 1), alpha], -1) * 255).astype(np.uint8)


def on_white(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 -> (H, W, 3) uint8 composited over white."""
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.round(rgba[..., :3] * a + 255.0 * (1 - a)).astype(np.uint8)


def params_to_numpy(params: dict[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in params.items()}
