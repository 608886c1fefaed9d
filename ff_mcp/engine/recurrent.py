"""Hinton's recurrent FF with top-down connections (model kind "recurrent"; Hinton 2022, section 4).

A static image is treated as a video whose frames all repeat it. Between the image (bottom) and a
clamped one-of-N label (top) sit hidden layers; at each iteration every hidden layer's new activity is
computed from the normalised activities of the layer below and the layer above at the previous
iteration (synchronous updates), then damped: ``state = damping * old + (1 - damping) * relu(...)``
(the paper: 0.3 old + 0.7 new). The hidden layers start from one bottom-up pass (label-free).

Training runs ``iterations`` iterations (8) on positive rows (the true label on top) and negative rows
(a wrong label on top); at each iteration from ``train_from`` on, each layer's goodness (sum of
squared activities) gets the logistic FF loss against the layer's width. Every input to a layer is
the previous iteration's state, detached: no gradient crosses layers or iterations. Negative labels
are "hard" as in the paper: drawn from the wrong classes in proportion to the probabilities of one
forward pass (a linear softmax on the bottom-up pass, trained beside the layers), or uniform.

Prediction ("goodness"): every label is clamped on top of every row at once ((B x K) rows), the net
runs to the window's last iteration, and the label with the highest goodness summed over hidden
layers and averaged over the window (iterations 3 to 5) wins. "readout": the one-pass softmax.
docs/VARIANTS.md gives the choices the paper leaves open.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers import seeded_uniform_
from .losses import softplus_loss
from .norms import rms_normalize
from .protocol import Batch, DataSpec, FFModel, Session, register_model_kind
from .trainer import TrainConfig, scale_learning_rates

NEGATIVES = ("hard", "wrong_label")


def damped(old: torch.Tensor, drive: torch.Tensor, damping: float) -> torch.Tensor:
    """The new state: ``damping * old + (1 - damping) * relu(drive)``."""
    return damping * old + (1.0 - damping) * F.relu(drive)


def _window(text: str | tuple[int, ...], name: str) -> tuple[int, int]:
    """ "3-5" (or "4", or (3, 5)) -> (3, 5): 1-based iterations, inclusive."""
    if isinstance(text, (tuple, list)):
        text = "-".join(str(v) for v in text)
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(text))
    if match is None:
        raise ValueError(f"{name} must be iterations 'first-last' (e.g. 3-5), got {text!r}")
    first = int(match.group(1))
    return first, int(match.group(2) or first)


@dataclass(frozen=True)
class RecurrentConfig:
    """Everything needed to rebuild a RecurrentNet (stored in its checkpoints)."""

    in_features: int
    num_classes: int
    hidden: tuple[int, ...] = (2000, 2000)
    iterations: int = 8  # iterations a training row is run for
    train_from: int = 1  # the first iteration whose goodness is trained (1-based)
    damping: float = 0.3  # the old state's share of the new one
    window: tuple[int, int] = (3, 5)  # prediction: goodness averaged over these iterations (1-based, inclusive)
    negatives: str = "hard"
    label_length: float = 0.0  # length of the clamped label vector; 0: 4 sqrt(top hidden width)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "window", tuple(self.window))
        if self.in_features < 1 or self.num_classes < 2 or not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"recurrent needs in_features >= 1, num_classes >= 2 and hidden sizes >= 1, got "
                             f"{self.in_features}, {self.num_classes}, {self.hidden}")
        if not 1 <= self.iterations <= 64:
            raise ValueError(f"iterations must be in [1, 64], got {self.iterations}")
        if not 1 <= self.train_from <= self.iterations:
            raise ValueError(f"train_from must be in [1, iterations={self.iterations}], got {self.train_from}")
        if not 0.0 <= self.damping < 1.0:
            raise ValueError(f"damping must be in [0, 1), got {self.damping}")
        first, last = self.window
        if not 1 <= first <= last <= 64:
            raise ValueError(f"window must be iterations first-last with 1 <= first <= last <= 64, got "
                             f"{first}-{last}")
        if not (math.isfinite(self.label_length) and 0.0 <= self.label_length <= 1e4):
            raise ValueError(f"label_length must be in [0, 10000] (0: auto), got {self.label_length}")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {list(NEGATIVES)}, got {self.negatives!r}")

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "RecurrentConfig":
        return cls(**d)


@dataclass(frozen=True)
class RecurrentOptions:
    """Options of the "recurrent" variant."""

    iterations: int = field(default=8, metadata={"help": "iterations each training row runs, in [1, 64] (paper: 8)"})
    train_from: int = field(default=1, metadata={
        "help": "first iteration whose goodness is trained, in [1, iterations] (the paper does not say)"})
    damping: float = field(default=0.3, metadata={"help": "share of the old state in the new one, in [0, 1) "
                                                          "(paper: 0.3)"})
    window: str = field(default="3-5", metadata={
        "help": "iterations whose goodness is averaged to classify, first-last (paper: 3-5)"})
    negatives: str = field(default="hard", metadata={
        "help": "hard (wrong labels drawn in proportion to the one-pass softmax, the paper's) | wrong_label (uniform)"})
    label_length: float = field(default=0.0, metadata={
        "help": "length of the clamped label vector, in [0, 10000]; 0: 4 x the length of the top hidden layer's "
                "normalised state (4 sqrt(width)), chosen on MNIST validation rows (docs/VARIANTS.md)"})


class RecurrentLayer(nn.Module):
    """One hidden layer: a weight from the layer below (with the bias) and one from the layer above."""

    def __init__(self, below: int, width: int, above: int) -> None:
        super().__init__()
        self.up = nn.Linear(below, width)
        self.down = nn.Linear(above, width, bias=False)


@register_model_kind
class RecurrentNet(FFModel):
    """Hidden layers between the image and the clamped label, updated together for a few iterations."""

    kind = "recurrent"
    description = ("Hinton's recurrent FF: hidden layers driven by the layers below and above, the label "
                   "clamped on top, 8 damped synchronous iterations, goodness over iterations 3-5 classifies")
    config_class = RecurrentConfig
    options_class = RecurrentOptions
    data_kinds = ("rows",)

    def __init__(self, config: RecurrentConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        widths = [config.in_features, *config.hidden, config.num_classes]
        self.layers = nn.ModuleList(RecurrentLayer(widths[i], widths[i + 1], widths[i + 2])
                                    for i in range(len(config.hidden)))
        self.readout = nn.Linear(sum(config.hidden), config.num_classes)
        for layer in self.layers:  # the default init over the layer's whole input (below and above)
            seeded_uniform_([layer.up.weight, layer.down.weight, layer.up.bias],
                            layer.up.in_features + layer.down.in_features, generator)
        seeded_uniform_([self.readout.weight, self.readout.bias], self.readout.in_features, generator)

    @classmethod
    def build_config(cls, data: DataSpec, hidden: tuple[int, ...], options: RecurrentOptions | None,
                     train: Any = None) -> RecurrentConfig:
        options = options or RecurrentOptions()
        return RecurrentConfig(data.in_features, data.num_classes, tuple(hidden), options.iterations,
                               options.train_from, options.damping, _window(options.window, "window"),
                               options.negatives, options.label_length)

    # ---- the computation ------------------------------------------------------------------

    def label_top(self, labels: torch.Tensor | None, rows: int, device: torch.device) -> torch.Tensor:
        """The top layer: a one-hot label per row, or the neutral label (every class alike), of length
        ``label_length`` (auto: 4 x the length of a normalised top hidden state, 4 sqrt(width))."""
        k = self.num_classes
        length = self.config.label_length or 4.0 * math.sqrt(self.config.hidden[-1])
        if labels is None:
            return torch.full((rows, k), length / math.sqrt(k), device=device)
        return F.one_hot(labels.to(device), k).float() * length

    def input_drive(self, x: torch.Tensor) -> torch.Tensor:
        """The image's drive of the first hidden layer (the same at every iteration): W normalise(x) + b."""
        first = self.layers[0].up
        return F.linear(rms_normalize(x), first.weight, first.bias)

    def bottom_up(self, drive: torch.Tensor) -> list[torch.Tensor]:
        """The initial states: one bottom-up pass, nothing from above (label-free)."""
        states = [F.relu(drive)]
        for layer in self.layers[1:]:
            states.append(F.relu(F.linear(rms_normalize(states[-1]), layer.up.weight, layer.up.bias)))
        return states

    def iterate(self, drive: torch.Tensor, states: list[torch.Tensor], top: torch.Tensor) -> list[torch.Tensor]:
        """One synchronous iteration: each layer from the normalised states below and above at the last one."""
        normed = [rms_normalize(s) for s in states] + [top]
        new = []
        for i, layer in enumerate(self.layers):
            below = drive if i == 0 else F.linear(normed[i - 1], layer.up.weight, layer.up.bias)
            new.append(damped(states[i], below + F.linear(normed[i + 1], layer.down.weight), self.config.damping))
        return new

    def run(self, x: torch.Tensor, labels: torch.Tensor | None, iterations: int) -> list[list[torch.Tensor]]:
        """States after each iteration 1..iterations (index 0: the bottom-up pass), labels clamped on top."""
        drive = self.input_drive(x)
        states = self.bottom_up(drive)
        top = self.label_top(labels, x.shape[0], x.device)
        trace = [states]
        for _ in range(iterations):
            states = self.iterate(drive, states, top)
            trace.append(states)
        return trace

    def window_goodness(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """(B, L): each hidden layer's goodness averaged over the prediction window."""
        first, last = self.config.window
        trace = self.run(x, labels, last)
        return torch.stack([torch.stack([s.square().sum(dim=1) for s in trace[t]], dim=1)
                            for t in range(first, last + 1)]).mean(dim=0)

    def goodness_scores(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, K): every label clamped at once ((B x K) rows in one pass per iteration)."""
        b, k = x.shape[0], self.num_classes
        first, last = self.config.window
        drive = self.input_drive(x)
        states = self.bottom_up(drive)
        drive = drive.repeat_interleave(k, dim=0)  # row r of the batch becomes rows r*K .. r*K + K-1
        states = [s.repeat_interleave(k, dim=0) for s in states]
        top = self.label_top(torch.arange(k, device=x.device).repeat(b), b * k, x.device)
        total = torch.zeros(b * k, device=x.device)
        for t in range(1, last + 1):
            states = self.iterate(drive, states, top)
            if t >= first:
                total += sum(s.square().sum(dim=1) for s in states)
        return (total / (last - first + 1)).reshape(b, k)

    def local_losses(self, drive: torch.Tensor, states: list[torch.Tensor], y: torch.Tensor,
                     y_neg: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """One batch's training losses: per hidden layer, the logistic FF loss of its goodness minus its
        width, positive rows (label y on top) against negative rows (y_neg), averaged over the trained
        iterations; and (L, 2) the goodness of positive and of negative rows summed over rows (averaged
        over those iterations). ``drive``: the batch's input drive (with its gradient); ``states``: its
        bottom-up pass. Every iteration starts from the last one's states detached, so each loss reaches
        only its own layer's weights."""
        cfg, b = self.config, y.shape[0]
        drive = torch.cat([drive, drive])  # positive rows, then negative rows
        states = [torch.cat([s, s]) for s in states]
        top = self.label_top(torch.cat([y, y_neg]), 2 * b, drive.device)
        losses = [drive.new_zeros(()) for _ in self.layers]
        goodness = drive.new_zeros(len(self.layers), 2)
        trained = cfg.iterations - cfg.train_from + 1
        for t in range(1, cfg.iterations + 1):
            learn = t >= cfg.train_from
            with torch.set_grad_enabled(learn):
                states = self.iterate(drive if learn else drive.detach(), [s.detach() for s in states], top)
            if learn:
                for i, s in enumerate(states):
                    g = s.square().sum(dim=1)
                    logit = g - cfg.hidden[i]  # goodness minus the layer's width
                    losses[i] = losses[i] + softplus_loss(logit[:b], logit[b:]) / trained
                    goodness[i, 0] += g[:b].detach().sum() / trained
                    goodness[i, 1] += g[b:].detach().sum() / trained
        return losses, goodness

    def readout_logits(self, states: list[torch.Tensor]) -> torch.Tensor:
        """The one-pass softmax's logits from the bottom-up states (normalised, every hidden layer)."""
        return self.readout(torch.cat([rms_normalize(s) for s in states], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, K) goodness per label (the paper's classifier)."""
        return self.goodness_scores(x)

    # ---- the protocol ---------------------------------------------------------------------

    def local_units(self) -> list[nn.Module]:
        return list(self.layers)  # the readout learns beside them; its loss is the run's readout_loss

    def training_session(self, config: TrainConfig, device: torch.device) -> Session:
        return RecurrentSession(self, config, device)

    def prediction_methods(self) -> dict[str, str]:
        first, last = self.config.window
        return {"goodness": f"every label clamped on top; the highest goodness summed over hidden layers and "
                            f"averaged over iterations {first}-{last}",
                "readout": "a linear softmax on the one bottom-up pass (no label; the negatives' sampler)"}

    def predict_scores(self, x: torch.Tensor, method: str | None = None) -> torch.Tensor:
        method = self.check_method(method)
        if method == "goodness":
            return self.goodness_scores(x)
        return F.softmax(self.readout_logits(self.bottom_up(self.input_drive(x))), dim=1)

    def layer_goodness(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """Each hidden layer's goodness averaged over the window, with ``labels`` on top (neutral if None)."""
        g = self.window_goodness(x, labels)
        return [{"goodness": g[:, i], "p_positive": torch.sigmoid(g[:, i] - width)}
                for i, width in enumerate(self.config.hidden)]


class RecurrentSession(Session):
    """Every hidden layer and the readout learn at every mini-batch, each with its own optimizer."""

    def __init__(self, model: RecurrentNet, config: TrainConfig, device: torch.device) -> None:
        super().__init__(model, config, device)
        if config.schedule != "simultaneous":
            raise ValueError("schedule: recurrent FF updates every layer at once at each iteration; leave "
                             "schedule 'simultaneous'")
        if config.negatives != "wrong_label":
            raise ValueError(f"negatives: variant 'recurrent' picks its negative labels with its option negatives "
                             f"(hard | wrong_label, --opt negatives=...); leave --negatives unset, got "
                             f"{config.negatives!r}")
        opt = config.optimizer
        self.optimizers = [opt.build(list(layer.parameters())) for layer in model.layers]
        readout = config.readout_optimizer()
        self.optimizers.append(readout.build(list(model.readout.parameters())))
        self.base_lrs = [opt.lr] * len(model.layers) + [readout.lr]
        self.epoch = 0

    def begin_epoch(self, epoch: int, units: range, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        self.epoch = epoch

    def set_lr_factor(self, factor: float, units: range) -> None:
        scale_learning_rates(self.optimizers, self.base_lrs, factor, self.config.readout_cooldown)

    def negative_labels(self, logits: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A wrong label per row: in proportion to the one-pass softmax ("hard"), or uniform."""
        k = self.model.num_classes
        # hard: from the second epoch on (before it the readout's guesses are noise), as the dense "hard" contrast
        if self.model.config.negatives == "wrong_label" or self.epoch == 0:
            shift = torch.randint(1, k, y.shape, generator=generator, device=generator.device)
            return (y + shift.to(y.device)) % k
        probs = F.softmax(logits.float(), dim=1)
        probs = probs.masked_fill(F.one_hot(y, k).bool(), 0.0) + 1e-6 * (1.0 - F.one_hot(y, k).float())
        return torch.multinomial(probs.to(generator.device), 1, generator=generator).squeeze(1).to(y.device)

    def step(self, batch: Batch, generator: torch.Generator, units: range, stats: torch.Tensor) -> None:
        model = self.model
        x, y = batch.x, batch.y
        drive = model.input_drive(x)  # with the gradient of the first layer's bottom-up weights
        with torch.no_grad():
            states = model.bottom_up(drive.detach())
        logits = model.readout_logits(states)  # trained on the detached bottom-up states
        readout_loss = F.cross_entropy(logits, y)
        y_neg = self.negative_labels(logits.detach(), y, generator)
        losses, goodness = model.local_losses(drive, states, y, y_neg)
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        (sum(losses) + readout_loss).backward()  # each loss reaches only its own layer's weights
        for optimizer in self.optimizers:
            optimizer.step()
        n = len(losses)
        stats[:n, 0] += torch.stack(losses).detach()
        stats[:n, 1:] += goodness
        stats[-1, 0] += readout_loss.detach()

    def extra_loss_name(self, units: range) -> str | None:
        return "readout_loss"

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for optimizer, saved in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
