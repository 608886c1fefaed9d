"""Training FF networks: schedules, learning-rate cooldown, metrics, callbacks, cancellation.

The trainer knows layers only through ``FFLinear.local_loss`` and batches only through
``Contrast.make_batch``, so new goodness functions, losses, negatives and layers plug in
without touching it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

import torch
import torch.nn.functional as F

from ff_mcp.gf3.splitmix import derive_seed

from .device import AMP_CHOICES, autocast, resolve_device
from .fused import StepResult, autograd_step, fused_step, fused_supported, readout_step, takes_normalized_input
from .graphed import GraphedStep, cuda_graph, graph_problems
from .labels import LabeledRows
from .layers import OptimizerConfig
from .native import NativeStep, native_problems
from .negatives import BatchContext, make_contrast
from .network import FFNetwork, NetworkConfig
from .norms import normalize, scale_from_sumsq

log = logging.getLogger(__name__)

SCHEDULES = ("simultaneous", "greedy")
PREDICT_METHODS = ("goodness", "readout")


@dataclass(frozen=True)
class TrainConfig:
    """How to train; stored beside the network config in every checkpoint."""

    epochs: int = 10
    batch_size: int = 100  # loeweX and Hinton's Matlab: 100
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: str = "simultaneous"  # loeweX/Matlab; "greedy" = mpezeshki's layer after layer
    negatives: str = "wrong_label"
    cooldown: bool = True  # linear LR decay to 0 over the second half (Matlab, loeweX)
    readout_lr: float | None = None  # None: 10x lr for SGD (loeweX 1e-2 vs 1e-3), lr for Adam
    readout_weight_decay: float = 0.0  # loeweX: 3e-3 with SGD
    seed: int = 0
    device: str = "auto"
    amp: str = "none"
    predict_method: str = "goodness"  # what test_accuracy reports
    eval_every: int = 1  # epochs between test evaluations (the last epoch is always evaluated)
    train_eval_rows: int = 2000  # training rows scored for train_accuracy (0 = skip)
    fused_step: bool = True  # closed-form gradients where the layer allows (engine/fused.py); False: autograd
    cuda_graph: bool = False  # CUDA only: capture each full mini-batch's step as a CUDA graph and replay it
    native_step: bool = False  # CPU, SGD: run each mini-batch through the compiled step (engine/native.py)

    def __post_init__(self) -> None:
        if not (1 <= self.epochs <= 100_000):
            raise ValueError(f"epochs must be in [1, 100000], got {self.epochs}")
        if not (1 <= self.batch_size <= 1_000_000):
            raise ValueError(f"batch_size must be in [1, 1000000], got {self.batch_size}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.amp not in AMP_CHOICES:
            raise ValueError(f"amp must be one of {list(AMP_CHOICES)}, got {self.amp!r}")
        if self.predict_method not in PREDICT_METHODS:
            raise ValueError(f"predict_method must be one of {list(PREDICT_METHODS)}, got {self.predict_method!r}")
        if not (0 <= self.seed < 2**63):
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.readout_lr is not None and not (0 < self.readout_lr <= 10):
            raise ValueError(f"readout_lr must be in (0, 10], got {self.readout_lr}")
        if not (0.0 <= self.readout_weight_decay <= 1.0):
            raise ValueError(f"readout_weight_decay must be in [0, 1], got {self.readout_weight_decay}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        if isinstance(d.get("optimizer"), dict):
            d["optimizer"] = OptimizerConfig(**d["optimizer"])
        return cls(**d)


class Callback(Protocol):
    """Receives progress. Both methods are optional in practice (see ``CallbackBase``)."""

    def on_batch_end(self, epoch: int, step: int, steps: int) -> None: ...

    def on_epoch_end(self, metrics: dict[str, Any]) -> None: ...


class CallbackBase:
    def on_batch_end(self, epoch: int, step: int, steps: int) -> None:
        return None

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        return None


@dataclass
class TrainResult:
    state: str  # "done" or "cancelled"
    history: list[dict[str, Any]]
    train_seconds: float
    samples_seen: int  # positive rows processed by training steps
    device: str
    cuda_graph: dict[str, Any] | None = None  # with TrainConfig.cuda_graph: captures, eager steps, error
    native_steps: int | None = None  # with TrainConfig.native_step: mini-batches the compiled step ran

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}

    @property
    def samples_per_second(self) -> float:
        return self.samples_seen / self.train_seconds if self.train_seconds > 0 else 0.0


def build_network(config: NetworkConfig, seed: int = 0, device: torch.device | str = "cpu") -> FFNetwork:
    """A freshly initialised network; the same seed gives the same weights."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "init") % 2**63)
    return FFNetwork(config, generator=generator).to(device)


