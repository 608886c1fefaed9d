"""The dense FF MLP in JAX (optional extra: ``pip install ff-mcp[jax]``): the torch engine's computation,
step for step, on the same weights, batches and negatives.

What it computes is what ``engine.dense.DenseSession`` computes with the autograd step for a network
of ``FFNetwork`` (label overlay or concat, RMS or L2 input normalisation, ReLU or ReLU with full
gradient, sum-of-squares goodness against the layer width, the logistic loss over positive and negative
rows, the bias-free neutral-label readout on the normalised activities of the scored layers) under the
simultaneous schedule with SGD (momentum, weight decay) from optax. Every layer's input and the
readout's features pass through ``jax.lax.stop_gradient``: the gradient of one layer's loss with respect
to any other layer's weights is exactly zero.

The weights start as the torch model's (``params_from_torch``: drawn once by the torch engine from the
seed, shared), and the host feeds the batches and negative labels the torch trainer would draw
(``torch_batches``), so the two backends can be compared weight for weight
(tests/engine/test_jax_backend.py). ``params_to_torch`` writes the weights back into a torch model,
which saves in the usual checkpoint format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

try:  # the optional extra
    import jax
    import jax.numpy as jnp
    import optax
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the JAX backend needs the jax extra: pip install 'ff-mcp[jax]' (jax, optax)") from exc

from ff_mcp import seeds
from ff_mcp.engine.negatives import wrong_labels
from ff_mcp.engine.network import FFNetwork
from ff_mcp.engine.trainer import TrainConfig

EPS_RMS = 1e-8  # engine/norms.py


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

    @classmethod
    def of(cls, net: FFNetwork) -> "JaxSpec":
        cfg = net.config
        problems = []
        if cfg.goodness != "sum_squares" or cfg.loss != "softplus":
            problems.append("goodness sum_squares with the softplus loss")
        if cfg.label_mode not in ("overlay", "concat"):
            problems.append("label_mode overlay or concat")
        if cfg.norm not in ("rms", "l2") or cfg.activation not in ("relu", "relu_full_grad"):
            problems.append("norm rms or l2 and activation relu or relu_full_grad")
        if cfg.peer_norm or cfg.standardize or not cfg.bias:
            problems.append("no peer normalisation, no input standardisation, biases on")
        if problems:
            raise ValueError(f"the JAX backend runs the dense net with {'; '.join(problems)}")
        return cls(tuple(cfg.hidden), cfg.num_classes, cfg.label_mode, float(cfg.label_strength), cfg.norm,
                   cfg.activation, tuple(float(layer.threshold) for layer in net.layers), net.first_scored_layer,
                   bool(cfg.readout))


def params_from_torch(net: FFNetwork) -> dict[str, Any]:
    """{"layers": [{"w": (out, in), "b": (out,)}, ...], "readout": (K, F)} as float32 JAX arrays."""
    layers = [{"w": jnp.asarray(layer.weight.detach().cpu().numpy()), "b": jnp.asarray(layer.bias.detach().cpu().numpy())}
              for layer in net.layers]
    params: dict[str, Any] = {"layers": layers}
    if net.config.readout:
        params["readout"] = jnp.asarray(net.readout.weight.detach().cpu().numpy())
    return params


def params_to_torch(params: dict[str, Any], net: FFNetwork) -> FFNetwork:
    """Copy the JAX weights into ``net`` (a torch model of the same config); returns it."""
    with torch.no_grad():
        for layer, p in zip(net.layers, params["layers"]):
            layer.weight.copy_(torch.from_numpy(np.array(p["w"])))
            layer.bias.copy_(torch.from_numpy(np.array(p["b"])))
        if "readout" in params:
            net.readout.weight.copy_(torch.from_numpy(np.array(params["readout"])))
    return net


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


def local_losses(spec: JaxSpec, params: dict[str, Any], x: jnp.ndarray, y: jnp.ndarray,
                 y_neg: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(per-layer FF losses (L,), the readout's loss) of one mini-batch; every layer on detached input."""
    k = spec.num_classes
    b = x.shape[0]
    codes = [jax.nn.one_hot(y, k), jax.nn.one_hot(y_neg, k)]
    if spec.readout:
        codes.append(jnp.full((b, k), 1.0 / k))
    z = jnp.concatenate([embed(spec, x, c) for c in codes])  # positives, negatives, neutral rows
    losses, features = [], []
    for i, p in enumerate(params["layers"]):
        h = _activate(_normalize(jax.lax.stop_gradient(z), spec.norm) @ p["w"].T + p["b"], spec.activation)
        logits = jnp.sum(h[: 2 * b] ** 2, axis=1) - spec.thresholds[i]
        per_row = jnp.concatenate([jax.nn.softplus(-logits[:b]), jax.nn.softplus(logits[b:])])
        losses.append(jnp.mean(per_row))
        if spec.readout and i >= spec.first_scored:
            features.append(_normalize(jax.lax.stop_gradient(h[2 * b:]), spec.norm))
        z = h
    readout_loss = jnp.zeros(())
    if spec.readout:
        logits = jnp.concatenate(features, axis=1) @ params["readout"].T
        readout_loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
    return jnp.stack(losses), readout_loss


