"""Two ways to learn the NCA's update rule for a target image.

``bptt``: the Distill paper's training ("regenerating" experiment) at CPU scale: a pool of states,
mini-batches of 8 run for a random 32-48 steps (the paper's 64-96 on a 72x72 grid, scaled to
40x40) from pool states, MSE of RGBA to the target after the
last step, back-propagation through every step, per-variable normalised gradients, Adam 2e-3 cut
10x after 70 % of the iterations; each batch's worst state is replaced by the seed and its two best
are damaged.

``ff``: forward-only. No gradient through time and none across the rule's two layers:

- a *teacher state* T (16 channels) gives every cell what it should hold: RGBA from the target, and as
  hidden channels its offset from the seed (x, y, distance: a positional code a new cell can read off
  its neighbours, one cell further out) and the target blurred at a few scales, so that a cell's
  neighbourhood tells it where in the image it is; cells the alive mask would kill are 0;
- training states: the growth curriculum (T inside a disk of growing radius around the seed, the seed
  first), T with noise, T with a disk erased, and, every ``rollout_every`` iterations, states the
  current rule visits when run from the seed and from damaged targets (teacher forcing on the rule's
  own trajectories, DAgger-style);
- the hidden layer (48 -> 128 ReLU) learns by FF: positive rows are perception vectors of alive cells
  in those training states, negative rows the same states with their cells shuffled (locally
  inconsistent neighbourhoods) or another target's teacher state; logistic loss of mean-square
  goodness against a threshold;
- the output layer (128 -> 16) learns by the delta rule (least squares on the detached hidden
  activity) toward the teacher-forced change ``T - s`` at each alive cell.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

import jax
import jax.numpy as jnp
import optax

from ff_mcp.nca import core

RULES = ("ff", "bptt")
HIDDEN_RULES = ("ff", "fixed", "backprop")


@dataclass(frozen=True)
class NcaConfig:
    rule: str = "ff"
    iterations: int = 2000
    batch: int = 8
    pool: int = 256
    min_steps: int = 32  # the paper's 64-96 steps grow a 72x72 grid; these a 40x40 one
    max_steps: int = 48
    lr: float = 2e-3
    seed: int = 0
    hidden: int = core.HIDDEN
    threshold: float = 1.0  # ff: mean-square goodness threshold
    rollout_every: int = 100  # ff: iterations between rollouts of the current rule
    teacher_rate: float = 0.5  # ff: the teacher-forced change is teacher_rate * (T - s)
    # how the hidden layer learns: "ff" (the forward-only rule); "fixed": it keeps its random start (an
    # ablation); "backprop": the delta rule's one-step error is back-propagated into it (a diagnostic: the
    # same teacher forcing without FF's locality, still no gradient through time)
    hidden_rule: str = "ff"

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {list(RULES)}, got {self.rule!r}")
        for name, low in (("iterations", 1), ("batch", 1), ("pool", 1), ("min_steps", 1), ("hidden", 1),
                          ("rollout_every", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be >= {low}, got {getattr(self, name)}")
        if self.max_steps < self.min_steps or self.max_steps > 1000:
            raise ValueError(f"max_steps must be in [min_steps, 1000], got {self.max_steps}")
        if self.pool < self.batch:
            raise ValueError(f"pool ({self.pool}) must hold at least one batch ({self.batch})")
        if not 0 < self.teacher_rate <= 1:
            raise ValueError(f"teacher_rate must be in (0, 1], got {self.teacher_rate}")
        if self.hidden_rule not in HIDDEN_RULES:
            raise ValueError(f"hidden_rule must be one of {list(HIDDEN_RULES)}, got {self.hidden_rule!r}")
        if not 0 < self.lr <= 1:
            raise ValueError(f"lr must be in (0, 1], got {self.lr}")


def rgba_loss(states: jnp.ndarray, target: jnp.ndarray) -> jnp.ndarray:
    """(B,) mean squared error of each state's RGBA to the target."""
    return jnp.mean((states[..., :4] - target) ** 2, axis=(1, 2, 3))


