"""The dense FF MLP in JAX (optional extra: ``pip install ff-mcp[jax]``): training sessions that run
the torch engine's computation in JAX, inside the engine's own trainer loop.

``JaxSession`` computes what ``engine.dense.DenseSession`` computes with the autograd step for a
network of ``FFNetwork`` (label overlay or concat, RMS or L2 input normalisation, ReLU or ReLU with
full gradient, sum-of-squares goodness against a threshold, the logistic loss over positive and
negative rows, peer normalisation, the bias-free neutral-label readout on the normalised activities
of the scored layers) under the simultaneous schedule with wrong-label negatives, SGD, Adam or AdamW
(optax), and the trainer's learning-rate cooldown. Every layer's input and the readout's features
pass through ``jax.lax.stop_gradient``: the gradient of one layer's loss with respect to any other
layer's weights is exactly zero.

``ParallelJaxSession`` is the layer-parallel step: the layers above the first are stacked as
(L-1, d, d) and all layers take their local step in one jitted call, ``jax.vmap`` over the stack, each
on the detached output the layer below produced in the previous step. Mini-batches move up one layer
per step as in a pipeline (layer k trains on batch t-k at step t), so no layer waits for another within
a step; the readout trains on each batch's features once the batch has left the top layer. The first
L-1 steps of a fit fill the pipeline: the layers above have no input yet and their weights stand still
(their optimizer state still takes those steps with a zero loss gradient: Adam's step count advances,
and weight decay enters SGD's momentum and Adam's moments; a warm-up effect of L-1 steps).

Both sessions plug into ``engine.Trainer`` (``Trainer(net, config, session=JaxSession)``;
``ff-mcp train --backend jax|jax-parallel``): the trainer draws the batches and the negative labels
from the seed's torch streams, the torch model's weights are the starting point (drawn once by the
torch engine from the seed, shared), and at every epoch's end the weights are copied back into the
torch model, which evaluates, predicts and saves in the usual checkpoint format (``load_params`` reads
a checkpoint back into JAX).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

try:  # the optional extra
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the JAX backend needs the jax extra: pip install 'ff-mcp[jax]' (jax, optax)") from exc

from ff_mcp.engine.negatives import wrong_labels
from ff_mcp.engine.network import FFNetwork
from ff_mcp.engine.protocol import Batch, Session
from ff_mcp.engine.trainer import TrainConfig

EPS_RMS = 1e-8  # engine/norms.py
BACKENDS = ("torch", "jax", "jax-parallel")


@dataclass(frozen=True)
class JaxSpec:
    """The static facts of a network the JAX step needs (from its NetworkConfig)."""

    widths: tuple[int, ...]  # hidden widths
    num_classes: int
    label_mode: str  # overlay | concat
    strength: float
    norm: str  # rms | l2
    activation: str  # relu | relu_full_grad
    thresholds: tuple[float, ...]
    first_scored: int
    readout: bool
    peer_norm: float = 0.0

    @classmethod
    def of(cls, net: FFNetwork, backend: str = "jax") -> "JaxSpec":
        if not isinstance(net, FFNetwork):
            raise ValueError(f"backend {backend}: runs variant 'ff' (the dense MLP), got {getattr(net, 'kind', net)!r}")
        cfg = net.config
        problems = []
        if cfg.goodness != "sum_squares" or cfg.loss != "softplus":
            problems.append("goodness sum_squares with the softplus loss")
        if cfg.label_mode not in ("overlay", "concat"):
            problems.append("label_mode overlay or concat")
        if cfg.norm not in ("rms", "l2") or cfg.activation not in ("relu", "relu_full_grad"):
            problems.append("norm rms or l2 and activation relu or relu_full_grad")
        if cfg.standardize or not cfg.bias:
            problems.append("no input standardisation, biases on")
        if problems:
            raise ValueError(f"backend {backend}: runs the dense net with {'; '.join(problems)}")
        return cls(tuple(cfg.hidden), cfg.num_classes, cfg.label_mode, float(cfg.label_strength), cfg.norm,
                   cfg.activation, tuple(float(layer.threshold) for layer in net.layers), net.first_scored_layer,
                   bool(cfg.readout), float(cfg.peer_norm))


def params_from_torch(net: FFNetwork) -> dict[str, Any]:
    """{"layers": [{"w": (out, in), "b": (out,)}, ...], "readout": (K, F)} as float32 JAX arrays."""
    layers = [{"w": jnp.asarray(layer.weight.detach().cpu().numpy()), "b": jnp.asarray(layer.bias.detach().cpu().numpy())}
              for layer in net.layers]
    params: dict[str, Any] = {"layers": layers}
    if net.config.readout:
        params["readout"] = jnp.asarray(net.readout.weight.detach().cpu().numpy())
    return params


def params_to_torch(params: dict[str, Any], net: FFNetwork) -> FFNetwork:
    """Copy the JAX weights (``params_from_torch``'s layout) into ``net`` (a torch model of the same
    config); returns it."""
    with torch.no_grad():
        for layer, p in zip(net.layers, params["layers"]):
            layer.weight.copy_(torch.from_numpy(np.array(p["w"])))
            layer.bias.copy_(torch.from_numpy(np.array(p["b"])))
        if "readout" in params:
            net.readout.weight.copy_(torch.from_numpy(np.array(params["readout"])))
    return net


def load_params(path: str | Path) -> tuple[JaxSpec, dict[str, Any]]:
    """A checkpoint written by either backend, as (spec, params) for the JAX functions here."""
    from ff_mcp.engine import load_checkpoint

    net = load_checkpoint(path).model
    if not isinstance(net, FFNetwork):
        raise ValueError(f"{path}: backend jax reads checkpoints of variant 'ff', this one is {net.kind!r}")
    return JaxSpec.of(net), params_from_torch(net)


def _normalize(x: jnp.ndarray, kind: str) -> jnp.ndarray:
    if kind == "rms":
        return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + EPS_RMS)
    return x / (jnp.linalg.norm(x, axis=-1, keepdims=True) + 1e-4)


@jax.custom_vjp
def _relu_full_grad(x: jnp.ndarray) -> jnp.ndarray:
    return jnp.maximum(x, 0.0)


_relu_full_grad.defvjp(lambda x: (jnp.maximum(x, 0.0), None), lambda _, g: (g,))


def _activate(x: jnp.ndarray, kind: str) -> jnp.ndarray:
    return _relu_full_grad(x) if kind == "relu_full_grad" else jax.nn.relu(x)


def embed(spec: JaxSpec, x: jnp.ndarray, codes: jnp.ndarray) -> jnp.ndarray:
    """Rows with their label codes (B, K): overlaid on the first K inputs, or put in front of them."""
    codes = spec.strength * codes
    if spec.label_mode == "concat":
        return jnp.concatenate([codes, x], axis=1)
    return jnp.concatenate([codes, x[:, spec.num_classes:]], axis=1)


def input_rows(spec: JaxSpec, x: jnp.ndarray, y: jnp.ndarray, y_neg: jnp.ndarray) -> jnp.ndarray:
    """The first layer's rows: positives (true label), negatives (wrong label), then, with a readout, the
    neutral rows (every label 1/K)."""
    k, b = spec.num_classes, x.shape[0]
    codes = [jax.nn.one_hot(y, k), jax.nn.one_hot(y_neg, k)]
    if spec.readout:
        codes.append(jnp.full((b, k), 1.0 / k))
    return jnp.concatenate([embed(spec, x, c) for c in codes])


def layer_step_loss(spec: JaxSpec, p: dict[str, jnp.ndarray], z: jnp.ndarray, n: int, threshold: jnp.ndarray,
                    running: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """One layer on detached input z (rows: n positives, n negatives, then neutral rows):
    (activity h, local loss, [goodness sum of positives, of negatives], the peer-norm running mean after it)."""
    h = _activate(_normalize(jax.lax.stop_gradient(z), spec.norm) @ p["w"].T + p["b"], spec.activation)
    goodness = jnp.sum(h[: 2 * n] ** 2, axis=1)
    logits = goodness - threshold
    loss = jnp.mean(jnp.concatenate([jax.nn.softplus(-logits[:n]), jax.nn.softplus(logits[n : 2 * n])]))
    if spec.peer_norm > 0.0:  # Hinton 2022 sec. 3.3, as engine/layers.py: 0.9/0.1 smoothing of the mean activity
        running = 0.9 * running + 0.1 * jnp.mean(h[:n], axis=0)
        loss = loss + spec.peer_norm * jnp.mean((jnp.mean(running) - running) ** 2)
    goodness = jax.lax.stop_gradient(goodness)
    return h, loss, jnp.stack([goodness[:n].sum(), goodness[n:].sum()]), jax.lax.stop_gradient(running)


def readout_loss(spec: JaxSpec, weight: jnp.ndarray, features: list[jnp.ndarray], y: jnp.ndarray) -> jnp.ndarray:
    """Cross-entropy of the linear readout on the scored layers' normalised neutral rows (detached)."""
    logits = jnp.concatenate([_normalize(jax.lax.stop_gradient(f), spec.norm) for f in features], axis=1) @ weight.T
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def local_losses(spec: JaxSpec, params: dict[str, Any], x: jnp.ndarray, y: jnp.ndarray, y_neg: jnp.ndarray,
                 running: list[jnp.ndarray] | None = None) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(per-layer FF losses (L,), the readout's loss) of one mini-batch; every layer on detached input."""
    losses, _, _, _ = _sequential(spec, params, x, y, y_neg, running or [jnp.zeros(w) for w in spec.widths])
    return losses[:-1], losses[-1]


def _sequential(spec, params, x, y, y_neg, running):
    """The simultaneous schedule: every layer steps on this batch, bottom up. Returns
    (losses (L+1,) with the readout's last, goodness sums (L, 2), running means, None)."""
    b = x.shape[0]
    z = input_rows(spec, x, y, y_neg)
    losses, sums, new_running, features = [], [], [], []
    for i, p in enumerate(params["layers"]):
        z, loss, goodness, run = layer_step_loss(spec, p, z, b, spec.thresholds[i], running[i])
        losses.append(loss)
        sums.append(goodness)
        new_running.append(run)
        if spec.readout and i >= spec.first_scored:
            features.append(z[2 * b :])
    losses.append(readout_loss(spec, params["readout"], features, y) if spec.readout else jnp.zeros(()))
    return jnp.stack(losses), jnp.stack(sums), new_running, None


def _transform(name: str, lr: float, momentum: float, decay: float) -> optax.GradientTransformation:
    """torch's optimizer of that name in optax: SGD and Adam add the weight decay to the gradient (torch's
    ``weight_decay``), AdamW decays the weights apart from it."""
    if name == "sgd":
        return optax.chain(optax.add_decayed_weights(decay), optax.sgd(lr, momentum=momentum or None))
    if name == "adam":
        return optax.chain(optax.add_decayed_weights(decay), optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8))
    if name == "adamw":
        return optax.adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=decay)
    raise ValueError(f"optimizer: backend jax runs sgd, adam or adamw, got {name!r}")


