"""FFNetwork (model kind "ff"): the dense label-embedded MLP, its options, and its two ways to
predict a label (goodness of every label, linear readout). Its training step is ``dense.DenseSession``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .goodness import get_goodness, goodness_mean_squares, goodness_sum_squares
from .labels import LabelEmbedding
from .layers import ACTIVATIONS, FFLinear, activate
from .losses import get_loss
from .negatives import contrast_needs_labels
from .norms import NORM_NAMES, normalize, scale_from_sumsq
from .protocol import STEPS, DataSpec, FFModel, register_model_kind


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to rebuild an FFNetwork (stored in every checkpoint)."""

    in_features: int  # width of a data row, without label slots
    num_classes: int
    hidden: tuple[int, ...] = (1000, 1000, 1000)  # loeweX / Hinton's Matlab: 3 x 1000
    activation: str = "relu"
    norm: str = "rms"  # Hinton's ffnormrows; "l2" for mpezeshki/fflib
    goodness: str = "sum_squares"
    threshold: float | None = None  # None: the goodness default (width for sums, 2.0 for means)
    loss: str = "softplus"
    label_mode: str = "overlay"  # Hinton: one-hot in the first K inputs
    label_strength: float = 1.0  # Matlab labelstrength
    peer_norm: float = 0.0  # Hinton uses 0.03
    bias: bool = True
    readout: bool = True  # linear softmax on normalised neutral-pass activities
    skip_first_layer: bool = True  # Matlab minlevelenergy/minlevelsup: the first hidden layer is left out
    image_shape: tuple[int, ...] | None = field(default=None)  # for hybrid negatives
    standardize: bool = False  # inputs (x - mean) / std per feature, the training set's statistics

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        if self.image_shape is not None:
            object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        if self.in_features < 1:
            raise ValueError(f"in_features must be >= 1, got {self.in_features}")
        check_layer_settings(self.hidden, self.activation, self.norm)
        get_goodness(self.goodness)
        get_loss(self.loss)
        if self.threshold is not None and not self.threshold > 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")
        if not (0.0 < self.label_strength <= 100.0):
            raise ValueError(f"label_strength must be in (0, 100], got {self.label_strength}")
        if not (0.0 <= self.peer_norm <= 1.0):
            raise ValueError(f"peer_norm must be in [0, 1], got {self.peer_norm}")
        LabelEmbedding(self.label_mode, self.num_classes, self.label_strength).input_width(self.in_features)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        d["image_shape"] = list(self.image_shape) if self.image_shape else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown network config fields: {sorted(unknown)}")
        return cls(**d)


