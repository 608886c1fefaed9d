"""Convolutional FF with channel-wise competition (model kind "conv"; CwComp, Papachristodoulou et al.,
AAAI 2024, arXiv 2312.12668).

Images arrive as flat rows with the data set's image shape ((H, W) grey or (C, H, W)); each row is
standardised per channel with the training set's mean and std (fitted once, kept in the checkpoint) and
reshaped. Every layer is a 3 x 3 convolution (stride 1, padding 1, bias), ReLU, a 2 x 2 max-pool after the
layers in ``pool``, and batch norm (eps 1e-4) last; its output goes on, detached, to the next layer. Its
channels are split into one contiguous group per class; the goodness of class c is the mean of squared
outputs over group c's channels and every position. The channel-wise competitive loss (``cwc``, the
default) is the softmax cross-entropy over the classes' goodness: no negative data. ``pvn`` is the
classic FF loss on the same goodness (softplus(2 - g_true) and softplus(g_wrong - 2), g_wrong the mean
over the wrong classes). ``distance`` is Distance-Forward on these layers (distance.py): each layer's
output, flattened and divided by its root mean square, against one moving-average centroid per class,
the N-pair margin loss over minus the mean squared distances, optionally with layer collaboration; no
channel groups are needed (with cfse false any channel counts). With ``cfse`` the odd layers are grouped convolutions with one group per class
(CwComp's CFSE block), so group c of such a layer sees only class c's channels below.

``ff`` is Hinton's FF with label-embedded negatives on the same layers. The label enters as one extra
input channel holding that class's fixed pattern (an H x W draw of N(0, 1) noise per class, made from the
seed and kept in the checkpoint), so every filter at every location sees it and sees it differ between
classes: a spatially extended label in the sense of Scodellaro et al. (arXiv 2312.14924), who use Fourier
patterns. (Constant one-hot planes, one per class, act on a convolution only as a per-class bias, and
learned much worse: docs/VARIANTS.md.) The positive pass carries the true label's pattern, the negative
pass a uniformly drawn wrong one's; a layer's goodness is the mean square of its
activities (after ReLU and pooling) over channels and positions, the loss softplus(theta - g_pos) +
softplus(g_neg - theta); each image's activities are divided by their root mean square before the next
layer (no batch norm: it would pass the goodness on). Prediction runs every label and sums the goodness
of the layers after the first (all of them for one layer); the readout reads the neutral-label pass
(the mean of the K patterns).

Layers can train in overlapping epoch windows (Interleaved Layer Training): layer i trains in epochs
``[0, layer_epochs[i])`` and only infers afterwards. A linear classifier on the last layer's (detached)
output is trained beside them (``readout``). Prediction: ``goodness`` (the class whose group in the last
layer has the most goodness; CwComp's "Avg" predictor), ``readout``, and ``layerN``: layer N's goodness
alone (per-layer accuracies). docs/VARIANTS.md says what was read where and what differs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ff_mcp import seeds

from . import distance as df
from .layers import seeded_uniform_
from .negatives import wrong_labels
from .norms import rms_normalize
from .protocol import Batch, DataSpec, FFModel, Session, register_model_kind
from .trainer import TrainConfig, scale_learning_rates

LOSSES = ("cwc", "pvn", "ff", "distance")
GROUPLESS = ("ff", "distance")  # losses that need no channel group per class
METHODS = ("ff", "bp")
AUGMENTS = ("none", "crop-flip")
PVN_THRESHOLD = 2.0  # CwComp's PvN loss threshold
FF_THRESHOLD = 2.0  # loss ff: the mean-of-squares threshold of the FF literature (mpezeshki, nebuly)
PREDICT_CHUNK = 256  # images per forward pass when scoring (2000 at once ran at half the speed on 2 CPU cores)


def class_goodness(h: torch.Tensor, classes: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, K): per class, the mean of squares over its contiguous block of C / K channels."""
    b, c, height, width = h.shape
    return h.reshape(b, classes, c // classes, height, width).square().mean(dim=(2, 3, 4))


def cwc_loss(goodness: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The channel-wise competitive loss: softmax cross-entropy with the classes' goodness as logits."""
    return F.cross_entropy(goodness, y)


def pvn_loss(goodness: torch.Tensor, y: torch.Tensor, threshold: float = PVN_THRESHOLD) -> torch.Tensor:
    """Classic FF on class goodness: softplus(theta - g_true), softplus(g_wrong - theta), g_wrong the mean of
    the wrong classes' goodness; the 2B terms averaged."""
    k = goodness.shape[1]
    true = goodness.gather(1, y[:, None]).squeeze(1)
    wrong = (goodness.sum(dim=1) - true) / (k - 1)
    return torch.cat([F.softplus(threshold - true), F.softplus(wrong - threshold)]).mean()


def ff_loss(g_pos: torch.Tensor, g_neg: torch.Tensor, threshold: float = FF_THRESHOLD) -> torch.Tensor:
    """Hinton's FF loss on per-image goodness: softplus(theta - g_pos) and softplus(g_neg - theta), the 2B
    terms averaged."""
    return torch.cat([F.softplus(threshold - g_pos), F.softplus(g_neg - threshold)]).mean()


def image_goodness(h: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B,): the mean square over channels and positions."""
    return h.square().mean(dim=(1, 2, 3))


def rms_normalise(h: torch.Tensor) -> torch.Tensor:
    """Each image's activities divided by their root mean square (FF's length normalisation)."""
    return h / (h.square().mean(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()


def crop_flip(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) -> the same shape: each image zero-padded by ``padding`` on every side, cropped back to
    H x W at a random offset, and mirrored left-right with probability 1/2 (the standard CIFAR augmentation)."""
    b, _, height, width = images.shape
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator)
    flips = torch.rand(b, generator=generator) < 0.5
    padded = F.pad(images, (padding, padding, padding, padding))
    rows = (offsets[:, :1] + torch.arange(height)).to(images.device)  # (B, H)
    cols = offsets[:, 1:] + torch.arange(width)  # (B, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols).to(images.device)
    index = torch.arange(b, device=images.device)[:, None, None, None]
    channels = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[index, channels, rows[:, None, :, None], cols[:, None, None, :]]


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ValueError(f"{name} must be whole numbers separated by commas, got {text!r}") from None