def optimizer(config: TrainConfig, has_readout: bool) -> optax.GradientTransformation:
    """torch's SGD (weight decay added to the gradient, then momentum without dampening) for the layers,
    and the readout's own learning rate and weight decay."""
    opt = config.optimizer
    if opt.name != "sgd":
        raise ValueError(f"optimizer: the JAX backend runs SGD, got {opt.name!r}")

    def sgd(lr: float, decay: float) -> optax.GradientTransformation:
        return optax.chain(optax.add_decayed_weights(decay), optax.sgd(lr, momentum=opt.momentum or None))

    if not has_readout:
        return sgd(opt.lr, opt.weight_decay)
    readout = config.readout_optimizer()
    labels = lambda params: {"layers": ["layers"] * len(params["layers"]), "readout": "readout"}  # noqa: E731
    return optax.multi_transform({"layers": sgd(opt.lr, opt.weight_decay), "readout": sgd(readout.lr,
                                                                                           readout.weight_decay)},
                                 labels)


class JaxTrainer:
    """Trains the JAX copy of a torch FFNetwork with the torch engine's batches and negatives."""

    def __init__(self, net: FFNetwork, config: TrainConfig) -> None:
        if config.schedule != "simultaneous" or config.negatives != "wrong_label" or config.cooldown and config.epochs > 1:
            raise ValueError("the JAX backend runs the simultaneous schedule with wrong_label negatives and no "
                             "learning-rate cooldown")
        self.spec = JaxSpec.of(net)
        self.config = config
        self.params = params_from_torch(net)
        self.tx = optimizer(config, self.spec.readout)
        self.opt_state = self.tx.init(self.params)
        spec, tx = self.spec, self.tx

        def step(params, opt_state, x, y, y_neg):
            def total(p):
                layer_losses, readout_loss = local_losses(spec, p, x, y, y_neg)
                return jnp.sum(layer_losses) + readout_loss, (layer_losses, readout_loss)

            grads, aux = jax.grad(total, has_aux=True)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, aux

        self._step = jax.jit(step)

    def fit(self, x_train: torch.Tensor, y_train: torch.Tensor, steps: int | None = None) -> list[np.ndarray]:
        """Train on the torch engine's batches for ``config.epochs`` (or ``steps`` mini-batches); returns
        the per-step layer losses."""
        history = []
        for x, y, y_neg in torch_batches(x_train, y_train, self.config, self.spec.num_classes, steps):
            self.params, self.opt_state, (layer_losses, _) = self._step(self.params, self.opt_state, x, y, y_neg)
            history.append(np.asarray(layer_losses))
        return history


def torch_batches(x_train: torch.Tensor, y_train: torch.Tensor, config: TrainConfig, num_classes: int,
                  steps: int | None = None) -> Iterator[tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]]:
    """The mini-batches (rows, labels, wrong labels) the torch Trainer draws for this seed: the same shuffle
    and negative-label streams, as JAX arrays."""
    shuffle = seeds.generator(config.seed, "shuffle")
    negatives = seeds.generator(config.seed, "negatives")
    n, done = x_train.shape[0], 0
    for _ in range(config.epochs):
        order = torch.randperm(n, generator=shuffle)
        for start in range(0, n, config.batch_size):
            if steps is not None and done == steps:
                return
            index = order[start : start + config.batch_size]
            x, y = x_train[index], y_train[index]
            y_neg = wrong_labels(y, num_classes, negatives)
            done += 1
            yield jnp.asarray(x.numpy()), jnp.asarray(y.numpy()), jnp.asarray(y_neg.numpy())
