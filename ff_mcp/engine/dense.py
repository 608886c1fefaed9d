"""The dense label-embedded MLP's training session: the step of ``FFNetwork`` (kind "ff").

Everything that makes the dense MLP fast lives here and in the modules it calls: the fused
closed-form step (``fused.py``), the shared first layer for label-only negatives, the compiled C++
step (``native.py``), the CUDA-graph step (``graphed.py``); the pipelined and distributed trainers
drive the same per-layer steps (``step_layers``) stage by stage.

One mini-batch (``train_step``)::

    x, y, index --Contrast--> positive, negative and neutral-label rows      (LabeledRows when only
                                                                              labels differ)
    for each layer i:  h = step(layer_i, z)   one local update on detached z (fused or autograd)
                       z = h                  nothing crosses layers
    readout: cross-entropy on the scored layers' normalised neutral rows (detached)
"""

from __future__ import annotations

import logging

from typing import Any

import torch
import torch.nn.functional as F

from .device import autocast
from .fused import StepResult, autograd_step, fused_step, fused_supported, readout_step, takes_normalized_input
from .graphed import GraphedStep, cuda_graph, graph_problems
from .labels import LabeledRows
from .native import NativeStep, native_problems
from .negatives import BatchContext, make_contrast
from .norms import normalize, scale_from_sumsq
from .protocol import Batch, Session
from .trainer import predict_in_chunks

log = logging.getLogger(__name__)


