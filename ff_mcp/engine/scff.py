"""Self-Contrastive Forward-Forward (model kind "scff"; Chen et al., Nat. Commun. 16:5978, 2025).

Unsupervised FF: a positive input is a sample paired with itself (two augmented views of it), a
negative is the sample paired with another sample of the batch; no labels reach the layers. The first
layer applies one weight to both halves of the pair (``W x1 + W x2 + 2b``, the pair standardised as a
whole); later layers are plain layers on the layer below's output. Goodness is the mean of squared
ReLU outputs; each layer's loss is ``softplus(a (theta_pos - g_pos)) + softplus(b (g_neg - theta_neg))
+ lambda |g_pos|``. Layers train one after another (greedy), each on frozen layers below, then a linear
classifier with bias (the probe) is trained on the frozen, standardised outputs of every layer, the way
the paper evaluates. docs/VARIANTS.md has the mechanics as read from the official code.
"""

from __future__ import annotations

import math

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .protocol import Batch, DataSpec, FFModel, Session, register_model_kind
from .trainer import TrainConfig

ACTIVATIONS = ("triangle", "relu")
PROBE_SCHEDULES = ("trainer", "halving")
PROBE_HALVINGS = (0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)  # the official code's CustomStepLR, fractions of the epochs


def probe_halvings(epoch: int, epochs: int) -> int:
    """How many times the official code has halved the probe's learning rate when its epoch ``epoch``
    (from 0) of ``epochs`` begins: once for each distinct step int(epochs * r) <= epoch (its scheduler
    steps after every epoch, and once when it is made, which is step 0; for 50 epochs the steps are 10,
    17, 25, 30, 35, 40, 45)."""
    return len({int(epochs * r) for r in PROBE_HALVINGS if int(epochs * r) <= epoch})


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Each row to zero mean and unit standard deviation over its features (the paper's ``stdnorm``)."""
    x = x - x.mean(dim=1, keepdim=True)
    return x / (1e-10 + x.std(dim=1, keepdim=True))


def activate(h: torch.Tensor, kind: str) -> torch.Tensor:
    """What a layer hands on: ``triangle`` = relu(h - mean over units) (the paper's MNIST choice), or relu."""
    return F.relu(h - h.mean(dim=1, keepdim=True)) if kind == "triangle" else F.relu(h)


def goodness(h: torch.Tensor) -> torch.Tensor:
    """(B, H) pre-activations -> (B,) mean of squared ReLU outputs."""
    return F.relu(h).pow(2).mean(dim=1)


def scff_loss(g_pos: torch.Tensor, g_neg: torch.Tensor, theta_pos: float, theta_neg: float, a: float = 1.0,
              b: float = 1.0, lam: float = 0.0) -> torch.Tensor:
    """softplus(a (theta_pos - g_pos)) + softplus(b (g_neg - theta_neg)) + lambda |g_pos|, each a batch mean."""
    return (F.softplus(a * (theta_pos - g_pos)).mean() + F.softplus(b * (g_neg - theta_neg)).mean()
            + lam * g_pos.abs().mean())


def negative_partners(batch: int, generator: torch.Generator) -> torch.Tensor:
    """Row k's partner in its negative pair: (k + r) mod B for one random shift r in 1..B-1 (never itself)."""
    shift = int(torch.randint(1, batch, (1,), generator=generator)) if batch > 1 else 0
    return (torch.arange(batch) + shift) % batch


def translate(x: torch.Tensor, image_shape: tuple[int, int], pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by a whole-pixel offset on both axes (a uniform draw in (-pixels, pixels), rounded),
    zeros shifted in."""
    if pixels <= 0:
        return x
    height, width = image_shape
    images = x.reshape(-1, height, width)
    # torchvision's RandomAffine(translate=...): a uniform draw in (-pixels, pixels), rounded
    shifts = torch.round((torch.rand(images.shape[0], 2, generator=generator) * 2 - 1) * pixels).long()
    padded = F.pad(images, (pixels, pixels, pixels, pixels))
    rows = (torch.arange(height)[None, :] + pixels - shifts[:, :1]).to(x.device)  # (B, H)
    cols = (torch.arange(width)[None, :] + pixels - shifts[:, 1:]).to(x.device)  # (B, W)
    out = padded[torch.arange(images.shape[0], device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.reshape(x.shape[0], -1)


def _translation(pixels: int, image: tuple[int, ...] | None) -> int:
    """The views' translation: none for rows; -1 scales the paper's 2 of 28 pixels to the image's width."""
    if image is None:
        if pixels not in (-1, 0):
            raise ValueError(f"translate moves grey images; these rows have no (H, W) image shape, so give "
                             f"translate 0 or -1, got {pixels}")
        return 0
    if pixels == -1:
        return max(1, round(2 * image[-1] / 28))
    if not 0 <= pixels <= 8:
        raise ValueError(f"translate must be -1 (auto) or in [0, 8] pixels, got {pixels}")
    return pixels


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{name} must be numbers separated by commas, got {text!r}") from None


@dataclass(frozen=True)
class ScffConfig:
    """Everything needed to rebuild a ScffNet (stored in its checkpoints)."""

    in_features: int
    num_classes: int
    hidden: tuple[int, ...] = (2000, 2000)
    theta_pos: tuple[float, ...] = (4.0, 1.0)  # per layer (the paper's MNIST th1)
    theta_neg: tuple[float, ...] = (6.0, 1.0)  # per layer (th2)
    lam: tuple[float, ...] = (1e-4, 0.0)  # per layer
    a: float = 1.0
    b: float = 1.0
    activation: str = "triangle"
    image_shape: tuple[int, ...] | None = None
    translate: int = 2  # pixels of random translation for each view (images only)
    probe_dropout: float = 0.2  # the official two-layer MNIST run's (its last layer's out_dropout)
    layer_epochs: tuple[int, ...] = ()  # per layer; () = the run's epochs for every layer
    probe_epochs: int = 0  # 0 = the run's epochs
    layer_lr: tuple[float, ...] = ()  # per layer; () = the run's lr
    lr_gamma: tuple[float, ...] = ()  # per layer: the lr times gamma every lr_period mini-batches; () = no decay
    lr_period: tuple[int, ...] = ()
    probe_schedule: str = "trainer"  # "halving": the official code's halvings of the probe's lr

    def __post_init__(self) -> None:
        for name in ("hidden", "theta_pos", "theta_neg", "lam", "layer_epochs", "layer_lr", "lr_gamma", "lr_period"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.image_shape is not None:
            object.__setattr__(self, "image_shape", tuple(self.image_shape))
        n = len(self.hidden)
        if self.in_features < 1 or self.num_classes < 2 or n < 1 or any(h < 1 for h in self.hidden):
            raise ValueError(f"scff needs in_features >= 1, num_classes >= 2 and hidden sizes >= 1, got "
                             f"{self.in_features}, {self.num_classes}, {self.hidden}")
        for name in ("theta_pos", "theta_neg", "lam"):
            values = getattr(self, name)
            if len(values) != n:
                raise ValueError(f"{name} needs one value per layer ({n}), got {values}")
        if any(v < 0 for v in self.lam):
            raise ValueError(f"lam must be >= 0 for every layer, got {self.lam}")
        if self.layer_epochs and (len(self.layer_epochs) != n or any(e < 1 for e in self.layer_epochs)):
            raise ValueError(f"layer_epochs needs one count >= 1 per layer ({n}), got {self.layer_epochs}")
        for name in ("layer_lr", "lr_gamma", "lr_period"):
            values = getattr(self, name)
            if values and len(values) != n:
                raise ValueError(f"{name} needs one value per layer ({n}), got {values}")
        if any(not 0 < v <= 10 for v in self.layer_lr):
            raise ValueError(f"layer_lr must be in (0, 10] for every layer, got {self.layer_lr}")
        if bool(self.lr_gamma) != bool(self.lr_period):
            raise ValueError("lr_gamma and lr_period go together: give both (one value per layer) or neither")
        if any(not 0 < v <= 1 for v in self.lr_gamma) or any(v < 1 for v in self.lr_period):
            raise ValueError(f"lr_gamma must be in (0, 1] and lr_period >= 1 mini-batches, got {self.lr_gamma}, "
                             f"{self.lr_period}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {self.activation!r}")
        if self.probe_schedule not in PROBE_SCHEDULES:
            raise ValueError(f"probe_schedule must be one of {list(PROBE_SCHEDULES)}, got {self.probe_schedule!r}")
        if not 0 <= self.translate <= 8:
            raise ValueError(f"translate must be in [0, 8] pixels, got {self.translate}")
        if not 0.0 <= self.probe_dropout < 1.0:
            raise ValueError(f"probe_dropout must be in [0, 1), got {self.probe_dropout}")
        if not 0 <= self.probe_epochs <= 10_000:
            raise ValueError(f"probe_epochs must be in [0, 10000], got {self.probe_epochs}")
        if not (self.a > 0 and self.b > 0):
            raise ValueError(f"a and b must be > 0, got {self.a}, {self.b}")

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ScffConfig":
        return cls(**d)


@dataclass(frozen=True)
class ScffOptions:
    """Options of the "scff" variant (per-layer values as comma lists, one per hidden layer)."""

    theta_pos: str = field(default="4,1", metadata={"help": "positive threshold per layer (paper's MNIST: 4,1)"})
    theta_neg: str = field(default="6,1", metadata={"help": "negative threshold per layer (paper's MNIST: 6,1)"})
    lam: str = field(default="1e-4,0", metadata={"help": "weight of |g_pos| in each layer's loss"})
    activation: str = field(default="triangle", metadata={"help": "triangle (relu(h - mean)) | relu"})
    translate: int = field(default=-1, metadata={
        "help": "random translation of each view in pixels (images; 0-8); -1: the paper's 2 of 28, in proportion "
                "to the image's width (1 for 8 x 8 digits)"})
    probe_dropout: float = field(default=0.2, metadata={"help": "dropout before the linear probe, in [0, 1)"})
    layer_epochs: str = field(default="", metadata={"help": "epochs per layer, e.g. 20,9 (empty: --epochs each)"})
    probe_epochs: int = field(default=0, metadata={"help": "epochs of the linear probe (0: --epochs)"})
    layer_lr: str = field(default="", metadata={"help": "learning rate per layer, e.g. 0.003,0.002 (empty: --lr)"})
    lr_gamma: str = field(default="", metadata={
        "help": "per layer: multiply its learning rate by gamma every lr_period mini-batches (the paper's MNIST: "
                "0.9,0.6 with lr_period 1000,1500); empty: no step decay"})
    lr_period: str = field(default="", metadata={"help": "per layer: mini-batches between two lr_gamma steps"})
    probe_schedule: str = field(default="trainer", metadata={
        "help": "the probe's learning rate: trainer (its cooldown, if any) | halving (the official code: halved "
                "after 20, 35, 50, 60, 70, 80 and 90 % of the probe's epochs)"})


@register_model_kind
class ScffNet(FFModel):
    """Unsupervised SCFF layers and a linear probe: x (B, D) -> class probabilities through the probe."""

    kind = "scff"
    description = ("Self-Contrastive FF (Chen et al. 2025): unsupervised pairs of a sample with itself vs with "
                   "another, greedy layers, a linear probe on the frozen features")
    config_class = ScffConfig
    options_class = ScffOptions
    data_kinds = ("rows", "images")

    def __init__(self, config: ScffConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        widths = [config.in_features, *config.hidden]
        self.layers = nn.ModuleList(nn.Linear(widths[i], widths[i + 1]) for i in range(len(config.hidden)))
        self.probe = nn.Linear(sum(config.hidden), config.num_classes)
        with torch.no_grad():  # nn.Linear's default init, from the seed's generator
            for layer in [*self.layers, self.probe]:
                bound = 1.0 / layer.in_features ** 0.5
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)

    @classmethod
    def build_config(cls, data: DataSpec, hidden: tuple[int, ...], options: ScffOptions | None,
                     train: Any = None) -> ScffConfig:
        options = options or ScffOptions()
        n = len(hidden)

        def per_layer(text: str, name: str) -> tuple[float, ...]:
            """One value per layer: a shorter list repeats its last value (4,1 for three layers: 4,1,1)."""
            values = _floats(text, name)
            if not values:
                raise ValueError(f"{name} needs at least one number")
            if len(values) > n or not all(math.isfinite(v) for v in values):
                raise ValueError(f"{name} takes at most one finite number per layer ({n}), got {text!r}")
            return (values + values[-1:] * n)[:n]

        shape = tuple(data.image_shape) if data.image_shape is not None else None
        shape = shape[1:] if shape is not None and len(shape) == 3 and shape[0] == 1 else shape  # grey (1, H, W)
        image = shape if shape is not None and len(shape) == 2 else None
        layer_epochs = tuple(int(v) for v in _floats(options.layer_epochs, "layer_epochs")) if options.layer_epochs else ()
        optional = lambda text, name: per_layer(text, name) if text else ()  # noqa: E731
        periods = optional(options.lr_period, "lr_period")
        if any(p != int(p) for p in periods):
            raise ValueError(f"lr_period must be whole mini-batch counts, got {options.lr_period!r}")
        return ScffConfig(data.in_features, data.num_classes, tuple(hidden), per_layer(options.theta_pos, "theta_pos"),
                          per_layer(options.theta_neg, "theta_neg"), per_layer(options.lam, "lam"), 1.0, 1.0,
                          options.activation, image, _translation(options.translate, image), options.probe_dropout,
                          layer_epochs, options.probe_epochs, optional(options.layer_lr, "layer_lr"),
                          optional(options.lr_gamma, "lr_gamma"), tuple(int(p) for p in periods),
                          options.probe_schedule)

    # ---- the computation ------------------------------------------------------------------

    def pre_activation(self, i: int, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        """Layer i's h. Layer 0 on a pair: the pair standardised as a whole, then W x1 + W x2 + 2b;
        later layers (and layer 0 on one row): W standardize(x) + b."""
        layer = self.layers[i]
        if i == 0 and x2 is not None:
            pair = standardize(torch.cat([x1, x2], dim=1))
            half = x1.shape[1]
            return F.linear(pair[:, :half], layer.weight) + F.linear(pair[:, half:], layer.weight) + 2 * layer.bias
        return F.linear(standardize(x1), layer.weight, layer.bias)

    def pair_outputs(self, x1: torch.Tensor, x2: torch.Tensor, upto: int) -> list[torch.Tensor]:
        """Pre-activations of layers 0..upto for the pair (x1, x2) (inputs standardised per row first)."""
        hs = [self.pre_activation(0, standardize(x1), standardize(x2))]
        for i in range(1, upto + 1):
            hs.append(self.pre_activation(i, activate(hs[-1], self.config.activation)))
        return hs

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The probe's input: each layer's standardised output for the row paired with itself."""
        hs = self.pair_outputs(x, x, len(self.layers) - 1)
        return torch.cat([standardize(activate(h, self.config.activation)) for h in hs], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probe logits (the dropout before the probe acts only in the session's probe step)."""
        return self.probe(self.features(x))

    # ---- the protocol ---------------------------------------------------------------------

    def local_units(self) -> list[nn.Module]:
        return [*self.layers, self.probe]  # each layer, then the probe

    def training_session(self, config: TrainConfig, device: torch.device) -> Session:
        return ScffSession(self, config, device)

    def prediction_methods(self) -> dict[str, str]:
        return {"probe": "the linear classifier trained on the frozen, standardised outputs of every layer"}

    def predict_scores(self, x: torch.Tensor, method: str | None = None) -> torch.Tensor:
        self.check_method(method)
        return F.softmax(self(x), dim=1)

    def layer_goodness(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """Each layer's goodness of the row paired with itself (labels play no part in SCFF)."""
        hs = self.pair_outputs(x, x, len(self.layers) - 1)
        out = []
        for i, h in enumerate(hs):
            g = goodness(h)
            out.append({"goodness": g, "p_positive": torch.sigmoid(self.config.a * (g - self.config.theta_pos[i]))})
        return out


class ScffSession(Session):
    """Greedy: layer 0, then layer 1 on frozen layer 0, ..., then the probe on every frozen layer."""

    def __init__(self, model: ScffNet, config: TrainConfig, device: torch.device) -> None:
        super().__init__(model, config, device)
        if config.schedule != "simultaneous":
            raise ValueError("schedule: scff trains its layers one after another by itself; leave schedule "
                             "'simultaneous'")
        cfg = model.config
        lrs = list(cfg.layer_lr) or [config.optimizer.lr] * len(model.layers)
        self.optimizers = [dataclasses.replace(config.optimizer, lr=lr).build(list(layer.parameters()))
                           for lr, layer in zip(lrs, model.layers)]
        # the paper's probe: Adam, lr 1e-3
        self.probe_optimizer = torch.optim.Adam(model.probe.parameters(), lr=1e-3)
        self.base_lrs = lrs + [1e-3]
        self.factors = [1.0] * len(self.base_lrs)  # the trainer's schedule (cooldown) per unit
        self.layer_steps = [0] * len(model.layers)  # mini-batches each layer has taken (its step decay)
        self.probe_epoch = 0  # epochs the probe has begun, less one (its halving schedule)
        self.augment = torch.Generator().manual_seed(config.seed + 7919)  # the views' translations, CPU

    def phases(self) -> list[range]:
        return [range(i, i + 1) for i in range(self.units)]

    def phase_epochs(self, epochs: int) -> list[int]:
        cfg = self.model.config
        layers = list(cfg.layer_epochs) or [epochs] * len(cfg.hidden)
        return layers + [cfg.probe_epochs or epochs]

    def set_lr_factor(self, factor: float, units: range) -> None:
        for i in units:
            self.factors[i] = factor
            self._apply_lr(i)

    def begin_epoch(self, epoch: int, units: range, x_train: Any, y_train: torch.Tensor) -> None:
        layers = len(self.model.layers)
        if units.start == layers:  # the probe's phase: its epoch counts from the end of the layers' epochs
            self.probe_epoch = epoch - sum(self.phase_epochs(self.config.epochs)[:layers])
            self._apply_lr(layers)

    def _halving_factor(self, i: int) -> float | None:
        """Unit i's factor under the probe's own halving schedule; None when the unit follows the trainer."""
        if i == len(self.optimizers) and self.model.config.probe_schedule == "halving":
            return 0.5 ** probe_halvings(self.probe_epoch, self.phase_epochs(self.config.epochs)[i])
        return None

    def applied_lr_factor(self, factor: float, units: range) -> float:
        own = self._halving_factor(units.start)
        return factor if own is None else own

    def _apply_lr(self, i: int) -> None:
        """Unit i's learning rate: its base, times the trainer's factor, times its step decay so far; the
        probe with ``probe_schedule="halving"``: its base halved at each of the official code's steps
        passed (the trainer's factor is not applied)."""
        cfg = self.model.config
        own = self._halving_factor(i)
        if own is not None:
            lr = self.base_lrs[i] * own
        else:
            decay = cfg.lr_gamma[i] ** (self.layer_steps[i] // cfg.lr_period[i]) if (
                cfg.lr_gamma and i < len(self.optimizers)) else 1.0
            lr = self.base_lrs[i] * self.factors[i] * decay
        optimizer = self.optimizers[i] if i < len(self.optimizers) else self.probe_optimizer
        for group in optimizer.param_groups:
            group["lr"] = lr

    def step(self, batch: Batch, generator: torch.Generator, units: range, stats: torch.Tensor) -> None:
        model, cfg = self.model, self.model.config
        unit = units.start
        if unit == len(model.layers):  # the probe on frozen features
            with torch.no_grad():
                features = model.features(batch.x)
                p = cfg.probe_dropout
                if p > 0:  # dropout drawn from the run's seeded stream, not torch's global one
                    keep = torch.rand(features.shape, generator=self.augment) >= p
                    features = features * keep.to(features.device) / (1 - p)
            loss = F.cross_entropy(model.probe(features), batch.y)
            self.probe_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.probe_optimizer.step()
            stats[unit, 0] += loss.detach()
            return
        x = batch.x
        shape = cfg.image_shape
        view1 = translate(x, shape, cfg.translate, self.augment) if shape else x
        view2 = translate(x, shape, cfg.translate, self.augment) if shape else x
        partners = negative_partners(x.shape[0], self.augment).to(x.device)
        with torch.no_grad():  # the frozen layers below
            below_pos = model.pair_outputs(view1, view2, unit - 1) if unit > 0 else None
            below_neg = model.pair_outputs(view1, view2[partners], unit - 1) if unit > 0 else None
        if unit == 0:
            h_pos = model.pre_activation(0, standardize(view1), standardize(view2))
            h_neg = model.pre_activation(0, standardize(view1), standardize(view2[partners]))
        else:
            h_pos = model.pre_activation(unit, activate(below_pos[-1], cfg.activation))
            h_neg = model.pre_activation(unit, activate(below_neg[-1], cfg.activation))
        g_pos, g_neg = goodness(h_pos), goodness(h_neg)
        loss = scff_loss(g_pos, g_neg, cfg.theta_pos[unit], cfg.theta_neg[unit], cfg.a, cfg.b, cfg.lam[unit])
        optimizer = self.optimizers[unit]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self.layer_steps[unit] += 1
        if cfg.lr_gamma and self.layer_steps[unit] % cfg.lr_period[unit] == 0:
            self._apply_lr(unit)  # the paper's StepLR: gamma every period mini-batches
        stats[unit, 0] += loss.detach()
        stats[unit, 1] += g_pos.detach().sum()
        stats[unit, 2] += g_neg.detach().sum()

    def methods(self, units: range) -> list[str]:
        return ["probe"] if units.start == len(self.model.layers) else []  # no score before the probe learns

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers], "probe": self.probe_optimizer.state_dict(),
                "augment": self.augment.get_state(), "layer_steps": torch.tensor(self.layer_steps)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for optimizer, saved in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        self.probe_optimizer.load_state_dict(state["probe"])
        self.augment.set_state(state["augment"])
        if "layer_steps" in state:  # saved before the step decay existed: none taken
            self.layer_steps = [int(v) for v in state["layer_steps"]]