@dataclass(frozen=True)
class ConvConfig:
    """Everything needed to rebuild a ConvNet (stored in its checkpoints)."""

    in_features: int
    num_classes: int
    image_shape: tuple[int, int, int] = (1, 28, 28)  # (channels, height, width)
    channels: tuple[int, ...] = (20, 80, 240, 480)
    pool: tuple[int, ...] = (1, 3)  # layers followed by a 2 x 2 max-pool (0-based)
    cfse: bool = True  # odd layers: grouped convolutions, one group per class
    loss: str = "cwc"
    layer_epochs: tuple[int, ...] = ()  # layer i trains in epochs [0, layer_epochs[i]); () = every epoch
    readout_from: int = 0  # the classifier trains from this epoch (0-based) on
    method: str = "ff"  # bp: the same layers and head trained end to end (the backprop CNN baseline)
    augment: str = "none"  # crop-flip: random crops of the 4-pixel zero-padded image and left-right flips
    scale: float = 100.0  # loss distance (Distance-Forward): the N-pair loss's and fused softmax's scale
    margin: float = 0.1
    momentum: float = 0.9  # the centroids' moving average
    collaborate: bool = False  # layer collaboration (distance.py)

    def __post_init__(self) -> None:
        for name in ("image_shape", "channels", "pool", "layer_epochs"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        c, h, w = self.image_shape
        k, n = self.num_classes, len(self.channels)
        if c * h * w != self.in_features:
            raise ValueError(f"image_shape {self.image_shape} does not hold {self.in_features} features")
        if k < 2 or n < 1:
            raise ValueError(f"conv needs num_classes >= 2 and at least one layer, got {k}, {self.channels}")
        bad = [ch for ch in self.channels if ch < k or ch % k]
        groupless = self.loss in GROUPLESS or self.method == "bp"
        if groupless and not self.cfse:  # no channel groups: any width
            bad = [ch for ch in self.channels if ch < 1]
        if bad:
            free = (f" (or give cfse false: with {'method bp' if self.method == 'bp' else 'loss ' + self.loss} and "
                    f"no channel groups any counts are allowed)" if groupless else "")
            raise ValueError(f"hidden: every conv layer's channels must be a multiple of the {k} classes (one "
                             f"group per class){free}, got {self.channels}")
        if any(not 0 <= p < n for p in self.pool) or len(set(self.pool)) != len(self.pool):
            raise ValueError(f"pool must name distinct layers in [0, {n}), got {self.pool}")
        if min(h, w) // 2 ** len(self.pool) < 1:
            raise ValueError(f"pool: {len(self.pool)} halvings leave nothing of a {h} x {w} image")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.layer_epochs and (len(self.layer_epochs) != n or any(e < 1 for e in self.layer_epochs)):
            raise ValueError(f"layer_epochs needs one count >= 1 per layer ({n}), got {self.layer_epochs}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {list(AUGMENTS)} (or auto), got {self.augment!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        if self.method == "bp" and self.loss in GROUPLESS:
            raise ValueError("loss: method 'bp' trains the layers with the head's cross-entropy; leave loss unset")
        if self.method == "bp" and (self.layer_epochs or self.readout_from):
            raise ValueError("layer_epochs and readout_from: method 'bp' trains every layer with the head in every "
                             "epoch; leave them unset")
        if self.readout_from < 0:
            raise ValueError(f"readout_from must be >= 0, got {self.readout_from}")
        df.check_settings(self.scale, self.margin, self.momentum)
        if self.loss != "distance":
            unused = [name for name, default in (("scale", 100.0), ("margin", 0.1), ("momentum", 0.9),
                                                 ("collaborate", False)) if getattr(self, name) != default]
            if unused:
                raise ValueError(f"{unused[0]}: only loss 'distance' uses it; give loss distance or leave it unset")

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ConvConfig":
        return cls(**d)

    def out_shape(self, layer: int = -1) -> tuple[int, int, int]:
        """(channels, height, width) of a layer's output (the last one's by default)."""
        layer = layer % len(self.channels)
        _, h, w = self.image_shape
        for _ in [p for p in self.pool if p <= layer]:
            h, w = h // 2, w // 2
        return self.channels[layer], h, w


@dataclass(frozen=True)
class ConvOptions:
    """Options of the "conv" variant (the channels per layer come from --hidden / ``hidden``)."""

    loss: str = field(default="cwc", metadata={
        "help": "cwc (softmax cross-entropy over the classes' channel-group goodness, CwComp) | pvn (classic FF "
                "softplus on the true class's goodness against the wrong classes', threshold 2) | ff (Hinton's FF: "
                "the label as a per-class pattern channel of the input, negatives with a wrong label, each "
                "layer's mean-square goodness against threshold 2; with cfse=false any channel counts) | distance "
                "(Distance-Forward: per-class centroids of each layer's normalised output, N-pair margin loss; "
                "with cfse=false any channel counts)"})
    cfse: bool = field(default=True, metadata={"help": "odd layers as grouped convolutions, one group per class"})
    pool: str = field(default="auto", metadata={
        "help": "layers (0-based) followed by a 2 x 2 max-pool, e.g. 1,3; auto: every odd layer (CwComp); none"})
    layer_epochs: str = field(default="", metadata={
        "help": "Interleaved Layer Training: layer i trains in epochs [0, n_i), e.g. 2,3,4,5 (CwComp's MNIST); "
                "empty: every layer every epoch"})
    readout_from: int = field(default=0, metadata={"help": "the epoch (0-based) the linear classifier starts"})
    method: str = field(default="ff", metadata={
        "help": "ff | bp: the same layers and linear head trained end to end by backprop (the baseline CNN)"})
    augment: str = field(default="auto", metadata={
        "help": "none | crop-flip (random crops of the 4-pixel zero-padded image, left-right flips; training "
                "only); auto: crop-flip for colour images (cifar10), none for the others"})
    scale: float = field(default=100.0, metadata={
        "help": "loss distance: multiplies the goodness differences in the N-pair margin loss and the fused "
                "softmax, in (0, 10000]"})
    margin: float = field(default=0.1, metadata={
        "help": "loss distance: how much closer (mean squared distance) a row must be to its class's centroid "
                "than to another's, in [0, 100]"})
    momentum: float = field(default=0.9, metadata={
        "help": "loss distance: the centroids' moving average, in [0, 1)"})
    collaborate: bool = field(default=False, metadata={
        "help": "loss distance: layer collaboration, each layer's loss on the goodness summed over all layers "
                "(the others' detached)"})


class ConvLayer(nn.Module):
    """conv 3 x 3 (grouped with ``groups``) -> ReLU -> [2 x 2 max-pool] -> batch norm (eps 1e-4); with
    ``batch_norm`` False (loss ff) the activities themselves (``forward``), normalised per image by the
    caller before the next layer."""

    def __init__(self, c_in: int, c_out: int, groups: int, pool: bool, batch_norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, groups=groups)
        self.norm = nn.BatchNorm2d(c_out, eps=1e-4) if batch_norm else None
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv(x))
        if self.pool:
            h = F.max_pool2d(h, 2)
        return self.norm(h) if self.norm is not None else h


@register_model_kind
class ConvNet(FFModel):
    """Conv layers trained each on its own channel-wise competitive loss, and a linear classifier."""

    kind = "conv"
    description = ("convolutional FF with channel-wise competition (CwComp, AAAI 2024): per-class channel groups, "
                   "softmax over their goodness, no negative data; or (loss ff) Hinton's FF with a per-class label "
                   "pattern as an input channel and wrong-label negatives; images as flat rows with an image shape")
    config_class = ConvConfig
    options_class = ConvOptions

    def __init__(self, config: ConvConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        k = config.num_classes
        self.label_planes = config.loss == "ff"  # the label enters as one pattern channel beside the image
        widths = [config.image_shape[0] + (1 if self.label_planes else 0), *config.channels]
        self.layers = nn.ModuleList(
            ConvLayer(widths[i], widths[i + 1],
                      k if config.cfse and i % 2 == 1 and widths[i] % k == 0 and widths[i + 1] % k == 0 else 1,
                      i in config.pool, batch_norm=not self.label_planes)
            for i in range(len(config.channels)))
        self.readout = nn.Linear(math.prod(config.out_shape()), k)
        for module in [*(layer.conv for layer in self.layers), self.readout]:
            seeded_uniform_([module.weight, module.bias], module.weight[0].numel(), generator)
        # per input channel, fitted once on the training rows (begin_fit) and kept in the checkpoint
        c = config.image_shape[0]
        if self.label_planes:  # one fixed N(0, 1) pattern per class, drawn from the seed's stream
            _, height, width = config.image_shape
            self.register_buffer("label_patterns", torch.randn(k, height, width, generator=generator))
        self.distance = config.loss == "distance" and config.method == "ff"
        if self.distance:  # one centroid per class of each layer's flattened output, and which classes have one
            for i, layer in enumerate(self.layers):
                layer.register_buffer("centroids", torch.zeros(k, math.prod(config.out_shape(i))))
                layer.register_buffer("seen", torch.zeros(k, dtype=torch.bool))
        self.register_buffer("mean", torch.zeros(1, c, 1, 1))
        self.register_buffer("std", torch.ones(1, c, 1, 1))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @classmethod
    def build_config(cls, data: DataSpec, hidden: tuple[int, ...], options: ConvOptions | None,
                     train: Any = None) -> ConvConfig:
        options = options or ConvOptions()
        if data.image_shape is None:
            raise ValueError("variant 'conv' trains on images: give a data set with an image shape (mnist, "
                             "fashion-mnist, digits, cifar10) or image_shape [C, H, W] with rows")
        shape = tuple(data.image_shape)
        shape = (1, *shape) if len(shape) == 2 else shape
        layer_epochs = _ints(options.layer_epochs, "layer_epochs") if options.layer_epochs else ()
        pool = {"auto": tuple(range(1, len(hidden), 2)), "none": ()}.get(options.pool.strip().lower())
        pool = _ints(options.pool, "pool") if pool is None else pool
        return ConvConfig(data.in_features, data.num_classes, shape, tuple(hidden), pool,
                          options.cfse, options.loss, layer_epochs, options.readout_from, options.method,
                          ("crop-flip" if shape[0] == 3 else "none") if options.augment == "auto" else options.augment,
                          options.scale, options.margin, options.momentum, options.collaborate)

    # ---- the computation ------------------------------------------------------------------

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C*H*W) rows (or (B, C, H, W) images) -> (B, C, H, W), standardised per channel."""
        shape = tuple(self.config.image_shape)
        if not ((x.ndim == 2 and x.shape[1] == self.in_features) or (x.ndim == 4 and tuple(x.shape[1:]) == shape)):
            raise ValueError(f"x must be rows of {self.in_features} values (an image {list(shape)} flattened, "
                             f"channels first) or images (N, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
        return (x.reshape(x.shape[0], *shape) - self.mean) / self.std

    def with_labels(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Loss ff: the images with one more channel, the pattern of each row's label in ``labels`` (B,),
        or the mean of the K patterns (the neutral label) for None."""
        b, _, height, width = images.shape
        patterns = self.label_patterns.to(images.dtype)
        if labels is None:
            plane = patterns.mean(dim=0).expand(b, height, width)
        else:
            plane = patterns[labels.to(patterns.device)]
        return torch.cat([images, plane[:, None]], dim=1)

    def ff_activities(self, h: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Loss ff: each layer's activities (ReLU, pooling) for labelled images ``h``; each layer sees the
        one below normalised per image and detached."""
        acts = []
        for layer in self.layers[: None if upto is None else upto + 1]:
            a = layer(rms_normalise(acts[-1]).detach() if acts else h)
            acts.append(a)
        return acts

    def label_goodness(self, x: torch.Tensor, layers: range) -> torch.Tensor:
        """Loss ff: (B, K), for every label the goodness summed over ``layers``, one pass of B x K images."""
        images = self.images(x)
        b, k = images.shape[0], self.num_classes
        labels = torch.arange(k, device=images.device).repeat(b)
        acts = self.ff_activities(self.with_labels(images.repeat_interleave(k, dim=0), labels), layers.stop - 1)
        return sum(image_goodness(acts[i]) for i in layers).view(b, k)

    def scored_layers(self) -> range:
        """Loss ff: the layers whose goodness prediction sums (Hinton's: all but the first, when there are more)."""
        n = len(self.layers)
        return range(1 if n > 1 else 0, n)

    def layer_outputs(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """Each layer's output (each layer's input detached: no gradient crosses layers; method bp keeps
        the whole graph, for end-to-end training). Loss ff: with the neutral label, each normalised per
        image (what the next layer and the readout see)."""
        if self.label_planes:
            return [rms_normalise(a) for a in self.ff_activities(self.with_labels(self.images(x), None), upto)]
        outs, h = [], self.images(x)
        local = self.config.method == "ff"
        for layer in self.layers[: None if upto is None else upto + 1]:
            h = layer(h.detach() if local else h)
            outs.append(h)
        return outs

    def centroid_goodness(self, i: int, h: torch.Tensor) -> torch.Tensor:
        """Loss distance: (B, K), minus the mean squared distance of layer i's output ``h``, flattened and
        normalised, to each class's centroid."""
        return df.class_goodness(rms_normalize(h.flatten(1)), self.layers[i].centroids)

    def distance_scores(self, x: torch.Tensor, method: str) -> torch.Tensor:
        """Loss distance: ``fused`` (each layer's softmax over scale x goodness, summed), ``summed`` (the goodness
        summed over layers) or ``layerN`` (the nearest centroid in layer N)."""
        if method.startswith("layer"):
            i = int(method[5:]) - 1
            return self.centroid_goodness(i, self.layer_outputs(x, i)[-1])
        goodness = [self.centroid_goodness(i, h) for i, h in enumerate(self.layer_outputs(x))]
        if method == "summed":
            return sum(goodness)
        return sum(F.softmax(self.config.scale * g, dim=1) for g in goodness)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.label_planes:
            return self.label_goodness(x, self.scored_layers())
        if self.distance:
            return self.distance_scores(x, "fused")
        return class_goodness(self.layer_outputs(x)[-1], self.num_classes)

    # ---- the protocol ---------------------------------------------------------------------

    def local_units(self) -> list[nn.Module]:
        if self.config.method == "bp":
            return [self]  # one unit: every layer learns from the head's loss
        return list(self.layers)  # the classifier learns beside them (readout_loss)

    def training_session(self, config: TrainConfig, device: torch.device) -> Session:
        return ConvSession(self, config, device)

    def prediction_methods(self) -> dict[str, str]:
        if self.config.method == "bp":
            return {"readout": "the softmax head trained end to end with the layers (backprop)"}
        if self.label_planes:
            scored = "layers 2 and up" if len(self.layers) > 1 else "the layer"
            methods = {"goodness": f"the label whose pattern gives the most goodness summed over {scored}",
                       "readout": "the linear classifier on the last layer's output for the neutral label"}
            for i in range(len(self.layers)):
                if self.scored_layers() != range(i, i + 1):  # not "goodness" again under another name
                    methods[f"layer{i + 1}"] = f"the label whose pattern gives layer {i + 1} the most goodness"
            return methods
        if self.distance:
            methods = {"fused": "each layer's softmax over scale x goodness (minus the mean squared distance to each "
                                "class's centroid), summed over layers",
                       "summed": "the class with the most goodness summed over layers",
                       "readout": "the linear classifier on the last layer's output"}
            for i in range(len(self.layers)):
                methods[f"layer{i + 1}"] = f"the nearest centroid in layer {i + 1}"
            return methods
        methods = {"goodness": "the class whose channel group has the most goodness in the last layer",
                   "readout": "the linear classifier on the last layer's output"}
        for i in range(len(self.layers) - 1):
            methods[f"layer{i + 1}"] = f"the class whose channel group has the most goodness in layer {i + 1}"
        return methods

    @contextlib.contextmanager
    def inference(self) -> Iterator[None]:
        """Batch norm on its running statistics, no graph; the previous mode back afterwards (predicting
        right after training must not normalise with, or update the statistics from, the rows it scores)."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was)

    def predict_scores(self, x: torch.Tensor, method: str | None = None) -> torch.Tensor:
        method = self.check_method(method)
        if self.training or torch.is_grad_enabled():
            with self.inference():
                return self.predict_scores(x, method)
        chunk = max(1, PREDICT_CHUNK // self.num_classes) if self.label_planes and method != "readout" else PREDICT_CHUNK
        if x.shape[0] > chunk:  # feature maps of a few hundred images stay in cache: ~2x faster on CPU
            return torch.cat([self.predict_scores(x[i : i + chunk], method) for i in range(0, x.shape[0], chunk)])
        if self.label_planes and method != "readout":
            layers = range(int(method[5:]) - 1, int(method[5:])) if method.startswith("layer") else self.scored_layers()
            return self.label_goodness(x, layers)
        if self.distance and method != "readout":
            return self.distance_scores(x, method)
        if method.startswith("layer"):
            index = int(method[5:]) - 1
            return class_goodness(self.layer_outputs(x, index)[-1], self.num_classes)
        last = self.layer_outputs(x)[-1]
        if method == "readout":
            return F.softmax(self.readout(last.flatten(1)), dim=1)
        return class_goodness(last, self.num_classes)

    def layer_goodness(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """Per layer: the goodness of the given labels' channel groups (the layer's best class if None) and
        its softmax probability among the classes. Loss ff: the goodness of the images with the given
        labels' patterns (the neutral label's if None) and p_positive = sigmoid(goodness - 2). Loss distance:
        minus the mean squared distance to the given labels' centroids (the nearest's if None) and that
        class's softmax probability over scale x goodness."""
        if self.config.method == "bp":
            raise ValueError("a conv model trained with method 'bp' has no goodness: its layers learn from the "
                             "head's loss")
        if self.training or torch.is_grad_enabled():
            with self.inference():
                return self.layer_goodness(x, labels)
        if self.label_planes:  # the given labels' planes, or the neutral label's
            acts = self.ff_activities(self.with_labels(self.images(x), labels))
            return [{"goodness": (g := image_goodness(a)), "p_positive": torch.sigmoid(g - FF_THRESHOLD)} for a in acts]
        out = []
        for i, h in enumerate(self.layer_outputs(x)):
            g = self.centroid_goodness(i, h) if self.distance else class_goodness(h, self.num_classes)
            chosen = g.argmax(dim=1) if labels is None else labels.to(g.device)
            rows = torch.arange(g.shape[0], device=g.device)
            logits = self.config.scale * g if self.distance else g
            out.append({"goodness": g[rows, chosen], "p_positive": F.softmax(logits, dim=1)[rows, chosen]})
        return out


class ConvSession(Session):
    """Every layer (in its window) and the classifier step on each mini-batch, each with its own optimizer."""

    def __init__(self, model: ConvNet, config: TrainConfig, device: torch.device) -> None:
        super().__init__(model, config, device)
        if config.schedule != "simultaneous":
            raise ValueError("schedule: conv trains its layers in epoch windows (option layer_epochs); leave "
                             "schedule 'simultaneous'")
        if config.negatives != "wrong_label":
            if model.config.loss == "ff":
                raise ValueError(f"negatives: variant 'conv' with loss 'ff' draws wrong labels uniformly "
                                 f"(wrong_label); got {config.negatives!r}")
            raise ValueError(f"negatives: variant 'conv' uses no negative data (its loss is over channel groups); "
                             f"leave --negatives unset, got {config.negatives!r}")
        opt = config.optimizer
        if model.config.method == "bp":  # one optimizer over every weight; the head at the layers' lr
            self.optimizers = [opt.build(list(model.parameters()))]
            self.base_lrs = [opt.lr]
            self.epoch = 0
            self.augment = seeds.generator(config.seed, "augment")
            return
        self.optimizers = [opt.build(list(layer.parameters())) for layer in model.layers]
        readout = config.readout_optimizer()
        self.optimizers.append(readout.build(list(model.readout.parameters())))
        self.base_lrs = [opt.lr] * len(model.layers) + [readout.lr]
        self.epoch = 0
        self.augment = seeds.generator(config.seed, "augment")  # crops and flips: their own seeded stream

    def phase_epochs(self, epochs: int) -> list[int]:
        longest = max(self.model.config.layer_epochs, default=0)
        if longest > epochs:
            raise ValueError(f"epochs: layer_epochs trains a layer for {longest} epochs; give --epochs >= {longest}")
        if self.model.config.readout_from >= epochs:
            raise ValueError(f"readout_from: the classifier would start after the last epoch ({epochs}); give "
                             f"readout_from < epochs")
        return [epochs]

    def begin_fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        model = self.model
        if not bool(model.fitted):  # standardise each channel with the training rows' statistics, once
            c = model.config.image_shape[0]
            pixels = x_train.reshape(x_train.shape[0], c, -1)
            for j in range(c):
                var, mean = torch.var_mean(pixels[:, j])
                model.mean[0, j] = mean
                model.std[0, j] = var.sqrt().clamp_min(1e-6)
            model.fitted.fill_(True)

    def begin_epoch(self, epoch: int, units: range, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        self.epoch = epoch

    def set_lr_factor(self, factor: float, units: range) -> None:
        # method bp has one optimizer, the layers' (and the head's): it always follows the schedule
        follows = self.config.readout_cooldown or self.model.config.method == "bp"
        scale_learning_rates(self.optimizers, self.base_lrs, factor, follows)

    def training(self, i: int) -> bool:
        """Whether layer i trains in this epoch (its Interleaved Layer Training window)."""
        windows = self.model.config.layer_epochs
        return not windows or self.epoch < windows[i]

    def step(self, batch: Batch, generator: torch.Generator, units: range, stats: torch.Tensor) -> None:
        model, cfg = self.model, self.model.config
        y = batch.y
        x = batch.x
        if cfg.augment == "crop-flip":
            x = crop_flip(x.reshape(x.shape[0], *cfg.image_shape), 4, self.augment).reshape(x.shape[0], -1)
        if cfg.method == "bp":
            loss = F.cross_entropy(model.readout(model.layer_outputs(x)[-1].flatten(1)), y)
            self.optimizers[0].zero_grad(set_to_none=True)
            loss.backward()
            self.optimizers[0].step()
            stats[0, 0] += loss.detach()
            return
        if cfg.loss == "ff":
            self.ff_step(x, y, generator, stats)
            return
        if cfg.loss == "distance":
            h = self.distance_step(x, y, stats)
        else:
            h = self.groups_step(x, y, stats)
        if self.epoch >= cfg.readout_from:
            loss = F.cross_entropy(model.readout(h.detach().flatten(1)), y)
            optimizer = self.optimizers[-1]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            stats[-1, 0] += loss.detach()

    def groups_step(self, x: torch.Tensor, y: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """Losses cwc and pvn: each layer in its window on its channel groups' goodness; the last output."""
        model, cfg = self.model, self.model.config
        k = model.num_classes
        h = model.images(x)
        for i, layer in enumerate(model.layers):
            if not self.training(i):
                with torch.no_grad():  # frozen: infers, batch norm on this batch's statistics (as CwComp)
                    h = layer(h)
                continue
            out = layer(h.detach())
            g = class_goodness(out, k)
            loss = cwc_loss(g, y) if cfg.loss == "cwc" else pvn_loss(g, y)
            optimizer = self.optimizers[i]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                true = g.gather(1, y[:, None]).squeeze(1)
                stats[i, 0] += loss.detach()
                stats[i, 1] += true.sum()
                stats[i, 2] += ((g.sum(dim=1) - true) / (k - 1)).sum()
            h = out.detach()
        return h

    def distance_step(self, x: torch.Tensor, y: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """Loss distance: each layer in its window moves its centroids toward this batch's class means and
        steps on the N-pair margin loss (with collaborate: on the goodness summed over every layer, the
        others' detached); frozen layers infer (and count, detached, for collaborate). The last output."""
        model, cfg = self.model, self.model.config
        h = model.images(x)
        goodness: list[torch.Tensor | None] = []
        trained = []
        for i, layer in enumerate(model.layers):
            if not self.training(i):
                with torch.no_grad():
                    h = layer(h)
                    goodness.append(model.centroid_goodness(i, h) if cfg.collaborate else None)
                continue
            out = layer(h.detach())
            z = rms_normalize(out.flatten(1))
            df.update_centroids(layer.centroids, layer.seen, z.detach(), y, cfg.momentum)
            goodness.append(df.class_goodness(z, layer.centroids))
            trained.append(i)
            h = out.detach()
        if trained:
            df.step_layers(self.optimizers, goodness, trained, y, cfg, stats)
        return h

    def ff_step(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, stats: torch.Tensor) -> None:
        """Loss ff: one positive (true label) and one negative (uniform wrong label) pass, each layer in its
        window trained on its own goodness; then the readout on the neutral-label pass."""
        model = self.model
        images = model.images(x)
        b = images.shape[0]
        y_neg = wrong_labels(y, model.num_classes, generator)
        h = torch.cat([model.with_labels(images, y), model.with_labels(images, y_neg)])
        for i, layer in enumerate(model.layers):
            if i > 0:
                h = rms_normalise(h).detach()
            if not self.training(i):
                with torch.no_grad():
                    h = layer(h)
                continue
            h = layer(h)
            g = image_goodness(h)
            loss = ff_loss(g[:b], g[b:])
            optimizer = self.optimizers[i]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                stats[i, 0] += loss.detach()
                stats[i, 1] += g[:b].detach().sum()
                stats[i, 2] += g[b:].detach().sum()
        if self.epoch >= model.config.readout_from:
            with torch.no_grad():
                features = model.layer_outputs(x)[-1].flatten(1)
            loss = F.cross_entropy(model.readout(features), y)
            optimizer = self.optimizers[-1]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            stats[-1, 0] += loss.detach()

    def extra_loss_name(self, units: range) -> str | None:
        return "readout_loss" if self.model.config.method == "ff" else None

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [o.state_dict() for o in self.optimizers], "augment": self.augment.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for optimizer, saved in zip(self.optimizers, state["optimizers"]):
            optimizer.load_state_dict(saved)
        self.augment.set_state(state["augment"])
