"""The backprop baseline (model kind "backprop"): the same layers, normalisation, data path and budget
as an FF run, trained end to end through the one training loop.

Every FF number in ``bench/`` is reported beside this one. The network is the FF network's stack
(normalise -> linear -> activation per layer) plus a linear softmax head, with no label embedding;
one cross-entropy loss is back-propagated through all layers. As a model kind it also trains,
saves and predicts through the CLI and the MCP tools (``--variant backprop``), for comparisons.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ff_mcp import seeds

from .device import autocast
from .layers import ACTIVATIONS, FFLinear
from .network import NetworkConfig, check_layer_settings, standardizer_stats
from .norms import normalize
from .protocol import Batch, DataSpec, FFModel, Session, register_model_kind
from .trainer import Trainer, TrainConfig, TrainResult


@dataclass(frozen=True)
class BackpropConfig:
    """Everything needed to rebuild a BackpropNet (stored in its checkpoints)."""

    in_features: int
    num_classes: int
    hidden: tuple[int, ...] = (1000, 1000, 1000)
    activation: str = "relu"
    norm: str = "rms"
    bias: bool = True
    standardize: bool = False  # inputs (x - mean) / std per feature, as the FF network of the same run

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.in_features < 1 or self.num_classes < 2:
            raise ValueError(f"in_features must be >= 1 and num_classes >= 2, got {self.in_features}, "
                             f"{self.num_classes}")
        check_layer_settings(self.hidden, self.activation, self.norm)

    @classmethod
    def from_network(cls, config: NetworkConfig) -> "BackpropConfig":
        """The baseline of an FF network: its layers, norm, bias and input standardisation."""
        return cls(config.in_features, config.num_classes, config.hidden, config.activation, config.norm,
                   config.bias, config.standardize)

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, d: dict) -> "BackpropConfig":
        return cls(**d)


@dataclass(frozen=True)
class BackpropOptions:
    """Options of the "backprop" variant."""

    activation: str = field(default="relu", metadata={"help": f"one of {', '.join(ACTIVATIONS)}"})
    norm: str = field(default="rms", metadata={"help": "each layer's input normalisation: rms | l2 | none"})
    standardize: bool | None = field(default=None, metadata={
        "help": "standardise each input feature; none given: on for rows that are not images"})


@register_model_kind
class BackpropNet(FFModel):
    """x: (B, D) -> logits (B, K) through the FF architecture's hidden stack."""

    kind = "backprop"
    description = "the backprop baseline: the FF network's layers and a softmax head, trained end to end"
    config_class = BackpropConfig
    options_class = BackpropOptions

    def __init__(self, config: BackpropConfig | NetworkConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        if isinstance(config, NetworkConfig):
            config = BackpropConfig.from_network(config)
        self.config = config
        widths = [config.in_features, *config.hidden]
        self.layers = nn.ModuleList(
            FFLinear(widths[i], widths[i + 1], activation=config.activation, norm=config.norm,
                     bias=config.bias, generator=generator)
            for i in range(len(config.hidden))
        )
        self.head = nn.Linear(config.hidden[-1], config.num_classes)
        with torch.no_grad():  # nn.Linear's default init, drawn from the seed's generator, not the global RNG
            bound = 1.0 / config.hidden[-1] ** 0.5
            self.head.weight.uniform_(-bound, bound, generator=generator)
            self.head.bias.uniform_(-bound, bound, generator=generator)
        self.norm = config.norm
        self.standardize = config.standardize
        if config.standardize:
            self.register_buffer("input_mean", torch.zeros(config.in_features))
            self.register_buffer("input_std", torch.ones(config.in_features))

    @classmethod
    def build_config(cls, data: DataSpec, hidden: tuple[int, ...], options: BackpropOptions | None,
                     train: Any = None) -> BackpropConfig:
        options = options or BackpropOptions()
        standardize = options.standardize if options.standardize is not None else data.image_shape is None
        return BackpropConfig(data.in_features, data.num_classes, tuple(hidden), options.activation, options.norm,
                              True, standardize)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.standardize:
            x = (x - self.input_mean) / self.input_std
        for layer in self.layers:
            x = layer(x)
        return self.head(normalize(x, self.norm))

    def local_units(self) -> list[nn.Module]:
        return [self]  # one unit: every layer learns from the one loss at the top

    def training_session(self, config: TrainConfig, device: torch.device) -> Session:
        return BackpropSession(self, config, device)

    def prediction_methods(self) -> dict[str, str]:
        return {"softmax": "softmax of the head's logits"}

    def predict_scores(self, x: torch.Tensor, method: str | None = None) -> torch.Tensor:
        self.check_method(method)
        return F.softmax(self(x), dim=1)

    def layer_goodness(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        raise ValueError("a backprop model has no goodness: its layers learn from one loss at the top")


class BackpropSession(Session):
    """One optimizer over every parameter; each step back-propagates one cross-entropy through all layers."""

    def __init__(self, model: BackpropNet, config: TrainConfig, device: torch.device) -> None:
        super().__init__(model, config, device)
        if config.schedule != "simultaneous":
            raise ValueError(f"schedule: the backprop baseline trains end to end ('simultaneous'), got "
                             f"{config.schedule!r}")
        self.optimizer = config.optimizer.build(list(model.parameters()))
        self.base_lr = config.optimizer.lr

    def set_lr_factor(self, factor: float, units: range) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr * factor

    def begin_fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        if self.model.standardize:  # the statistics FFNetwork.fit_standardizer takes
            mean, std = standardizer_stats(x_train)
            self.model.input_mean.copy_(mean)
            self.model.input_std.copy_(std)

    def step(self, batch: Batch, generator: torch.Generator, units: range, stats: torch.Tensor) -> None:
        with autocast(self.device, self.config.amp):
            loss = F.cross_entropy(self.model(batch.x), batch.y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        stats[0, 0] += loss.detach().float()

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


def train_backprop(config: NetworkConfig | BackpropConfig, train: TrainConfig, x_train: torch.Tensor,
                   y_train: torch.Tensor, x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                   on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> tuple[BackpropNet, TrainResult]:
    """Train the baseline of an FF run: its layers, optimizer, batch size, epochs, cooldown and seed,
    through the same Trainer loop."""
    if not isinstance(config, (NetworkConfig, BackpropConfig)):
        raise ValueError(f"the backprop baseline is built from the 'ff' network's config, got {type(config).__name__}")
    net = BackpropNet(config, seeds.generator(train.seed, "init"))
    train = TrainConfig.from_dict({**train.to_dict(), "predict_method": None, "step": "auto", "schedule": "simultaneous",
                                   "train_eval_rows": 0})
    callbacks = [_EpochEnd(on_epoch_end)] if on_epoch_end is not None else []
    result = Trainer(net, train, callbacks=callbacks).fit(x_train, y_train, x_test, y_test)
    return net, result


class _EpochEnd:
    def __init__(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.on_epoch_end = fn


@torch.no_grad()
def backprop_accuracy(net: BackpropNet, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000) -> float:
    net.eval()
    device = next(net.parameters()).device
    correct = 0
    for i in range(0, x.shape[0], chunk):
        pred = net(x[i : i + chunk].to(device, torch.float32)).argmax(dim=1)
        correct += (pred == y[i : i + chunk].to(device)).sum().item()
    return correct / max(x.shape[0], 1)
