"""Distance-Forward on the MLP (model kind "distance"; after Wu et al., "Distance-Forward Learning",
arXiv 2408.14925, 2024): the centroid-based reading of FF, a goodness-based N-pair margin loss, and
(option ``collaborate``) a layer-collaboration update. The conv model's ``loss distance`` uses the same
functions (conv.py).

The paper's text beyond its abstract is not readable from this project's machines, so the mechanics
below are this module's choices, written out in docs/VARIANTS.md:

- Each layer is ``h = relu(W rms_normalize(x) + b)``; distances are taken on ``z = rms_normalize(h)``, the
  activity as the next layer reads it. Each layer keeps one centroid per class (a buffer): the moving
  average (``momentum``) of its class's ``z``, detached; a class's first batch sets it.
- The goodness of a row for class k is minus the mean squared distance of its ``z`` to centroid k,
  ``g_k = -mean((z - c_k)^2)``: FF's "goodness" read as closeness to the positive class's centroid.
- The loss is the N-pair margin loss over the classes' goodness: each row's own class is the positive,
  every other class's centroid a negative, ``log(1 + sum_{j != y} exp(scale (g_j - g_y + margin)))``.
  With two classes it is FF's softplus on (g_neg - g_pos + margin) (SymBa's form). No negative data
  is generated: the other centroids are the negatives.
- Every input to a layer is the layer below's output detached: no gradient crosses layers.
- Layer collaboration (``collaborate``; after Lorberbom et al., "Layer Collaboration in the Forward-Forward
  Algorithm", arXiv 2305.12393, whose collaborative FF the abstract's "layer-collaboration local updates"
  are read as): each layer's loss takes the goodness summed over every layer computed in the step,
  the other layers' terms detached, so each layer learns what the whole stack still gets wrong while no
  gradient crosses layers.
- Prediction: per layer the class of the nearest centroid (the highest goodness); ``fused`` sums each
  layer's softmax over ``scale * g``; ``summed`` the class with the most goodness summed over layers (what
  ``collaborate`` trains).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers import seeded_uniform_
from .norms import rms_normalize
from .protocol import Batch, DataSpec, FFModel, Session, register_model_kind
from .trainer import TrainConfig, scale_learning_rates


def class_goodness(h: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """(B, D), (K, D) -> (B, K): minus the mean squared distance of each row to each centroid, as
    |h|^2 - 2 h.c + |c|^2 (no (B, K, D) difference tensor: conv layers have D in the ten thousands)."""
    c = centroids.to(h.dtype)
    squared = h.square().sum(dim=1, keepdim=True) - 2.0 * h @ c.T + c.square().sum(dim=1)
    return -squared.clamp_min(0.0) / h.shape[1]


@torch.no_grad()
def update_centroids(centroids: torch.Tensor, seen: torch.Tensor, z: torch.Tensor, y: torch.Tensor,
                     momentum: float) -> None:
    """In place: move each class's centroid (K, D) toward the mean of its rows of ``z`` (B, D) in this batch,
    ``new = momentum old + (1 - momentum) mean``; a class seen for the first time is set to its mean."""
    k = centroids.shape[0]
    counts = torch.bincount(y, minlength=k).to(centroids.dtype)
    sums = torch.zeros_like(centroids).index_add_(0, y, z.to(centroids.dtype))
    present = counts > 0
    means = sums / counts.clamp(min=1).unsqueeze(1)
    keep = torch.where(seen, momentum, 0.0).unsqueeze(1)
    updated = keep * centroids + (1.0 - keep) * means
    centroids.copy_(torch.where(present.unsqueeze(1), updated, centroids))
    seen |= present


def check_settings(scale: float, margin: float, momentum: float) -> None:
    """ValueError naming the first of Distance-Forward's settings out of range."""
    if not (math.isfinite(scale) and 0.0 < scale <= 1e4):
        raise ValueError(f"scale must be in (0, 10000], got {scale}")
    if not (math.isfinite(margin) and 0.0 <= margin <= 100.0):
        raise ValueError(f"margin must be in [0, 100], got {margin}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")


def layer_losses(goodness: list[torch.Tensor | None], trained: list[int], y: torch.Tensor, scale: float, margin: float,
                 collaborate: bool) -> dict[int, torch.Tensor]:
    """The N-pair margin loss of each layer in ``trained`` on its goodness (B, K); with ``collaborate`` on
    the goodness summed over every layer in ``goodness`` (then none may be None), the other layers' terms
    detached (each loss's gradient reaches its own layer only)."""
    if not collaborate:
        return {i: n_pair_margin_loss(goodness[i], y, scale, margin) for i in trained}
    total = sum(g.detach() for g in goodness)
    return {i: n_pair_margin_loss(goodness[i] + (total - goodness[i].detach()), y, scale, margin) for i in trained}