def run_masked(params, states, key, steps, max_steps):
    """``max_steps`` scan iterations of which the first ``steps`` (a traced int) change the states."""

    def body(s, ik):
        i, k = ik
        return jnp.where(i < steps, core.step(params, s, k), s), None

    states, _ = jax.lax.scan(body, states, (jnp.arange(max_steps), jax.random.split(key, max_steps)))
    return states


def _normalised(grads):
    return jax.tree_util.tree_map(lambda g: g / (jnp.linalg.norm(g) + 1e-8), grads)


def train_bptt(target: jnp.ndarray, config: NcaConfig,
               progress: Callable[[int, float], None] | None = None) -> tuple[dict, list[float]]:
    """The rule trained by back-propagation through time; returns (params, loss per iteration)."""
    h, w = target.shape[:2]
    key = jax.random.PRNGKey(config.seed)
    key, init = jax.random.split(key)
    params = core.init_params(init, config.hidden)
    schedule = optax.piecewise_constant_schedule(config.lr, {int(0.7 * config.iterations): 0.1})
    tx = optax.adam(schedule)
    opt_state = tx.init(params)
    seed = core.seed_state(h, w)
    pool = jnp.tile(seed[None], (config.pool, 1, 1, 1))

    @jax.jit
    def train_step(params, opt_state, states, key, steps):
        def per_sample(p):
            out = run_masked(p, states, key, steps, config.max_steps)
            return jnp.mean(rgba_loss(out, target)), out

        (loss, out), grads = jax.value_and_grad(per_sample, has_aux=True)(params)
        updates, opt_state = tx.update(_normalised(grads), opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, out

    rng = np.random.default_rng(config.seed)
    losses = []
    for it in range(config.iterations):
        index = rng.choice(config.pool, config.batch, replace=False)
        states = pool[index]
        order = np.argsort(-np.asarray(rgba_loss(states, target)))  # worst first
        index, states = index[order], states[order]
        states = states.at[0].set(seed)  # the worst goes back to the seed
        key, k_damage, k_run = jax.random.split(key, 3)
        damaged = min(2, config.batch - 1)
        if damaged:
            states = states.at[-damaged:].set(core.damage(states[-damaged:], k_damage))  # the best are damaged
        steps = int(rng.integers(config.min_steps, config.max_steps + 1))
        params, opt_state, loss, out = train_step(params, opt_state, states, k_run, steps)
        pool = pool.at[index].set(out)
        losses.append(float(loss))
        if progress is not None:
            progress(it + 1, losses[-1])
    return params, losses


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W, C) Gaussian blur (zero beyond the edges), as two matrix products."""

    def matrix(n: int) -> np.ndarray:
        i = np.arange(n)
        g = np.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma) ** 2)
        return g / g[n // 2].sum()  # rows sum to 1 in the middle, less near the edges (zeros beyond)

    return np.einsum("ij,jkc,lk->ilc", matrix(image.shape[0]), image, matrix(image.shape[1]))


def teacher_state(target: jnp.ndarray) -> jnp.ndarray:
    """(H, W, 16) what every cell should hold: RGBA, then 12 hidden channels: the cell's offset from the
    seed (x, y and distance, as fractions of the half-grid: a code each new cell can take from its
    neighbours' values, one cell further out), the RGBA blurred at sigma 2 and 4, and alpha blurred at
    sigma 8. 0 where the alive mask would kill the cell."""
    rgba = np.asarray(target)
    h, w = rgba.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    half = max(h, w) / 2
    dx, dy = (xx - w // 2) / half, (yy - h // 2) / half
    position = np.stack([dx, dy, np.hypot(dx, dy)], -1)
    full = np.concatenate([rgba, position, blur(rgba, 2.0), blur(rgba, 4.0), blur(rgba[..., 3:], 8.0)], axis=-1)
    state = jnp.asarray(full.astype(np.float32))[None]
    return (state * core.alive(state))[0]


def curriculum(teacher: jnp.ndarray, radii: int = 24) -> jnp.ndarray:
    """The seed, then the teacher state inside disks of growing radius around the centre."""
    h, w = teacher.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    distance = np.hypot(yy - h // 2, xx - w // 2)
    reach = distance[teacher[..., 3] > core.ALIVE_THRESHOLD].max() + 2
    states = [np.asarray(core.seed_state(h, w))]
    for r in np.linspace(1.0, reach, radii):
        inside = (distance <= r)[..., None]
        states.append(np.asarray(teacher) * inside)
    return jnp.asarray(np.stack(states))


def shuffled_cells(states: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
    """Each state with its cells permuted over the grid: the same values, neighbourhoods that do not fit."""
    b, h, w, c = states.shape
    flat = states.reshape(b, h * w, c)
    perms = jax.vmap(lambda k: jax.random.permutation(k, h * w))(jax.random.split(key, b))
    return jnp.take_along_axis(flat, perms[..., None], axis=1).reshape(b, h, w, c)


def _cells(states: jnp.ndarray, mask: jnp.ndarray, count: int, key: jax.Array):
    """``count`` (perception row, flat index) pairs drawn from the cells where ``mask`` holds."""
    feats = core.perceive(states).reshape(-1, 3 * core.CHANNELS)
    weights = mask.reshape(-1).astype(jnp.float32)
    total = weights.sum()  # a batch with no live cell (a rollout that died out): every cell, uniformly
    p = jnp.where(total > 0, weights / jnp.maximum(total, 1.0), 1.0 / weights.shape[0])
    chosen = jax.random.choice(key, feats.shape[0], (count,), p=p)
    return feats[chosen], chosen


def ff_hidden_loss(params: dict, pos: jnp.ndarray, neg: jnp.ndarray, threshold: float) -> jnp.ndarray:
    """The hidden layer's FF objective: logistic loss of mean-square goodness against ``threshold``, high
    for positive perception rows and low for negative ones. Depends on w1, b1 only."""
    g_pos = jnp.mean(core.hidden_activity(params, pos) ** 2, axis=1)
    g_neg = jnp.mean(core.hidden_activity(params, neg) ** 2, axis=1)
    return jnp.mean(jax.nn.softplus(threshold - g_pos)) + jnp.mean(jax.nn.softplus(g_neg - threshold))


def delta_rule_loss(params: dict, rows: jnp.ndarray, change: jnp.ndarray) -> jnp.ndarray:
    """The output layer's objective: squared error of its proposed change to the teacher-forced one, on the
    hidden activity taken as fixed (stop_gradient): its gradient is the delta rule's update of w2, b2."""
    hidden = jax.lax.stop_gradient(core.hidden_activity(params, rows))
    return jnp.mean((hidden @ params["w2"] + params["b2"] - change) ** 2)


def train_ff(target: jnp.ndarray, config: NcaConfig, other: jnp.ndarray | None = None,
             progress: Callable[[int, float], None] | None = None) -> tuple[dict, list[float]]:
    """The rule trained forward-only (see the module docstring); ``other``: another target whose teacher
    states are negatives. Returns (params, delta-rule loss per iteration)."""
    h, w = target.shape[:2]
    key = jax.random.PRNGKey(config.seed)
    key, init = jax.random.split(key)
    params = core.init_params(init, config.hidden)
    teacher = teacher_state(target)
    states = curriculum(teacher)
    other_teacher = teacher_state(other) if other is not None else None
    rows = 64 * config.batch  # cells per iteration, positive and negative each
    tx_hidden, tx_out = optax.adam(config.lr), optax.adam(config.lr)
    hidden_state = tx_hidden.init({"w1": params["w1"], "b1": params["b1"]})
    out_state = tx_out.init({"w2": params["w2"], "b2": params["b2"]})
    seed = core.seed_state(h, w)

    @jax.jit
    def ff_and_delta(params, hidden_state, out_state, batch, negatives, key):
        k_pos, k_neg = jax.random.split(key)
        live = core.alive(batch)[..., 0]
        pos, index = _cells(batch, live, rows, k_pos)
        neg, _ = _cells(negatives, core.alive(negatives)[..., 0], rows, k_neg)
        change = config.teacher_rate * (teacher[None] - batch).reshape(-1, core.CHANNELS)[index]  # teacher-forced

        f_loss, grads = jax.value_and_grad(ff_hidden_loss)(params, pos, neg, config.threshold)
        d_loss, d_grads = jax.value_and_grad(delta_rule_loss)(params, pos, change)
        hidden = {"w1": params["w1"], "b1": params["b1"]}
        out = {"w2": params["w2"], "b2": params["b2"]}
        if config.hidden_rule == "backprop":  # the one-step error through both layers (not forward-only)
            grads = jax.grad(lambda p: jnp.mean((core.update(p, pos) - change) ** 2))(params)
        up_h, new_hidden_state = tx_hidden.update({k: grads[k] for k in hidden}, hidden_state, hidden)
        if config.hidden_rule == "fixed":  # the random first layer stays as drawn
            up_h, new_hidden_state = jax.tree_util.tree_map(jnp.zeros_like, up_h), hidden_state
        hidden_state = new_hidden_state
        up_o, out_state = tx_out.update({k: d_grads[k] for k in out}, out_state, out)
        params = {**optax.apply_updates(hidden, up_h), **optax.apply_updates(out, up_o)}
        return params, hidden_state, out_state, f_loss, d_loss

    rollout = jax.jit(lambda p, s, k: core.trajectory(p, s, k, config.max_steps))
    rng = np.random.default_rng(config.seed)
    visited = states  # the training states: the curriculum, then the latest rollouts' states
    losses = []
    for it in range(config.iterations):
        key, k_noise, k_damage, k_shuffle, k_step = jax.random.split(key, 5)
        batch = visited[rng.integers(0, visited.shape[0], config.batch)]
        kinds = rng.integers(0, 3, config.batch)  # as drawn, with noise, or with damage
        noise = 0.1 * jax.random.normal(k_noise, batch.shape) * core.alive(batch)
        batch = jnp.where((kinds == 1)[:, None, None, None], batch + noise, batch)
        batch = jnp.where((kinds == 2)[:, None, None, None], core.damage(batch, k_damage), batch)
        negatives = shuffled_cells(batch, k_shuffle)
        if other_teacher is not None:
            negatives = negatives.at[0].set(other_teacher)
        params, hidden_state, out_state, f_loss, d_loss = ff_and_delta(params, hidden_state, out_state, batch,
                                                                       negatives, k_step)
        losses.append(float(d_loss))
        if (it + 1) % config.rollout_every == 0:  # the rule's own states, from the seed and from damage
            key, k_roll, k_dmg = jax.random.split(key, 3)
            starts = jnp.concatenate([seed[None], core.damage(teacher[None], k_dmg)])
            path = rollout(params, starts, k_roll)  # (steps, 2, H, W, C)
            own = path[7::8].reshape((-1,) + path.shape[2:])  # every 8th step of both runs
            visited = jnp.concatenate([states, own])
        if progress is not None:
            progress(it + 1, losses[-1])
    return params, losses


def train(target: jnp.ndarray, config: NcaConfig, other: jnp.ndarray | None = None,
          progress: Callable[[int, float], None] | None = None) -> tuple[dict, list[float], float]:
    """(params, losses, training seconds) of the configured rule."""
    started = time.perf_counter()
    if config.rule == "bptt":
        params, losses = train_bptt(target, config, progress)
    else:
        params, losses = train_ff(target, config, other, progress)
    return params, losses, time.perf_counter() - started