def optimizer(config: TrainConfig, has_readout: bool) -> optax.GradientTransformation:
    """The layers' optimizer and, with a readout, the readout's own (its learning rate and weight decay)."""
    opt = config.optimizer
    layers = _transform(opt.name, opt.lr, opt.momentum, opt.weight_decay)
    if not has_readout:
        return layers
    readout = config.readout_optimizer()

    def labels(params):
        return {key: jax.tree_util.tree_map(lambda _: "readout" if key == "readout" else "layers", value)
                for key, value in params.items()}

    return optax.multi_transform({"layers": layers, "readout": _transform(readout.name, readout.lr, readout.momentum,
                                                                          readout.weight_decay)}, labels)


def _scaled(updates: dict[str, Any], layer_scale: Any, readout_scale: Any) -> dict[str, Any]:
    """The updates with the layers' scaled by ``layer_scale`` (a number, or per stacked layer) and the
    readout's by ``readout_scale``: the learning-rate cooldown, and layers that stand still."""
    out = {}
    for key, value in updates.items():
        if key == "readout":
            out[key] = value * readout_scale
        elif key == "stack":  # (L-1, ...) leaves, one scale per stacked layer
            out[key] = jax.tree_util.tree_map(lambda u: u * layer_scale[1:].reshape((-1,) + (1,) * (u.ndim - 1)), value)
        elif key == "first":
            out[key] = jax.tree_util.tree_map(lambda u: u * layer_scale[0], value)
        else:
            out[key] = jax.tree_util.tree_map(lambda u: u * layer_scale, value)
    return out