def n_pair_margin_loss(goodness: torch.Tensor, y: torch.Tensor, scale: float, margin: float) -> torch.Tensor:
    """Mean over rows of log(1 + sum_{j != y} exp(scale (g_j - g_y + margin))); goodness (B, K)."""
    own = goodness.gather(1, y.unsqueeze(1))
    logits = scale * (goodness - own + margin)
    logits = logits.masked_fill(F.one_hot(y, goodness.shape[1]).bool(), float("-inf"))
    zero = torch.zeros_like(own)  # the "1" inside the log
    return torch.logsumexp(torch.cat([zero, logits], dim=1), dim=1).mean()


def step_layers(optimizers: list[torch.optim.Optimizer], goodness: list[torch.Tensor | None], trained: list[int],
                y: torch.Tensor, cfg: Any, stats: torch.Tensor) -> None:
    """One step of each layer in ``trained`` on its loss (``layer_losses`` with ``cfg``'s scale, margin and
    collaborate); per layer its loss, own-class and mean other-class goodness summed into ``stats``."""
    losses = layer_losses(goodness, trained, y, cfg.scale, cfg.margin, cfg.collaborate)
    for i in trained:
        optimizers[i].zero_grad(set_to_none=True)
    sum(losses.values()).backward()  # separate graphs: each loss reaches its own layer only
    for i in trained:
        optimizers[i].step()
        with torch.no_grad():
            g = goodness[i]
            own = g.gather(1, y.unsqueeze(1)).squeeze(1)
            others = (g.sum(dim=1) - own) / (g.shape[1] - 1)
            stats[i] += torch.stack([losses[i].detach(), own.sum(), others.sum()])


@dataclass(frozen=True)
class DistanceConfig:
    """Everything needed to rebuild a DistanceNet (stored in its checkpoints)."""

    in_features: int
    num_classes: int
    hidden: tuple[int, ...] = (1000, 1000)
    scale: float = 100.0
    margin: float = 0.1
    momentum: float = 0.9
    collaborate: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if self.in_features < 1 or self.num_classes < 2 or not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"distance needs in_features >= 1, num_classes >= 2 and hidden sizes >= 1, got "
                             f"{self.in_features}, {self.num_classes}, {self.hidden}")
        check_settings(self.scale, self.margin, self.momentum)

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, d: dict) -> "DistanceConfig":
        return cls(**d)


@dataclass(frozen=True)
class DistanceOptions:
    """Options of the "distance" variant."""

    scale: float = field(default=100.0, metadata={
        "help": "multiplies the goodness differences inside the N-pair margin loss and the fused softmax, in (0, 10000]"})
    margin: float = field(default=0.1, metadata={
        "help": "how much closer (in mean squared distance) a row must be to its own class's centroid than to "
                "another's, in [0, 100]"})
    momentum: float = field(default=0.9, metadata={
        "help": "the centroids' moving average: new = momentum x old + (1 - momentum) x the batch's class mean, in [0, 1)"})
    collaborate: bool = field(default=False, metadata={
        "help": "layer collaboration: each layer's loss on the goodness summed over all layers, the others' "
                "detached (no gradient crosses layers)"})


class DistanceLayer(nn.Module):
    """One hidden layer and its class centroids."""

    def __init__(self, fan_in: int, fan_out: int, classes: int, generator: torch.Generator | None) -> None:
        super().__init__()
        self.linear = nn.Linear(fan_in, fan_out)
        seeded_uniform_([self.linear.weight, self.linear.bias], fan_in, generator)
        self.register_buffer("centroids", torch.zeros(classes, fan_out))
        self.register_buffer("seen", torch.zeros(classes, dtype=torch.bool))  # classes with a centroid yet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.linear(rms_normalize(x)))

    def goodness(self, h: torch.Tensor) -> torch.Tensor:
        """(B, K): each row's goodness for each class, on its RMS-normalised activity."""
        return class_goodness(rms_normalize(h), self.centroids)

    def update_centroids(self, z: torch.Tensor, y: torch.Tensor, momentum: float) -> None:
        """Move each class's centroid toward the mean of its rows' ``z`` (normalised activities) in this
        batch (set it on first sight)."""
        update_centroids(self.centroids, self.seen, z, y, momentum)


