"""Color learning: one FF layer, RGB -> hidden, trained locally to tell positive colors from negative ones.

This is the seed card's music-topos `ff-color-learning` ("make-ff-layer 3 16", goodness of the
positive and negative colors, local update), written on the engine. No MCP in here.

- Input features: a color's RGB channels as floats in [0, 1], shape (B, 3) (FEATURES = "rgb").
  The layer RMS-normalises its input (norm "rms", Hinton 2022 section 2), so brightness is removed
  and what is left is the direction of (r, g, b), i.e. hue and saturation. Warm versus cool is a
  hue distinction, so it survives; light versus dark does not, and this model cannot learn it.
- Goodness is the engine's `sum_squares` with threshold = the layer width; p(positive) is
  sigmoid(goodness - threshold) (Hinton 2022, section 2).
- Every random choice comes from one seed through `derive_seed(seed, purpose)` (SplitMix64):
  "init" for the weights (engine `build_network`), "shuffle" for the mini-batch order and "colors"
  for the color stream that default negatives are drawn from. One seed, one set of weights.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ff_mcp.engine import FFNetwork, NetworkConfig, OptimizerConfig, Session, Trainer, TrainConfig, build_network
from ff_mcp.gf3 import (
    GAY_SEED,
    MAX_COUNT,
    color_at,
    color_to_unit,
    derive_seed,
    derive_torch_seed,
    hue_of,
    parse_color,
    rgb_to_hex,
    trit_from_hue,
)

FEATURES = "rgb"  # the only feature mode: unit RGB; stored in a color model's metadata as "features"
MODEL_KIND = "color"  # extra["kind"] of a color model in the registry
DEFAULT_EPOCHS = 100  # passes over the colors; warm vs cool, 100 + 100 colors: >= 98.75 % held-out, 10 seeds
DEFAULT_LR = 0.1  # Adam; 0.03 needs 300 epochs for 98.25 % on the same 10 seeds (a sweep, 2026-11-27)
DEFAULT_BATCH_SIZE = 256  # colors of each side per step; 100 + 100 colors is one full batch
MIN_NEGATIVES = 16  # default negatives: as many as positives, but at least this many
MAX_COLORS = MAX_COUNT  # most colors on one side
MAX_EPOCHS = 10_000
MAX_HIDDEN = 1024
MAX_SWATCH_COLORS = 256  # most colors one swatch picture shows
MAX_STREAM_SCAN = 1_000_000  # most stream colors looked at when drawing default negatives


@dataclass
class ColorLearnResult:
    """What one run of ff_color_learning returns.

    goodness_pos / goodness_neg: the trained layer's goodness (sum of squared activities) of each
    positive / negative color, in input order. margin = mean(goodness_pos) - mean(goodness_neg).
    accuracy: fraction of the training colors on the right side of p(positive) = 0.5 (positives
    above, negatives at or below): a training-set figure; see `held_out_evaluation` for held-out colors.
    """

    network: FFNetwork
    goodness_pos: list[float]
    goodness_neg: list[float]
    margin: float
    accuracy: float
    negatives_used: list[str]  # "#RRGGBB" of every negative, given or drawn
    negatives_drawn: bool  # True when the negatives came from the color stream
    train_config: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        return {"margin": self.margin, "accuracy": self.accuracy,
                "positives": len(self.goodness_pos), "negatives": len(self.goodness_neg)}

    def model_extra(self) -> dict[str, Any]:
        """The metadata a saved color model carries (kind, feature mode, the negatives used)."""
        return {"kind": MODEL_KIND, "features": FEATURES, "negatives": self.negatives_used,
                "negatives_drawn": self.negatives_drawn}


def parse_color_list(field_name: str, values: object, *, max_len: int = MAX_COLORS) -> torch.Tensor:
    """Return (B, 3) float32 unit RGB for a non-empty list of colors; errors name the field and position.

    Accepts what `ff_mcp.gf3.parse_color` accepts: "#RRGGBB" / "RRGGBB", [r, g, b] ints 0-255, or
    [r, g, b] with a float, read as 0-1 fractions.
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise ValueError(f"{field_name} must be a list of colors ('#RRGGBB' or [r, g, b]), got {values!r}")
    if not 1 <= len(values) <= max_len:
        raise ValueError(f"{field_name} must hold 1 to {max_len} colors, got {len(values)}")
    rows = []
    for position, value in enumerate(values):
        try:
            rows.append(color_to_unit(value))
        except ValueError as error:
            raise ValueError(f"{field_name}[{position}]: {error}") from None
    return torch.tensor(rows, dtype=torch.float32)