def standardizer_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) per feature of rows x (N, D). A constant feature keeps std 1; a nearly constant one
    is floored at a tenth of the features' mean std, so a rare nonzero value (a pixel that is almost
    always 0) does not become a z-score in the hundreds and drown the label slots."""
    mean = x.mean(dim=0)
    std = x.std(dim=0) if x.shape[0] > 1 else torch.zeros_like(mean)
    varying = std > 1e-6
    if not bool(varying.any()):
        return mean, torch.ones_like(std)
    floor = 0.1 * std[varying].mean()
    return mean, torch.where(varying, std.clamp_min(floor), torch.ones_like(std))


def check_layer_settings(hidden: tuple[int, ...] | None, activation: str, norm: str) -> None:
    """ValueError naming the field unless hidden (when given) is sizes >= 1 and activation and norm are known."""
    if hidden is not None and (not hidden or any(h < 1 for h in hidden)):
        raise ValueError(f"hidden must be a non-empty list of sizes >= 1, got {list(hidden)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
    if norm not in NORM_NAMES:
        raise ValueError(f"norm must be one of {list(NORM_NAMES)}, got {norm!r}")


def _help(text: str) -> dict:
    return {"help": text}


@dataclass(frozen=True)
class DenseOptions:
    """Options of the "ff" variant (the dense MLP); each becomes the NetworkConfig field of its name."""

    goodness: str = field(default="sum_squares", metadata=_help("goodness of a layer's activity (sum_squares: Hinton)"))
    threshold: float | None = field(default=None, metadata=_help("goodness threshold; none: width for sums, 2 for means"))
    loss: str = field(default="softplus", metadata=_help("layer loss on goodness - threshold (softplus: Hinton)"))
    label_mode: str | None = field(default=None, metadata=_help(
        "overlay | concat | none; none given: overlay for images of >= 100 pixels, concat for other rows, "
        "none when the negatives need no labels"))
    label_strength: float = field(default=1.0, metadata=_help("value of the label's one-hot slot (Matlab labelstrength)"))
    norm: str = field(default="rms", metadata=_help("rms (Hinton's ffnormrows) | l2 | none"))
    activation: str = field(default="relu", metadata=_help(f"one of {', '.join(ACTIVATIONS)}"))
    peer_norm: float = field(default=0.0, metadata=_help("peer normalisation weight (Hinton: 0.03)"))
    readout: bool = field(default=True, metadata=_help("train a linear softmax readout on neutral-label activities"))
    skip_first_layer: bool = field(default=True, metadata=_help("leave the first hidden layer out of prediction"))
    standardize: bool | None = field(default=None, metadata=_help(
        "standardise each input feature with the training set's mean and std (kept in the model); "
        "none given: on for rows that are not images"))

    def __post_init__(self) -> None:
        get_goodness(self.goodness)
        get_loss(self.loss)
        if self.label_mode not in (None, "overlay", "concat", "none"):
            raise ValueError(f"label_mode must be one of ['overlay', 'concat', 'none'], got {self.label_mode!r}")
        check_layer_settings(None, self.activation, self.norm)


@register_model_kind
class FFNetwork(FFModel):
    """A stack of FFLinear layers.

    ``forward(x_embedded)`` returns every layer's activity (list of (B, H_l)). The layers are
    trained by ``Trainer``; the readout (if any) is a bias-free linear map trained on detached
    features, as in loeweX and Hinton's Matlab code.
    """

    kind = "ff"
    description = "Hinton's supervised Forward-Forward MLP: label embedded in the input, goodness per layer"
    config_class = NetworkConfig
    options_class = DenseOptions
    data_kinds = ("rows", "images")
    steps = STEPS

    def __init__(self, config: NetworkConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.labels = LabelEmbedding(config.label_mode, config.num_classes, config.label_strength)
        widths = [self.labels.input_width(config.in_features), *config.hidden]
        self.layers = nn.ModuleList(
            FFLinear(
                widths[i],
                widths[i + 1],
                activation=config.activation,
                norm=config.norm,
                goodness=config.goodness,
                threshold=config.threshold,
                loss=config.loss,
                peer_norm=config.peer_norm,
                bias=config.bias,
                generator=generator,
            )
            for i in range(len(config.hidden))
        )
        self.readout = nn.Linear(sum(config.hidden[self.first_scored_layer :]), config.num_classes, bias=False)
        nn.init.zeros_(self.readout.weight)  # loeweX zero-inits its classifier; also deterministic
        if config.standardize:  # only then: the state of a network without them stays as it was
            self.register_buffer("input_mean", torch.zeros(config.in_features))
            self.register_buffer("input_std", torch.ones(config.in_features))
            self.register_buffer("input_fitted", torch.zeros((), dtype=torch.bool))

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) raw rows -> the rows the layers see: standardised when the config says so."""
        if not self.config.standardize:
            return x
        return (x - self.input_mean) / self.input_std

    @torch.no_grad()
    def fit_standardizer(self, x_train: torch.Tensor) -> None:
        """Take the training rows' per-feature mean and std, once: training on from a checkpoint, or
        on other rows, keeps the scaling its weights learned under."""
        if self.config.standardize and not bool(self.input_fitted):
            mean, std = standardizer_stats(x_train)
            self.input_mean.copy_(mean)
            self.input_std.copy_(std)
            self.input_fitted.fill_(True)

    @classmethod
    def build_config(cls, data: DataSpec, hidden: tuple[int, ...], options: DenseOptions | None,
                     train=None) -> NetworkConfig:
        """The network for ``data``; with no label_mode given: none when the run's negatives need no
        labels (the contrast says so), overlay for images of >= 100 pixels, concat otherwise."""
        options = options or DenseOptions()
        negatives = train.negatives if train is not None else "wrong_label"
        label_mode = options.label_mode
        if label_mode is None:
            if not contrast_needs_labels(negatives):
                label_mode = "none"
            else:
                big_image = data.image_shape is not None and data.in_features >= 100
                label_mode = "overlay" if big_image else "concat"
        return NetworkConfig(
            in_features=data.in_features, num_classes=data.num_classes, hidden=tuple(hidden),
            activation=options.activation, norm=options.norm, goodness=options.goodness,
            threshold=options.threshold, loss=options.loss, label_mode=label_mode,
            label_strength=options.label_strength, peer_norm=options.peer_norm,
            readout=options.readout or label_mode == "none", skip_first_layer=options.skip_first_layer,
            image_shape=data.image_shape,
            standardize=options.standardize if options.standardize is not None else data.image_shape is None,
        )

    def local_units(self) -> list[nn.Module]:
        return list(self.layers)

    def training_session(self, config, device: torch.device):
        from .dense import DenseSession

        return DenseSession(self, config, device)

    @property
    def first_scored_layer(self) -> int:
        """Index of the first layer whose activity counts for prediction."""
        return 1 if self.config.skip_first_layer and len(self.layers) > 1 else 0

    @property
    def device(self) -> torch.device:
        return self.layers[0].weight.device

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: (B, D') embedded rows -> [h_1: (B, H_1), ..., h_L: (B, H_L)]."""
        activities = []
        for layer in self.layers:
            x = layer(x)
            activities.append(x)
        return activities

    # ---- prediction -------------------------------------------------------------------------

    def goodness_scores(self, x: torch.Tensor, skip_first: bool | None = None) -> torch.Tensor:
        """x: (B, D) raw rows -> (B, K): goodness summed over layers for each candidate label.

        All K labels go through in one batched pass. With a label embedding, the first layer's
        W.x is computed once and each label adds its column of W (``FFLinear.preactivation_parts``).
        """
        skip = self.config.skip_first_layer if skip_first is None else skip_first
        first = 1 if skip and len(self.layers) > 1 else 0
        x = self.prepare_input(x)
        if self.labels.mode == "none":
            raise ValueError("goodness prediction needs a label embedding; this network has label_mode 'none'")
        # Row chunks keep the (rows*K, H) activities near 2M values, so the elementwise work stays in
        # cache: 2x faster than one huge batch at K=10, H=1000-2000 on CPU (bench/predict_cost.py).
        chunk = max(1, self._PREDICT_CHUNK_VALUES // (self.num_classes * max(self.config.hidden)))
        if len(self.layers) == 1 and not torch.is_grad_enabled():
            chunk = 4096  # only (rows, H) is held; its label work is chunked inside (_single_layer_scores)
        if x.shape[0] > chunk:
            return torch.cat([self._goodness_scores(x[i : i + chunk], first) for i in range(0, x.shape[0], chunk)])
        return self._goodness_scores(x, first)

    _PREDICT_CHUNK_VALUES = 2_000_000

    def _goodness_scores(self, x: torch.Tensor, first: int) -> torch.Tensor:
        batch, k = x.shape[0], self.num_classes
        x_base = self.labels.embed(x, torch.zeros(batch, k, dtype=x.dtype, device=x.device))
        layer0 = self.layers[0]
        if len(self.layers) == 1 and not torch.is_grad_enabled():
            return self._single_layer_scores(layer0, x_base)
        h = layer0.preactivation_parts(x_base, self.labels.strength, k)  # (B, K, H_1)
        h = (h.clamp_(min=0) if layer0.activation in ("relu", "relu_full_grad") and not torch.is_grad_enabled()
             else activate(h, layer0.activation)).reshape(batch * k, -1)
        scores = layer0.goodness(h) if first == 0 else torch.zeros(batch * k, dtype=h.dtype, device=h.device)
        for index, layer in enumerate(self.layers[1:], start=1):
            h = layer(h)
            if index >= first:
                scores = scores + layer.goodness(h)
        return scores.view(batch, k)

    # Elementwise work per sub-chunk of the one-layer case: ~1 MB of (rows, K, H) float32, so the
    # three passes over it (add the label column, ReLU, sum of squares) stay in L2.
    _SINGLE_LAYER_CHUNK_VALUES = 262_144

    def _single_layer_scores(self, layer: FFLinear, x_base: torch.Tensor) -> torch.Tensor:
        """(B, D') label-free rows -> (B, K) goodness with one hidden layer: one matmul for W.x, then
        each label's column added, activated and scored in L2-sized pieces."""
        k, strength = self.num_classes, self.labels.strength
        relu = layer.activation in ("relu", "relu_full_grad")
        step = max(1, self._SINGLE_LAYER_CHUNK_VALUES // (k * layer.out_features))
        scores = x_base.new_empty(x_base.shape[0], k)
        if relu and layer.goodness_fn.measure in (goodness_sum_squares, goodness_mean_squares):
            # ReLU is positively homogeneous and the norm scale c > 0, so with one label slot set to s
            #   sum relu(c (x W^T + s w_k) + b)^2 = c^2 sum relu(x W^T + b / c + s w_k)^2:
            # one matmul, one pass adding b / c, then per L2-sized piece a broadcast add, ReLU and norm.
            scale = scale_from_sumsq(torch.linalg.vector_norm(x_base, dim=1).square_() + strength**2,
                                     x_base.shape[1], layer.norm)  # (B, 1)
            base = x_base @ layer.weight.t()
            if layer.bias is not None:
                base.addcmul_(layer.bias, scale.reciprocal())
            columns = (layer.weight[:, :k].t() * strength).contiguous()  # (K, H)
            for i in range(0, base.shape[0], step):
                scores[i : i + step] = layer.goodness(torch.add(base[i : i + step].unsqueeze(1), columns).relu_())
            return scores.mul_(scale.square())
        base, coef = layer.preactivation_base(x_base, strength)  # (B, H), (B, 1)
        columns = layer.weight[:, :k].t().contiguous()  # (K, H)
        for i in range(0, base.shape[0], step):
            pre = torch.addcmul(base[i : i + step].unsqueeze(1), coef[i : i + step].unsqueeze(2), columns)
            scores[i : i + step] = layer.goodness(pre.relu_() if relu else activate(pre, layer.activation))
        return scores

    def goodness_scores_loop(self, x: torch.Tensor, skip_first: bool | None = None) -> torch.Tensor:
        """Reference implementation of ``goodness_scores``: one full pass per label."""
        x = self.prepare_input(x)
        skip = self.config.skip_first_layer if skip_first is None else skip_first
        first = 1 if skip and len(self.layers) > 1 else 0
        columns = []
        for label in range(self.num_classes):
            y = torch.full((x.shape[0],), label, dtype=torch.long, device=x.device)
            activities = self(self.labels.embed_labels(x, y))
            columns.append(sum(layer.goodness(h) for layer, h in zip(self.layers[first:], activities[first:])))
        return torch.stack(columns, dim=1)

    def readout_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, D) raw rows -> (B, F): normalised activities of the scored layers, neutral label."""
        activities = self(self.labels.embed_neutral(self.prepare_input(x)))
        return torch.cat([normalize(h, self.config.norm) for h in activities[self.first_scored_layer :]], dim=1)

    def readout_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.readout_features(x))

    def prediction_methods(self) -> dict[str, str]:
        return self.methods_for(self.config)

    @staticmethod
    def methods_for(config: NetworkConfig) -> dict[str, str]:
        methods = {}
        if config.label_mode != "none":
            methods["goodness"] = "goodness summed over the scored layers, for each of the K labels (Hinton)"
        if config.readout:
            methods["readout"] = "softmax of the linear readout on neutral-label activities (loeweX)"
        return methods

    def predict_scores(self, x: torch.Tensor, method: str | None = None) -> torch.Tensor:
        """(B, D) -> (B, K): per-label goodness ("goodness") or softmax probabilities ("readout")."""
        if method is None:
            method = self.check_method(None)
        if method == "goodness":
            return self.goodness_scores(x)
        if method == "readout":
            if not self.config.readout:
                raise ValueError("this network was built without a readout; use method 'goodness'")
            return F.softmax(self.readout_logits(x), dim=1)
        raise ValueError(f"method must be one of {list(self.prediction_methods())} for this 'ff' model, "
                         f"got {method!r}")

    def predict(self, x: torch.Tensor, method: str | None = None) -> torch.Tensor:
        """(B, D) -> (B,) int64: one label per row."""
        return self.predict_scores(x, method).argmax(dim=1)

    def layer_goodness(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """Per-layer goodness and p(positive) for each row, with the given labels (neutral if None).

        Returns one dict per layer with ``goodness: (B,)`` (the raw measure) and ``p_positive: (B,)``.
        """
        x = self.prepare_input(x)
        embedded = self.labels.embed_neutral(x) if labels is None else self.labels.embed_labels(x, labels)
        out = []
        for layer, h in zip(self.layers, self(embedded)):
            out.append({"goodness": layer.goodness_fn.measure(h), "p_positive": torch.sigmoid(layer.logits(h))})
        return out