@torch.no_grad()
def predict_in_chunks(network: FFNetwork, x: torch.Tensor, method: str, chunk: int = 1000) -> torch.Tensor:
    """(N, D) -> (N, K) scores, computed ``chunk`` rows at a time (bounded memory)."""
    was_training = network.training
    network.eval()
    try:
        return torch.cat([network.predict_scores(x[i : i + chunk], method) for i in range(0, x.shape[0], chunk)])
    finally:
        network.train(was_training)


def accuracy(network: FFNetwork, x: torch.Tensor, y: torch.Tensor, method: str = "goodness") -> float:
    """Fraction of rows whose predicted label equals y."""
    if x.shape[0] == 0:
        return float("nan")
    scores = predict_in_chunks(network, x.to(network.device), method)
    return (scores.argmax(dim=1) == y.to(scores.device)).float().mean().item()


class Trainer:
    """Trains an FFNetwork in place.

    ``should_stop`` is polled once per mini-batch; when it returns True the trainer stops after
    the current step, leaving the network in a consistent state (every optimizer step is whole).
    """

    def __init__(
        self,
        network: FFNetwork,
        config: TrainConfig,
        callbacks: list[Callback] | tuple = (),
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.network = network
        self.config = config
        self.callbacks = list(callbacks)
        self.should_stop = should_stop or (lambda: False)
        self.device = resolve_device(config.device)
        self.network.to(self.device)
        netcfg = network.config
        self.contrast = make_contrast(config.negatives, network.labels, netcfg.image_shape)
        if self.contrast.needs_labels and network.labels.mode == "none":
            raise ValueError(f"negatives {config.negatives!r} need a label embedding; label_mode is 'none'")
        self.optimizers = [config.optimizer.build(list(layer.parameters())) for layer in network.layers]
        self.readout_optimizer = self._build_readout_optimizer() if netcfg.readout else None
        self.base_lrs = [config.optimizer.lr for _ in self.optimizers]
        self._fused = [config.fused_step and fused_supported(layer, config.amp) for layer in network.layers]
        # fixed for the trainer's life: decided once, not on every mini-batch
        self._shares_first_layer = (self._fused[0] and network.labels.mode != "none"
                                    and self.contrast.label_only())
        # layers whose fused step scales its input rows before the matmul: the layer below hands
        # them over already scaled (fused.takes_normalized_input), and the readout reuses those rows,
        # so only where the layer's norm is the readout's
        self._normalized_input = [i > 0 and self._fused[i] and layer.norm == netcfg.norm
                                  and takes_normalized_input(layer, config.amp, self.device)
                                  for i, layer in enumerate(network.layers)]
        self._stopped = False
        self._graphed: GraphedStep | None = None
        self._use_graph = config.cuda_graph
        self._graph_factory = cuda_graph
        if config.cuda_graph:
            problems = graph_problems(self)
            problems += self._own_loop_problem()
            if problems:
                raise ValueError("cuda_graph needs " + "; ".join(problems))
        self._native: NativeStep | None = None
        if config.native_step:
            problems = native_problems(self)
            if config.cuda_graph:
                problems.append("cuda_graph off")
            problems += self._own_loop_problem()
            if problems:
                raise ValueError("native_step needs " + "; ".join(problems))
            try:
                self._native = NativeStep(self)
            except RuntimeError as exc:  # no compiler, or the build failed: say so where the option was set
                raise ValueError(f"native_step: {exc}") from exc

    def _own_loop_problem(self) -> list[str]:
        """The graphed and the compiled step replace Trainer's own mini-batch loop, which subclasses
        (pipelined, distributed) do not run."""
        if type(self)._run_epoch is Trainer._run_epoch:
            return []
        return ["the single-process Trainer (pipelined and distributed training run their own loop)"]

    def _build_readout_optimizer(self) -> torch.optim.Optimizer:
        opt = self.config.optimizer
        lr = self.config.readout_lr or (opt.lr * 10 if opt.name == "sgd" else opt.lr)
        cfg = OptimizerConfig(opt.name, lr, opt.momentum, self.config.readout_weight_decay, opt.fused)
        return cfg.build(list(self.network.readout.parameters()))

    # ---- one step ---------------------------------------------------------------------------

    def layer_step(self, i: int, z: torch.Tensor | LabeledRows, n_pos: int, n_train: int,
                   sumsq: torch.Tensor | None = None, normalized: torch.Tensor | None = None,
                   normalize_output: str | None = None) -> StepResult:
        """Layer i's local step on detached input z: fused where the layer allows, else autograd.
        ``sumsq`` (rows,): z's row sums of squares, when the layer below reported them;
        ``normalized``/``normalize_output``: see ``fused.fused_step``."""
        layer, opt = self.network.layers[i], self.optimizers[i]
        if self._fused[i]:
            return fused_step(layer, opt, z, n_pos, n_train, self.config.amp, sumsq, normalized, normalize_output)
        return autograd_step(layer, opt, z, n_pos, n_train, autocast(self.device, self.config.amp))

    def step_layers(self, layers: range, z: torch.Tensor | LabeledRows, n_pos: int, n_train: int,
                    sumsq: torch.Tensor | None, stats: torch.Tensor | None, features: list[torch.Tensor] | None,
                    score_last: bool = True, scaled_input: bool = False,
                    scale_output: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One local step of each layer in ``layers``, bottom up; returns the last layer's detached
        activity and its row sums of squares (None after an autograd step). ``features``: where the
        scored layers' normalised neutral rows go for the readout (the last layer's only with
        ``score_last``). ``stats`` (L+1, 3): loss and goodness sums accumulate here.

        ``scaled_input``: z is already scaled for the first layer (``hands_off(layers.start - 1)``);
        ``scale_output``: the last layer hands its rows to the layer above it scaled, when that
        layer takes scaled rows (a pipeline stage boundary: the next stage then skips that work)."""
        net = self.network
        first_scored = net.first_scored_layer
        normalized = z if scaled_input else None
        for i in layers:
            inside = i + 1 < layers.stop or (scale_output and i + 1 < len(net.layers))
            above = net.layers[i + 1].norm if inside and self.hands_off(i) else None
            step = self.layer_step(i, z, n_pos, n_train, sumsq, normalized, above)
            if stats is not None:
                stats[i].add_(step.metrics())
            # after a hand-off, h is the scaled rows (fused_step scaled it in place)
            z, sumsq, normalized = step.h, step.sumsq, step.normalized
            if features is not None and i >= first_scored and (score_last or i < layers.stop - 1):
                if normalized is not None:  # the same rows, scaled the same way (above == norm)
                    features.append(normalized[n_train:])
                else:
                    features.append(self.readout_features(z, sumsq, n_train))
        return z, sumsq

    def hands_off(self, i: int) -> bool:
        """Whether layer i's fused step can hand layer i + 1 its rows already scaled."""
        return i + 1 < len(self._fused) and self._fused[i] and self._normalized_input[i + 1]

    @property
    def shares_first_layer(self) -> bool:
        """True when the fused first layer gets ``LabeledRows`` (W.x shared between label variants)."""
        return self._shares_first_layer

    def embed_rows(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, generator: torch.Generator | None,
                   with_readout: bool, share: bool, negative_labels: torch.Tensor | None = None,
                   ) -> tuple[torch.Tensor | LabeledRows, int, int]:
        """Positive, negative and (with the readout) neutral-label rows of one mini-batch, stacked:
        (rows, n_pos, n_train). With ``share`` and a contrast whose negatives only change the label,
        the rows come as ``LabeledRows`` (one copy of the images, one label code per row).
        ``negative_labels``: the contrast's ``negative_labels`` for this batch, drawn already (the
        CUDA-graph step draws them outside the graph); only with ``share``."""
        labels, batch = self.network.labels, BatchContext(x, y, index, generator)
        if negative_labels is not None and not (share and self.shares_first_layer):
            raise ValueError("negative_labels are only taken where the first layer shares W.x (label-only negatives)")
        if share and self.shares_first_layer:
            negatives = negative_labels if negative_labels is not None else self.contrast.negative_labels(batch)
            groups = [y, negatives]
            if with_readout:
                groups.append(torch.full_like(y, LabeledRows.NEUTRAL))
            base = labels.embed(x, x.new_zeros(x.shape[0], labels.num_classes))
            rows = x.shape[0]
            return LabeledRows(base, torch.cat(groups), labels.num_classes, labels.strength), rows, 2 * rows
        x_pos, x_neg = self.contrast.make_batch(batch)
        parts = [x_pos, x_neg, labels.embed_neutral(x)] if with_readout else [x_pos, x_neg]
        return torch.cat(parts), x_pos.shape[0], x_pos.shape[0] + x_neg.shape[0]

    def train_step(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, generator: torch.Generator | None,
                   layers: range | None = None, stats: torch.Tensor | None = None,
                   negative_labels: torch.Tensor | None = None) -> None:
        """One mini-batch: every layer in ``layers`` takes one local step on detached input.

        Each layer's graph is freed before the next layer runs, so training holds one layer's
        autograd graph at a time; gradients are dropped (set_to_none) right after each step.
        ``stats`` (L, 3) accumulates loss, summed positive goodness and summed negative goodness.
        ``negative_labels``: see ``embed_rows`` (then ``generator`` is not used).
        """
        net = self.network
        layers = range(len(net.layers)) if layers is None else layers
        with_readout = self.readout_optimizer is not None and layers.stop == len(net.layers)
        # Positive, negative and (for the readout) neutral-label rows share one matmul per layer;
        # the first layer, when it trains, shares W.x between rows that differ only in the label.
        z, n_pos, n_train = self.embed_rows(x, y, index, generator, with_readout,
                                            share=layers.start == 0 and self._fused[0], negative_labels=negative_labels)
        native = self._native
        if (native is not None and layers.start == 0 and layers.stop == len(net.layers)
                and native.step(z, y, with_readout, stats)):
            return
        first_scored = net.first_scored_layer
        features = []
        sumsq = None
        if layers.start > 0:
            with torch.no_grad(), autocast(self.device, self.config.amp):
                for i in range(layers.start):  # frozen layers below (greedy schedule)
                    z = net.layers[i](z)
                    if with_readout and i >= first_scored:
                        features.append(normalize(z[n_train:], net.config.norm))
        self.step_layers(layers, z, n_pos, n_train, sumsq, stats, features if with_readout else None)
        if with_readout:
            readout_loss = self.readout_update(torch.cat(features, dim=1), y)
            if stats is not None:
                stats[-1, 0] += readout_loss.float()

    def readout_update(self, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One step of the linear readout on detached features (B, F); returns the detached loss."""
        if self.config.fused_step:
            return readout_step(self.network.readout, self.readout_optimizer, features.float(), y)
        with autocast(self.device, self.config.amp):
            loss = F.cross_entropy(self.network.readout(features.float()), y)
        loss.backward()
        self.readout_optimizer.step()
        self.readout_optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def readout_features(self, h: torch.Tensor, sumsq: torch.Tensor | None, n_train: int) -> torch.Tensor:
        """Normalised neutral-row activities (rows n_train:) of one layer, the readout's input."""
        if sumsq is None:
            return normalize(h[n_train:], self.network.config.norm)
        return h[n_train:] * scale_from_sumsq(sumsq[n_train:], h.shape[1], self.network.config.norm)

    # ---- loops ------------------------------------------------------------------------------

    def _set_lr(self, epoch: int, epochs: int, layer_indices: range) -> None:
        """Linear cooldown over the second half (loeweX ``get_linear_cooldown_lr``)."""
        factor = 1.0
        if self.config.cooldown and epoch > epochs // 2:
            factor = 2.0 * (1 + epochs - epoch) / epochs
        for i in layer_indices:
            for group in self.optimizers[i].param_groups:
                group["lr"] = self.base_lrs[i] * factor
        self._lr_factor = factor

    def fit(self, x_train: torch.Tensor, y_train: torch.Tensor,
            x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None) -> TrainResult:
        """x_train: (N, D) float, y_train: (N,) int64. Data moves to the device once."""
        cfg, net = self.config, self.network
        if x_train.ndim != 2 or x_train.shape[1] != net.config.in_features:
            raise ValueError(f"x_train must be (rows, {net.config.in_features}), got {tuple(x_train.shape)}")
        if y_train.shape != (x_train.shape[0],):
            raise ValueError(f"y_train must have one label per row ({x_train.shape[0]}), got {tuple(y_train.shape)}")
        if y_train.numel() and not (0 <= int(y_train.min()) and int(y_train.max()) < net.config.num_classes):
            raise ValueError(f"y_train labels must be in [0, {net.config.num_classes}), got "
                             f"{int(y_train.min())}..{int(y_train.max())}")
        x_train = x_train.to(self.device, torch.float32)
        y_train = y_train.to(self.device, torch.long)
        if x_test is not None:
            x_test, y_test = x_test.to(self.device, torch.float32), y_test.to(self.device, torch.long)
        shuffle_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "shuffle") % 2**63)
        negative_gen = torch.Generator(device=self.device).manual_seed(derive_seed(cfg.seed, "negatives") % 2**63)
        n_layers = len(net.layers)
        phases = [range(0, n_layers)] if cfg.schedule == "simultaneous" else [range(i, i + 1) for i in range(n_layers)]
        # Greedy: the readout trains with the last layer's phase.
        history: list[dict[str, Any]] = []
        train_seconds, samples = 0.0, 0
        total_epochs = cfg.epochs * len(phases)
        net.train()
        try:
            for phase_index, layers in enumerate(phases):
                for epoch in range(cfg.epochs):
                    global_epoch = phase_index * cfg.epochs + epoch + 1
                    started = time.perf_counter()
                    self._set_lr(epoch, cfg.epochs, layers)
                    if cfg.negatives == "hard" and (epoch > 0 or phase_index > 0):
                        self.contrast.prepare_epoch(self._hard_negative_probs, x_train)
                    stats = torch.zeros(n_layers + 1, 3, device=self.device)
                    rows, steps = self._run_epoch(x_train, y_train, layers, shuffle_gen, negative_gen, stats, global_epoch)
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
                    train_seconds += time.perf_counter() - started
                    samples += rows
                    metrics = self._epoch_metrics(global_epoch, total_epochs, layers, stats, rows, steps,
                                                  x_train, y_train, x_test, y_test)
                    metrics["train_seconds"] = round(train_seconds, 4)
                    history.append(metrics)
                    for cb in self.callbacks:
                        if hasattr(cb, "on_epoch_end"):
                            cb.on_epoch_end(metrics)
                    if self._stopped:
                        return self._result("cancelled", history, train_seconds, samples)
            return self._result("done", history, train_seconds, samples)
        finally:
            self._graphed = None  # the graph's memory pool and its hold on the training set go back

    def _result(self, state: str, history: list[dict[str, Any]], train_seconds: float, samples: int) -> TrainResult:
        graphed = self._graphed
        report = None if graphed is None else {"captures": graphed.captures, "eager_warmup_steps": graphed.eager_steps,
                                               "error": graphed.error}
        native = None if self._native is None else self._native.steps
        return TrainResult(state, history, train_seconds, samples, str(self.device), report, native)

    def _run_epoch(self, x, y, layers, shuffle_gen, negative_gen, stats, epoch) -> tuple[int, int]:
        n, bs = x.shape[0], self.config.batch_size
        order = torch.randperm(n, generator=shuffle_gen).to(self.device)
        steps = math.ceil(n / bs)
        rows = 0
        graphed = self._graphed_step(x, y) if self._use_graph else None
        try:
            for step in range(steps):
                index = order[step * bs : (step + 1) * bs]
                if graphed is not None and index.shape[0] == bs:
                    graphed.step(index, negative_gen)
                else:  # a short last batch runs eagerly (a graph has fixed shapes)
                    self.train_step(x[index], y[index], index, negative_gen, layers, stats)
                rows += index.shape[0]
                for cb in self.callbacks:
                    if hasattr(cb, "on_batch_end"):
                        cb.on_batch_end(epoch, step + 1, steps)
                if self.should_stop():
                    self._stopped = True
                    return rows, step + 1
            return rows, steps
        finally:
            if graphed is not None:
                graphed.flush_stats(stats)  # the graph's statistics accumulate in its own buffer

    def _graphed_step(self, x: torch.Tensor, y: torch.Tensor) -> GraphedStep:
        """The CUDA-graph step for this training set (kept across epochs: same data, same buffers)."""
        graphed = self._graphed
        if graphed is None or graphed.x_train is not x or graphed.y_train is not y:
            graphed = self._graphed = GraphedStep(self, x, y, self._graph_factory)
        return graphed

    @torch.no_grad()
    def _hard_negative_probs(self, x_train: torch.Tensor) -> torch.Tensor:
        net = self.network
        if net.config.readout:
            return predict_in_chunks(net, x_train, "readout")
        scores = predict_in_chunks(net, x_train, "goodness")
        # Goodness sums are large; scale by each row's spread so the softmax is not one-hot.
        return F.softmax(scores / scores.std(dim=1, keepdim=True).clamp_min(1e-6), dim=1)

    def _epoch_metrics(self, epoch, epochs, layers, stats, rows, steps, x_train, y_train, x_test, y_test) -> dict:
        cfg, net = self.config, self.network
        stats = stats.cpu()  # the one host synchronisation of the epoch
        layer_metrics = []
        for i in range(len(net.layers)):
            if i not in layers:
                continue
            # g sums are over rows; the contrast decides how many negatives a batch has, so
            # report means per positive row and per negative row assuming equal counts.
            layer_metrics.append({
                "layer": i,
                "loss": stats[i, 0].item() / max(steps, 1),
                "goodness_pos": stats[i, 1].item() / max(rows, 1),
                "goodness_neg": stats[i, 2].item() / max(rows, 1),
            })
        metrics: dict[str, Any] = {
            "epoch": epoch,
            "epochs": epochs,
            "layers": layer_metrics,
            "lr_factor": getattr(self, "_lr_factor", 1.0),
            "loss": sum(m["loss"] for m in layer_metrics) / max(len(layer_metrics), 1),
        }
        readout_active = net.config.readout and layers.stop == len(net.layers)
        if readout_active:
            metrics["readout_loss"] = stats[-1, 0].item() / max(steps, 1)
        last = epoch == epochs or self._stopped
        method = cfg.predict_method if (cfg.predict_method != "readout" or readout_active) else "goodness"
        if net.labels.mode == "none":
            method = "readout"  # an unsupervised net has no label to try
        if cfg.train_eval_rows > 0 and (last or epoch % cfg.eval_every == 0):
            k = min(cfg.train_eval_rows, x_train.shape[0])
            metrics["train_accuracy"] = accuracy(net, x_train[:k], y_train[:k], method)
        if x_test is not None and (last or epoch % cfg.eval_every == 0):
            metrics["test_accuracy"] = accuracy(net, x_test, y_test, method)
            if net.config.readout and readout_active and net.labels.mode != "none":
                other = "readout" if method == "goodness" else "goodness"
                metrics[f"test_accuracy_{other}"] = accuracy(net, x_test, y_test, other)
        metrics["predict_method"] = method
        return metrics