def color_network_config(hidden: int = 16) -> NetworkConfig:
    """The engine config of a color model: 3 inputs, one hidden layer of `hidden` units, no labels."""
    _check_int("hidden", hidden, 1, MAX_HIDDEN)
    return NetworkConfig(in_features=3, num_classes=2, hidden=(hidden,), label_mode="none", readout=False)


def draw_negatives(positives: torch.Tensor, seed: int, count: int) -> list[str]:
    """Return `count` hex colors from the stream derive_seed(seed, "colors"), of trits opposite the positives.

    positives: (B, 3) unit RGB. Their majority trit t decides (ties: the trit seen first): for t = +1
    the stream's -1 colors, for -1 its +1 colors, for 0 its colors of either other trit; taken in
    stream order from index 0, skipping any color equal to a positive.
    """
    _check_int("count", count, 1, MAX_COLORS)
    stream_seed = derive_seed(seed, "colors")
    rgbs = [tuple(round(c * 255) for c in row) for row in positives.tolist()]
    trits = [trit_from_hue(hue_of(*rgb)) for rgb in rgbs]
    majority = Counter(trits).most_common(1)[0][0]
    wanted = {1: {-1}, -1: {1}, 0: {-1, 1}}[majority]
    taken_out = {rgb_to_hex(rgb) for rgb in rgbs}
    drawn = []
    for index in range(MAX_STREAM_SCAN):
        color = color_at(stream_seed, index)
        if color.trit in wanted and color.hex not in taken_out:
            drawn.append(color.hex)
            if len(drawn) == count:
                return drawn
    raise ValueError(f"could not draw {count} negatives from the first {MAX_STREAM_SCAN} stream colors")


def ff_color_learning(
    positive: object,
    negative: object | None = None,
    *,
    seed: int = GAY_SEED,
    hidden: int = 16,
    epochs: int = DEFAULT_EPOCHS,
    lr: float = DEFAULT_LR,
    batch_size: int = DEFAULT_BATCH_SIZE,
    negatives_count: int | None = None,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] | None = None,
) -> ColorLearnResult:
    """Train one FF layer (3 -> hidden) on positive versus negative colors and return it with its goodness.

    positive, negative: lists of colors (see `parse_color_list`). negative=None draws
    `negatives_count` (default: as many as positives, at least 16) from the color stream
    (`draw_negatives`). Each epoch shuffles both sides with a generator seeded from
    derive_seed(seed, "shuffle") and steps once per mini-batch of up to `batch_size` colors of each.
    ``should_stop`` is polled once per mini-batch (the server's cancellation and time limit).
    """
    _check_int("seed", seed, 0, 2**63 - 1)
    _check_int("epochs", epochs, 1, MAX_EPOCHS)
    _check_int("batch_size", batch_size, 1, MAX_COLORS)
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0.0 < lr <= 10.0:
        raise ValueError(f"lr must be a number in (0, 10], got {lr!r}")
    config = color_network_config(hidden)
    x_pos = parse_color_list("positive", positive)
    if negative is None:
        count = max(MIN_NEGATIVES, x_pos.shape[0]) if negatives_count is None else negatives_count
        _check_int("negatives_count", count, 1, MAX_COLORS)
        negatives_used = draw_negatives(x_pos, seed, count)
        x_neg = parse_color_list("negative", negatives_used)
    else:
        if negatives_count is not None:
            raise ValueError("negatives_count only applies when negative is not given; give one or the other")
        x_neg = parse_color_list("negative", negative)
        negatives_used = [rgb_to_hex(parse_color(value)) for value in negative]  # type: ignore[union-attr]

    network = build_network(config, seed, device)
    x_pos, x_neg = x_pos.to(network.device), x_neg.to(network.device)
    _train_layer(network, x_pos, x_neg, epochs, lr, batch_size, seed, should_stop)

    g_pos, p_pos = _goodness_and_p(network, x_pos)
    g_neg, p_neg = _goodness_and_p(network, x_neg)
    correct = int(((p_pos > 0.5).sum() + (p_neg <= 0.5).sum()).item())
    accuracy = correct / (x_pos.shape[0] + x_neg.shape[0])
    train_config = {"seed": seed, "epochs": epochs, "lr": lr, "batch_size": batch_size, "optimizer": "adam",
                    "features": FEATURES}
    return ColorLearnResult(
        network=network,
        goodness_pos=g_pos.tolist(),
        goodness_neg=g_neg.tolist(),
        margin=(g_pos.mean() - g_neg.mean()).item(),
        accuracy=accuracy,
        negatives_used=negatives_used,
        negatives_drawn=negative is None,
        train_config=train_config,
    )