@register_model_kind
class DistanceNet(FFModel):
    """Hidden layers trained each on a goodness-based N-pair margin loss against per-class centroids."""

    kind = "distance"
    description = ("Distance-Forward on the MLP: per-class centroids in each layer, a goodness-based N-pair margin "
                   "loss against the other classes' centroids, optional layer collaboration, nearest-centroid "
                   "prediction per layer, fused and summed; no negative data (the conv model: --opt loss=distance)")
    config_class = DistanceConfig
    options_class = DistanceOptions
    data_kinds = ("rows",)

    def __init__(self, config: DistanceConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        widths = [config.in_features, *config.hidden]
        self.layers = nn.ModuleList(DistanceLayer(widths[i], widths[i + 1], config.num_classes, generator)
                                    for i in range(len(config.hidden)))

    @classmethod
    def build_config(cls, data: DataSpec, hidden: tuple[int, ...], options: DistanceOptions | None,
                     train: Any = None) -> DistanceConfig:
        o = options or DistanceOptions()
        return DistanceConfig(data.in_features, data.num_classes, tuple(hidden), o.scale, o.margin, o.momentum,
                              o.collaborate)

    def activities(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.predict_scores(x)

    # ---- the protocol ---------------------------------------------------------------------

    def local_units(self) -> list[nn.Module]:
        return list(self.layers)

    def training_session(self, config: TrainConfig, device: torch.device) -> Session:
        return DistanceSession(self, config, device)

    def prediction_methods(self) -> dict[str, str]:
        methods = {"fused": "each layer's softmax over scale x goodness (minus the mean squared distance to each "
                            "class's centroid), summed over layers",
                   "summed": "the class with the most goodness summed over layers"}
        for i in range(len(self.layers)):
            methods[f"layer{i + 1}"] = f"the nearest centroid in hidden layer {i + 1}"
        return methods

    def predict_scores(self, x: torch.Tensor, method: str | None = None) -> torch.Tensor:
        method = self.check_method(method)
        hs = self.activities(x)
        if method == "fused":
            return sum(F.softmax(self.config.scale * layer.goodness(h), dim=1) for h, layer in zip(hs, self.layers))
        if method == "summed":
            return sum(layer.goodness(h) for h, layer in zip(hs, self.layers))
        i = int(method[len("layer"):]) - 1
        return self.layers[i].goodness(hs[i])

    def layer_goodness(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """Per layer: the goodness of each row for its label (the nearest centroid's without labels) and the
        softmax probability of that class."""
        out = []
        for h, layer in zip(self.activities(x), self.layers):
            g = layer.goodness(h)
            pick = g.argmax(dim=1) if labels is None else labels.to(g.device)
            p = F.softmax(self.config.scale * g, dim=1)
            out.append({"goodness": g.gather(1, pick.unsqueeze(1)).squeeze(1),
                        "p_positive": p.gather(1, pick.unsqueeze(1)).squeeze(1)})
        return out


class DistanceSession(Session):
    """Each layer its own optimizer; every input detached (simultaneous or greedy schedule)."""

    def __init__(self, model: DistanceNet, config: TrainConfig, device: torch.device) -> None:
        super().__init__(model, config, device)
        if config.negatives != "wrong_label":
            raise ValueError(f"negatives: variant 'distance' uses the other classes' centroids as negatives; leave "
                             f"--negatives unset, got {config.negatives!r}")
        self.optimizers = [config.optimizer.build(list(layer.parameters())) for layer in model.layers]
        self.base_lrs = [config.optimizer.lr] * len(model.layers)

    def set_lr_factor(self, factor: float, units: range) -> None:
        scale_learning_rates(self.optimizers, self.base_lrs, factor)

    def step(self, batch: Batch, generator: torch.Generator, units: range, stats: torch.Tensor) -> None:
        cfg = self.model.config
        x, y = batch.x, batch.y
        goodness: list[torch.Tensor | None] = []  # per layer up to units.stop (frozen ones: only to collaborate)
        trained = []
        for i, layer in enumerate(self.model.layers[: units.stop]):
            if i not in units:
                with torch.no_grad():
                    x = layer(x)
                    goodness.append(layer.goodness(x) if cfg.collaborate else None)
                continue
            h = layer(x.detach())
            z = rms_normalize(h)  # once: the centroids move with it (detached), the loss reads it
            layer.update_centroids(z.detach(), y, cfg.momentum)
            goodness.append(class_goodness(z, layer.centroids))
            trained.append(i)
            x = h.detach()
        if trained:
            step_layers(self.optimizers, goodness, trained, y, cfg, stats)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for optimizer, saved in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