class DenseSession(Session):
    """Optimizers, contrast and the chosen step of one ``FFNetwork`` training run.

    ``config.step``: "auto" runs the fused step on every layer that allows it (ReLU or ReLU with
    full gradient, sum- or mean-of-squares goodness) and autograd on the others; "fused" demands it
    on every layer; "autograd" runs autograd everywhere; "native" the compiled step (CPU, SGD);
    "cuda_graph" a captured graph per mini-batch (CUDA). A step that cannot run is refused with a
    ValueError naming everything it needs.
    """

    def __init__(self, network, config, device: torch.device) -> None:
        super().__init__(network, config, device)
        self.network = network
        netcfg = network.config
        self.contrast = make_contrast(config.negatives, network.labels, netcfg.image_shape)
        if self.contrast.needs_labels and network.labels.mode == "none":
            raise ValueError(f"negatives {config.negatives!r} need a label embedding; label_mode is 'none'")
        self.optimizers = [config.optimizer.build(list(layer.parameters())) for layer in network.layers]
        self.readout_optimizer = self._build_readout_optimizer() if netcfg.readout else None
        self.base_lrs = [config.optimizer.lr for _ in self.optimizers]
        self.readout_base_lr = self.readout_optimizer.param_groups[0]["lr"] if self.readout_optimizer else None
        self.draws_negatives = True
        step = config.step
        if step == "fused":
            problems = fused_problems(network, config.amp)
            if problems:
                raise ValueError("step 'fused' needs " + "; ".join(problems))
        # per layer: runs the closed-form step (decided once for the session's life)
        self.fused_layers = [step != "autograd" and fused_supported(layer, config.amp) for layer in network.layers]
        self._shares_first_layer = (self.fused_layers[0] and network.labels.mode != "none"
                                    and self.contrast.label_only())
        # layers whose fused step scales its input rows before the matmul: the layer below hands
        # them over already scaled (fused.takes_normalized_input), and the readout reuses those rows,
        # so only where the layer's norm is the readout's
        self.normalized_input = [i > 0 and self.fused_layers[i] and layer.norm == netcfg.norm
                                 and takes_normalized_input(layer, config.amp, device)
                                 for i, layer in enumerate(network.layers)]
        self._graphed: GraphedStep | None = None
        self._use_graph = step == "cuda_graph"
        self._graph_factory = cuda_graph
        if self._use_graph:
            problems = graph_problems(self)
            if problems:
                raise ValueError("step 'cuda_graph' needs " + "; ".join(problems))
        self._native: NativeStep | None = None
        if step == "native":
            problems = native_problems(self)
            if problems:
                raise ValueError("step 'native' needs " + "; ".join(problems))
            try:
                self._native = NativeStep(self)
            except RuntimeError as exc:  # no compiler, or the build failed: say so where the option was set
                raise ValueError(f"step 'native': {exc}") from exc
        self.step_kind = step if step != "auto" else ("fused" if all(self.fused_layers) else
                                                      "fused+autograd" if any(self.fused_layers) else "autograd")

    def _build_readout_optimizer(self) -> torch.optim.Optimizer:
        return self.config.readout_optimizer().build(list(self.network.readout.parameters()))

    # ---- the protocol -----------------------------------------------------------------------

    def set_lr_factor(self, factor: float, units: range) -> None:
        for i in units:
            for group in self.optimizers[i].param_groups:
                group["lr"] = self.base_lrs[i] * factor
        if self.readout_active(units) and self.config.cooldown and self.config.readout_cooldown:
            for group in self.readout_optimizer.param_groups:  # loeweX's update_learning_rate, param_groups[1]
                group["lr"] = self.readout_base_lr * factor

    def begin_fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        self.network.fit_standardizer(x_train)
        self._graphed = GraphedStep(self, x_train, y_train, self._graph_factory) if self._use_graph else None

    def begin_epoch(self, epoch: int, units: range, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        self.contrast.prepare_epoch(self._hard_negative_probs, x_train, epoch)

    def step(self, batch: Batch, generator: torch.Generator, units: range, stats: torch.Tensor) -> None:
        graphed = self._graphed
        if graphed is not None and batch.index.shape[0] == self.config.batch_size:
            graphed.step(batch.index, generator)
        else:  # a short last batch runs eagerly (a graph has fixed shapes)
            self.train_step(batch.x, batch.y, batch.index, generator, units, stats)

    def graphed_step(self) -> GraphedStep | None:
        """The CUDA-graph step of the current fit (between begin_fit and end_fit), if the step is cuda_graph."""
        return self._graphed

    def end_epoch(self, stats: torch.Tensor) -> None:
        if self._graphed is not None:
            self._graphed.flush_stats(stats)  # the graph's statistics accumulate in its own buffer

    def end_fit(self) -> None:
        self._graphed = None  # the graph's memory pool and its hold on the training set go back

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers],
                "readout": self.readout_optimizer.state_dict() if self.readout_optimizer is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        optimizers = state.get("optimizers") or []
        if len(optimizers) != len(self.optimizers) or (state.get("readout") is None) != (self.readout_optimizer is None):
            raise ValueError("resume: the saved optimizer states do not fit this network's layers and readout")
        for opt, saved in zip(self.optimizers, optimizers):
            opt.load_state_dict(saved)
        if self.readout_optimizer is not None:
            self.readout_optimizer.load_state_dict(state["readout"])

    def extra_loss_name(self, units: range) -> str | None:
        return "readout_loss" if self.readout_active(units) else None

    def readout_active(self, units: range) -> bool:
        return self.readout_optimizer is not None and units.stop == len(self.network.layers)

    def methods(self, units: range) -> list[str]:
        methods = list(self.network.prediction_methods())
        if not self.readout_active(units) and "readout" in methods and len(methods) > 1:
            methods.remove("readout")  # greedy phases before the last: the readout has not trained
        return methods

    def report(self) -> dict:
        graphed = self._graphed
        if graphed is None:
            report = {}
        else:
            report = {"cuda_graph": {"captures": graphed.captures, "eager_warmup_steps": graphed.eager_steps,
                                     "error": graphed.error}}
        if self._native is not None:
            report["native_steps"] = self._native.steps
        return report

    # ---- one step ---------------------------------------------------------------------------

    def layer_step(self, i: int, z: torch.Tensor | LabeledRows, n_pos: int, n_train: int,
                   sumsq: torch.Tensor | None = None, normalized: torch.Tensor | None = None,
                   normalize_output: str | None = None) -> StepResult:
        """Layer i's local step on detached input z: fused where the layer allows, else autograd.
        ``sumsq`` (rows,): z's row sums of squares, when the layer below reported them;
        ``normalized``/``normalize_output``: see ``fused.fused_step``."""
        layer, opt = self.network.layers[i], self.optimizers[i]
        if self.fused_layers[i]:
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
        return i + 1 < len(self.fused_layers) and self.fused_layers[i] and self.normalized_input[i + 1]

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
        x = self.network.prepare_input(x)  # identity unless the network standardises its inputs
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
                                            share=layers.start == 0 and self.fused_layers[0], negative_labels=negative_labels)
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
        if self.config.step != "autograd":
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

    @torch.no_grad()
    def _hard_negative_probs(self, x_train: torch.Tensor) -> torch.Tensor:
        net = self.network
        if not self.draws_negatives:  # a pipeline rank past the first: its contrast is never asked
            return torch.zeros(x_train.shape[0], net.num_classes, device=x_train.device)
        if net.config.readout:
            return predict_in_chunks(net, x_train, "readout")
        scores = predict_in_chunks(net, x_train, "goodness")
        # Goodness sums are large; scale by each row's spread so the softmax is not one-hot.
        return F.softmax(scores / scores.std(dim=1, keepdim=True).clamp_min(1e-6), dim=1)



def fused_problems(network, amp: str) -> list[str]:
    """Why some layer of ``network`` cannot take the fused step ([] when every layer can)."""
    problems = []
    for i, layer in enumerate(network.layers):
        if not fused_supported(layer, amp):
            problems.append(f"layer {i} with ReLU or relu_full_grad, a sum- or mean-of-squares goodness and amp "
                            f"none/bf16/fp16 (it has activation {layer.activation!r}, goodness "
                            f"{layer.goodness_name!r}, amp {amp!r})")
    return problems