def score_colors(network: FFNetwork, colors: object, *, field_name: str = "colors") -> tuple[list[float], list[float]]:
    """Return (p_positive, goodness), one float each per color, for a trained color network.

    p_positive = sigmoid(goodness - threshold) of the network's single layer; goodness is its sum
    of squared activities. Colors as in `parse_color_list`.
    """
    _check_color_network(network)
    x = parse_color_list(field_name, colors).to(network.device)
    goodness, p_positive = _goodness_and_p(network, x)
    return p_positive.tolist(), goodness.tolist()


def stream_colors_of_trit(seed: int, trit: int, count: int, skip: int = 0) -> list[str]:
    """Return the hex of `count` colors of `trit` from the stream `seed`, after skipping the first `skip` of them."""
    found: list[str] = []
    index = 0
    while len(found) < skip + count:
        color = color_at(seed, index)
        if color.trit == trit:
            found.append(color.hex)
        index += 1
    return found[skip:]


def held_out_evaluation(
    seed: int = GAY_SEED, train_per_class: int = 100, test_per_class: int = 200, **options: Any
) -> dict[str, Any]:
    """Warm (+1) versus cool (-1): train on the first colors of each trit of stream `seed`, test on the next ones.

    Returns {"accuracy": held-out accuracy, "p_warm": [...], "p_cool": [...], "result": ColorLearnResult};
    `options` go to ff_color_learning (the training seed is `seed` too).
    """
    warm = stream_colors_of_trit(seed, 1, train_per_class + test_per_class)
    cool = stream_colors_of_trit(seed, -1, train_per_class + test_per_class)
    result = ff_color_learning(warm[:train_per_class], cool[:train_per_class], seed=seed, **options)
    p_warm, _ = score_colors(result.network, warm[train_per_class:])
    p_cool, _ = score_colors(result.network, cool[train_per_class:])
    correct = sum(p > 0.5 for p in p_warm) + sum(p <= 0.5 for p in p_cool)
    return {"accuracy": correct / (2 * test_per_class), "p_warm": p_warm, "p_cool": p_cool, "result": result}