class JaxSession(Session):
    """The simultaneous schedule's step in JAX, one jitted call per mini-batch (see the module docstring)."""

    step_kind = "jax"

    def __init__(self, net: FFNetwork, config: TrainConfig, device: torch.device) -> None:
        super().__init__(net, config, device)
        problems = []
        if config.schedule != "simultaneous":
            problems.append("schedule simultaneous")
        if config.negatives != "wrong_label":
            problems.append("negatives wrong_label")
        if config.amp != "none" or config.step not in ("auto", "autograd"):
            problems.append("amp none and step auto or autograd (the step is JAX's autodiff)")
        if device.type != "cpu":
            problems.append("device cpu for the torch side (JAX runs on its own default device)")
        if problems:
            raise ValueError(f"backend {self.step_kind}: needs {'; '.join(problems)}")
        self.spec = JaxSpec.of(net, self.step_kind)
        self.params = self.to_jax(params_from_torch(net))
        self.tx = optimizer(config, self.spec.readout)
        self.opt_state = self.tx.init(self.params)
        self.running = self._running_from_torch()
        self.factors = (1.0, 1.0)
        self._sums = None
        self._jitted = jax.jit(self._make_step())

    # layouts: the sequential session keeps params_from_torch's; the parallel one stacks
    def to_jax(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def to_torch_layout(self, params: dict[str, Any]) -> dict[str, Any]:
        return params

    def _running_from_torch(self) -> Any:
        return [jnp.asarray(layer.running_mean.detach().cpu().numpy()) for layer in self.model.layers]

    def _running_to_torch(self) -> None:
        with torch.no_grad():
            for layer, run in zip(self.model.layers, self.running):
                layer.running_mean.copy_(torch.from_numpy(np.array(run)))

    def _make_step(self):
        spec, tx = self.spec, self.tx

        def step(params, opt_state, running, x, y, y_neg, factors):
            def total(p):
                losses, sums, new_running, _ = _sequential(spec, p, x, y, y_neg, running)
                return jnp.sum(losses), (losses, sums, new_running)

            grads, (losses, sums, new_running) = jax.grad(total, has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, _scaled(updates, factors[0], factors[1]))
            stats = jnp.concatenate([jnp.concatenate([losses[:-1, None], sums], axis=1),
                                     jnp.stack([losses[-1], 0.0, 0.0])[None]])
            return params, opt_state, new_running, stats

        return step

    # ---- the protocol -----------------------------------------------------------------------

    def set_lr_factor(self, factor: float, units: range) -> None:
        follows = self.config.cooldown and self.config.readout_cooldown
        self.factors = (float(factor), float(factor) if follows else 1.0)

    def begin_fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        self._x = jnp.asarray(x_train.detach().cpu().numpy())  # once on JAX's device; batches gathered there
        self._y = jnp.asarray(y_train.detach().cpu().numpy())

    def step(self, batch: Batch, generator: torch.Generator, units: range, stats: torch.Tensor) -> None:
        y_neg = wrong_labels(batch.y, self.spec.num_classes, generator)  # the torch engine's negative stream
        index = jnp.asarray(batch.index.cpu().numpy())
        self.params, self.opt_state, self.running, step_stats = self._jitted(
            self.params, self.opt_state, self.running, self._x[index], self._y[index],
            jnp.asarray(y_neg.cpu().numpy()), jnp.asarray(self.factors, dtype=jnp.float32))
        self._sums = step_stats if self._sums is None else self._sums + step_stats  # stays on JAX's device

    def end_epoch(self, stats: torch.Tensor) -> None:
        if self._sums is not None:
            stats += torch.from_numpy(np.array(self._sums)).to(stats)
            self._sums = None
        params_to_torch(self.to_torch_layout(self.params), self.model)  # the torch model evaluates and saves
        self._running_to_torch()

    def end_fit(self) -> None:
        self._x = self._y = None

    def extra_loss_name(self, units: range) -> str | None:
        return "readout_loss" if self.spec.readout else None


class ParallelJaxSession(JaxSession):
    """The layer-parallel step: every layer's local step in one vmapped call on the inputs the layer
    below produced in the previous step (see the module docstring)."""

    step_kind = "jax-parallel"

    def __init__(self, net: FFNetwork, config: TrainConfig, device: torch.device) -> None:
        widths = tuple(net.config.hidden)
        if len(widths) < 2 or len(set(widths)) != 1:
            raise ValueError(f"backend jax-parallel: stacks layers of one width, at least two of them; "
                             f"hidden is {list(widths)}")
        super().__init__(net, config, device)
        self.filled = 0  # steps taken in this fit: layer k has input from step k on

    def to_jax(self, params: dict[str, Any]) -> dict[str, Any]:
        layers = params["layers"]
        out = {"first": layers[0], "stack": {"w": jnp.stack([p["w"] for p in layers[1:]]),
                                             "b": jnp.stack([p["b"] for p in layers[1:]])}}
        if "readout" in params:
            out["readout"] = params["readout"]
        return out

    def to_torch_layout(self, params: dict[str, Any]) -> dict[str, Any]:
        stack = params["stack"]
        layers = [params["first"]] + [{"w": stack["w"][i], "b": stack["b"][i]} for i in range(stack["w"].shape[0])]
        return {"layers": layers, **({"readout": params["readout"]} if "readout" in params else {})}

    def _running_from_torch(self) -> Any:
        return jnp.stack(super()._running_from_torch())

    def batches(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
        if n < batch_size:
            raise ValueError(f"backend jax-parallel: batch_size {batch_size} is more than the {n} training rows "
                             f"(every mini-batch of the pipeline has the same size)")
        for index in self.model.batches(n, batch_size, generator, device):
            if index.shape[0] == batch_size:  # a short last batch is left out: the pipeline's shapes are fixed
                yield index

    def begin_fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        super().begin_fit(x_train, y_train)
        spec, b = self.spec, self.config.batch_size
        rows, depth, width = (3 if spec.readout else 2) * b, len(spec.widths), spec.widths[0]
        scored = range(spec.first_scored, depth)
        self.filled = 0
        self.pipe = {
            "inputs": jnp.zeros((depth - 1, rows, width), jnp.float32),  # layer k+1's input: layer k's last output
            "labels": jnp.zeros((depth - 1, b), jnp.int32),  # the labels of the batches in flight, oldest first
            # per scored layer j, its neutral rows of the batches still below the top, oldest first
            "features": tuple(jnp.zeros((depth - 1 - j, b, width), jnp.float32) for j in scored),
        }

    def _make_step(self):
        spec, tx = self.spec, self.tx
        depth, b = len(spec.widths), self.config.batch_size
        thresholds = jnp.asarray(spec.thresholds, jnp.float32)
        scored = list(range(spec.first_scored, depth))

        def step(params, opt_state, running, pipe, x, y, y_neg, factors, active):
            def total(p):
                h0, loss0, sums0, run0 = layer_step_loss(spec, p["first"], input_rows(spec, x, y, y_neg), b,
                                                         thresholds[0], running[0])
                hs, losses, sums, runs = jax.vmap(
                    lambda q, z, t, r: layer_step_loss(spec, q, z, b, t, r))(p["stack"], pipe["inputs"],
                                                                                thresholds[1:], running[1:])
                layer_losses = jnp.concatenate([loss0[None], losses]) * active[:-1]
                outputs = [h0] + [hs[i] for i in range(depth - 1)]
                read = jnp.zeros(())
                if spec.readout:  # the batch leaving the top layer now, with its features from every scored layer
                    exit_features = [pipe["features"][n][0] if j < depth - 1 else outputs[j][2 * b :]
                                     for n, j in enumerate(scored)]
                    read = readout_loss(spec, p["readout"], exit_features, pipe["labels"][0]) * active[-1]
                aux = (layer_losses, read, jnp.concatenate([sums0[None], sums]),
                       jnp.concatenate([run0[None], runs]), outputs)
                return jnp.sum(layer_losses) + read, aux

            grads, (losses, read, sums, new_running, outputs) = jax.grad(total, has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, _scaled(updates, factors[0] * active[:-1], factors[1] * active[-1]))
            on = active[:-1, None] > 0
            new_running = jnp.where(on, new_running, running)  # a layer without input keeps its running mean
            new_pipe = {
                "inputs": jax.lax.stop_gradient(jnp.stack(outputs[:-1])),
                "labels": jnp.concatenate([pipe["labels"][1:], y[None].astype(jnp.int32)]),
                "features": tuple(jnp.concatenate([pipe["features"][n][1:], outputs[j][None, 2 * b :]])
                                  for n, j in enumerate(scored) if j < depth - 1),
            }
            if scored[-1] == depth - 1:  # the top layer's queue is empty: kept as it is, the same structure
                new_pipe["features"] = new_pipe["features"] + (pipe["features"][-1],)
            stats = jnp.concatenate([jnp.concatenate([losses[:, None], sums * on], axis=1),
                                     jnp.stack([read, 0.0, 0.0])[None]])
            return params, opt_state, new_running, jax.lax.stop_gradient(new_pipe), stats

        return step

    def step(self, batch: Batch, generator: torch.Generator, units: range, stats: torch.Tensor) -> None:
        y_neg = wrong_labels(batch.y, self.spec.num_classes, generator)
        index = jnp.asarray(batch.index.cpu().numpy())
        depth = len(self.spec.widths)
        active = jnp.asarray([1.0 if self.filled >= k else 0.0 for k in range(depth)]
                             + [1.0 if self.filled >= depth - 1 else 0.0], jnp.float32)
        self.params, self.opt_state, self.running, self.pipe, step_stats = self._jitted(
            self.params, self.opt_state, self.running, self.pipe, self._x[index], self._y[index],
            jnp.asarray(y_neg.cpu().numpy()), jnp.asarray(self.factors, dtype=jnp.float32), active)
        self.filled += 1
        self._sums = step_stats if self._sums is None else self._sums + step_stats

    def end_fit(self) -> None:
        super().end_fit()
        self.pipe = None


def session_for(backend: str):
    """The Trainer's ``session`` factory for a backend name (None: the model's own, torch)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    return {"torch": None, "jax": JaxSession, "jax-parallel": ParallelJaxSession}[backend]


def goodness_scores(spec: JaxSpec, params: dict[str, Any], x: jnp.ndarray) -> jnp.ndarray:
    """(B, K) summed goodness of the scored layers with each label embedded, ``jax.vmap`` over the K labels
    (the torch model's "goodness" method). ``params`` in ``params_from_torch``'s layout."""

    def one_label(label):
        z = embed(spec, x, jax.nn.one_hot(jnp.full((x.shape[0],), label), spec.num_classes))
        total = jnp.zeros(x.shape[0])
        for i, p in enumerate(params["layers"]):
            z = jax.nn.relu(_normalize(z, spec.norm) @ p["w"].T + p["b"])
            if i >= spec.first_scored:
                total = total + jnp.sum(z * z, axis=1)
        return total

    return jax.vmap(one_label, out_axes=1)(jnp.arange(spec.num_classes))