def swatch_png(colors: object, scores: list[float], *, block: int = 48, columns: int = 16) -> bytes:
    """Return a PNG of the colors as square blocks, highest score first, each labelled with its score.

    colors: as in `parse_color_list`, one per score. Blocks run left to right, `columns` per row.
    """
    from PIL import Image, ImageDraw  # Pillow is only needed for pictures

    parse_color_list("colors", colors)  # the checks and error texts of every color input
    rows_rgb = [parse_color(value) for value in colors]  # type: ignore[attr-defined]
    if len(rows_rgb) != len(scores):
        raise ValueError(f"need one score per color, got {len(rows_rgb)} colors and {len(scores)} scores")
    if not 1 <= len(scores) <= MAX_SWATCH_COLORS:
        raise ValueError(f"a swatch shows 1 to {MAX_SWATCH_COLORS} colors, got {len(scores)}")
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties keep input order
    columns = min(columns, len(order))
    height = math.ceil(len(order) / columns) * block
    image = Image.new("RGB", (columns * block, height), "white")
    draw = ImageDraw.Draw(image)
    for slot, i in enumerate(order):
        x, y = (slot % columns) * block, (slot // columns) * block
        rgb = rows_rgb[i]
        draw.rectangle([x, y, x + block - 1, y + block - 1], fill=rgb)
        dark = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] < 128  # ITU-R BT.601 luma
        draw.text((x + 4, y + block - 14), f"{scores[i]:.2f}", fill="white" if dark else "black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# ---- internals --------------------------------------------------------------------------------


class ColorSession(Session):
    """Color learning's training procedure, run by the engine's Trainer: one FF layer, Adam, and
    mini-batches that take a part of the positive colors and a part of the negative ones each step
    (positives first), both sides shuffled by derive_torch_seed(seed, "shuffle") (the stream the
    recorded examples in skill.md were trained with). Rows are the positives then the negatives;
    y is 1 for a positive color, 0 for a negative one."""

    def __init__(self, network: FFNetwork, config: TrainConfig, device: torch.device) -> None:
        super().__init__(network, config, device)
        self.layer = network.layers[0]
        self.optimizer = config.optimizer.build(list(self.layer.parameters()))
        self.positives = 0
        self.generator: torch.Generator | None = None

    @property
    def units(self) -> int:
        return 1

    def begin_fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        self.positives = int((y_train == 1).sum())
        self.generator = torch.Generator().manual_seed(derive_torch_seed(self.config.seed, "shuffle"))

    def batches(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device):
        pos, neg = self.positives, n - self.positives
        steps = math.ceil(max(pos, neg) / batch_size)  # both sides split into `steps` parts
        order_pos = torch.randperm(pos, generator=self.generator).to(device)
        order_neg = torch.randperm(neg, generator=self.generator).to(device) + pos
        for part_pos, part_neg in zip(order_pos.tensor_split(steps), order_neg.tensor_split(steps)):
            yield torch.cat([part_pos, part_neg])

    def step(self, batch, generator, units, stats) -> None:
        n_pos = int((batch.y == 1).sum())  # the batch holds its positives first
        loss, _, _ = self.layer.local_loss(self.layer(batch.x), n_pos)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        stats[0, 0] += loss.detach()


def _train_layer(network: FFNetwork, x_pos: torch.Tensor, x_neg: torch.Tensor, epochs: int, lr: float,
                 batch_size: int, seed: int, should_stop: Callable[[], bool] | None = None) -> None:
    """x_pos: (P, 3), x_neg: (N, 3): the Trainer's loop with ``ColorSession`` (no cooldown, no evaluation)."""
    config = TrainConfig(epochs=epochs, batch_size=batch_size, optimizer=OptimizerConfig(name="adam", lr=lr),
                         cooldown=False, seed=seed, device=str(x_pos.device), train_eval_rows=0)
    x = torch.cat([x_pos, x_neg])
    y = torch.cat([torch.ones(x_pos.shape[0], dtype=torch.long), torch.zeros(x_neg.shape[0], dtype=torch.long)])
    Trainer(network, config, session=ColorSession, should_stop=should_stop).fit(x, y.to(x.device))
    network.eval()


@torch.no_grad()
def _goodness_and_p(network: FFNetwork, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (B, 3) -> (goodness (B,), p_positive (B,)) of the single layer."""
    layer = network.layers[0]
    h = layer(x)
    return layer.goodness(h), torch.sigmoid(layer.logits(h))


def _check_color_network(network: object) -> None:
    config = getattr(network, "config", None)
    if not isinstance(network, FFNetwork) or config.in_features != 3 or len(config.hidden) != 1 \
            or config.label_mode != "none":
        raise ValueError("not a color model: a color model has 3 inputs, one hidden layer and no label embedding")


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value
