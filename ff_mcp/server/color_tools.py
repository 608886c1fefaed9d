"""The color and GF(3) tools: ff_color_learn, ff_color_score, color_seed and gf3_triad.

Thin: each tool validates, calls ff_mcp.colorlearn or ff_mcp.gf3, and shapes a pydantic result.
Bounds sit in the schemas and again in code (defence in depth); every client error is a ToolError.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, Field, StrictFloat, StrictInt

from ff_mcp import colorlearn, tools
from ff_mcp.gf3 import GAY_SEED, MASK64, MAX_COUNT
from ff_mcp.server.executor import CallToken
from ff_mcp.server.errors import client_errors
from ff_mcp.server.registry import NAME_PATTERN, validate_name

MAX_COLOR_TEXT = 32  # longest color string accepted ("#RRGGBB" needs 7)
MAX_STATEMENT = 2000  # longest triad statement

# A color on the wire: "#RRGGBB" / "RRGGBB", or [r, g, b] of ints 0-255, or of floats 0-1 (any float -> all 0-1).
ColorValue = (
    Annotated[str, Field(max_length=MAX_COLOR_TEXT)]
    | Annotated[list[StrictInt | StrictFloat], Field(min_length=3, max_length=3)]
)
COLOR_HELP = "'#RRGGBB', or [r, g, b] of ints 0-255, or [r, g, b] of floats 0-1"
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

# ---- parameters ---------------------------------------------------------------------------------

ModelName = Annotated[str, Field(pattern=NAME_PATTERN, description="model name: 1-64 of A-Z a-z 0-9 _ . -")]
PositiveColors = Annotated[
    list[ColorValue], Field(min_length=1, max_length=MAX_COUNT, description=f"colors to score high: {COLOR_HELP}")
]
NegativeColors = Annotated[
    list[ColorValue] | None,
    Field(min_length=1, max_length=MAX_COUNT,
          description="colors to score low; omit to draw them from the color stream (the trits opposite the"
                      " positives' majority trit)"),
]
ScoredColors = Annotated[
    list[ColorValue], Field(min_length=1, max_length=MAX_COUNT, description=f"colors to score: {COLOR_HELP}")
]
LearnSeed = Annotated[int, Field(ge=0, le=2**63 - 1, description="one seed for weights, shuffles and drawn negatives")]
Hidden = Annotated[int, Field(ge=1, le=colorlearn.MAX_HIDDEN, description="units in the FF layer (3 -> hidden)")]
Epochs = Annotated[int, Field(ge=1, le=colorlearn.MAX_EPOCHS, description="passes over the colors")]
SwatchFlag = Annotated[
    bool,
    Field(description=f"also return a PNG swatch of the colors sorted by score (at most"
                      f" {colorlearn.MAX_SWATCH_COLORS} colors)"),
]
StreamSeed = Annotated[int, Field(ge=0, le=MASK64, description="stream seed (Gay.jl's canonical seed is 1069)")]
StreamStart = Annotated[int, Field(ge=0, le=MASK64, description="index of the first color")]
StreamCount = Annotated[int, Field(ge=0, le=MAX_COUNT, description=f"how many colors, at most {MAX_COUNT}")]
Trits = Annotated[
    list[int] | None,
    Field(min_length=2, max_length=3, description="2 or 3 trits, each -1, 0 or 1 (give this or statement)"),
]
Statement = Annotated[
    str | None,
    Field(min_length=1, max_length=MAX_STATEMENT,
          description="a triad statement such as 'a (-1) ⊗ b (0) ⊗ c (+1) = 0 ✓' (give this or trits)"),
]


# ---- results ------------------------------------------------------------------------------------


class ColorModelResult(BaseModel):
    """What ff_color_learn returns; the model is saved in the registry under `model`."""

    model: str
    uri: str = Field(description="the ff://models/{name} resource of the saved model")
    goodness_pos: list[float] = Field(description="goodness (sum of squared activities) of each positive color")
    goodness_neg: list[float] = Field(description="goodness of each negative color")
    margin: float = Field(description="mean goodness of the positives minus mean goodness of the negatives")
    accuracy: float = Field(description="training colors on the right side of p(positive) = 0.5")
    negatives: list[str] = Field(description="the negative colors used, as '#RRGGBB'")
    negatives_drawn: bool = Field(description="true when the negatives were drawn from the color stream")


class ColorScores(BaseModel):
    """p(positive) and goodness of each color, in input order."""

    model: str
    scores: list[float] = Field(description="p(positive) = sigmoid(goodness - threshold), one per color")
    goodness: list[float] = Field(description="goodness (sum of squared activities), one per color")


class StreamColor(BaseModel):
    index: int
    hex: str = Field(description="'#RRGGBB'")
    hue: float = Field(description="HSL hue in degrees, [0, 360)")
    trit: int = Field(description="+1 for hue in [0, 60) or [300, 360), 0 for [60, 180), -1 for [180, 300)")


class ColorStream(BaseModel):
    """Colors start, start + 1, ... of the deterministic stream of `seed`."""

    seed: int
    start: int
    colors: list[StreamColor]


class TriadResult(BaseModel):
    """GF(3) balance of a few trits or of a triad statement."""

    balanced: bool = Field(description="the trits sum to 0 mod 3")
    sum_mod3: int = Field(description="sum of the trits mod 3: 0, 1 or 2")
    completing_trit: int = Field(
        description="the trit that, appended to the trits, makes them balanced (0 when they already are)"
    )
    trits: list[int]
    names: list[str] | None = Field(None, description="the statement's skill names (statements only)")
    claim_correct: bool | None = Field(
        None, description="whether the statement's '= N' and ✓/✗ are right; null when it claims nothing"
    )
    canonical: str | None = Field(None, description="the statement rewritten with its true sum (statements only)")


# ---- registration -------------------------------------------------------------------------------


def register_color_tools(server: MCPServer) -> None:
    """Add ff_color_learn, ff_color_score, color_seed and gf3_triad to `server`."""

    @server.tool(
        name="ff_color_learn",
        title="Learn a color preference",
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
        ),
    )
    async def ff_color_learn(
        name: Annotated[ModelName, Field(description="model name to save under (replaces a color model so named)")],
        positive: PositiveColors,
        ctx: Context,
        negative: NegativeColors = None,
        seed: LearnSeed = GAY_SEED,
        hidden: Hidden = 16,
        epochs: Epochs = colorlearn.DEFAULT_EPOCHS,
    ) -> ColorModelResult:
        """Train one FF layer (RGB -> hidden): high goodness for positive colors, low for negative; save it."""
        state = ctx.request_context.lifespan_context
        with client_errors():
            limits = state.limits
            _check_at_most("positive", len(positive), limits.max_rows, "colors")
            if negative is not None:
                _check_at_most("negative", len(negative), limits.max_rows, "colors")
            _check_at_most("hidden", hidden, limits.max_hidden, "units")
            _check_at_most("epochs", epochs, limits.max_epochs, "epochs")
            validate_name(name, "name")
            _refuse_to_replace_other_kind(state.registry, name)
            busy = state.jobs.active_for(name)
            if busy is not None:
                raise ToolError(f"model {name!r} has job {busy.job_id} ({busy.state}); wait for it or cancel it first")

            def work(token: CallToken):
                with state.registry.writing(name, "an ff_color_learn call"):
                    result = colorlearn.ff_color_learning(positive, negative, seed=seed, hidden=hidden, epochs=epochs,
                                                          should_stop=token.should_stop)
                    token.check()  # a cancelled or timed-out call saves nothing
                    metrics = {**result.metrics, "state": "done"}  # the model card's state, as for ff_train models
                    card = state.registry.save(name, result.network, result.train_config, metrics,
                                               result.model_extra())
                return result, card

            result, card = await state.executor.run(work)
        return ColorModelResult(
            model=name,
            uri=card.uri,
            goodness_pos=result.goodness_pos,
            goodness_neg=result.goodness_neg,
            margin=result.margin,
            accuracy=result.accuracy,
            negatives=result.negatives_used,
            negatives_drawn=result.negatives_drawn,
        )

    @server.tool(
        name="ff_color_score",
        title="Score colors with a color model",
        annotations=READ_ONLY,
    )
    async def ff_color_score(
        model: Annotated[ModelName, Field(description="a model made by ff_color_learn")],
        colors: ScoredColors,
        ctx: Context,
        image: SwatchFlag = False,
    ) -> Annotated[CallToolResult, ColorScores]:
        """Return p(positive) and goodness of each color under a color model, optionally with a PNG swatch by score."""
        state = ctx.request_context.lifespan_context
        with client_errors():
            _check_at_most("colors", len(colors), state.limits.max_rows, "colors")
            if image:
                _check_at_most("colors", len(colors), colorlearn.MAX_SWATCH_COLORS, "colors when image is true")
            checkpoint = state.registry.load(validate_name(model, "model"))
            _check_color_model(model, checkpoint.extra)
            def score(token: CallToken):
                token.check()
                return colorlearn.score_colors(checkpoint.network, colors)

            scores, goodness = await state.executor.run(score)
            result = ColorScores(model=model, scores=scores, goodness=goodness)
            content: list[Any] = [TextContent(type="text", text=result.model_dump_json())]
            if image:
                png = colorlearn.swatch_png(colors, scores)
                encoded = base64.b64encode(png).decode("ascii")
                content.append(ImageContent(type="image", data=encoded, mime_type="image/png"))
        return CallToolResult(content=content, structured_content=result.model_dump(mode="json"))

    @server.tool(
        name="color_seed",
        title="Deterministic colors",
        annotations=READ_ONLY,
    )
    def color_seed(seed: StreamSeed = GAY_SEED, start: StreamStart = 0, count: StreamCount = 12) -> ColorStream:
        """Return colors start .. start+count-1 of Gay.jl's hash_color stream: index, hex, HSL hue and trit."""
        with client_errors():
            _check_range("count", count, 0, MAX_COUNT)
            return ColorStream(**tools.color_seed(seed, start, count))

    @server.tool(
        name="gf3_triad",
        title="GF(3) triad balance",
        annotations=READ_ONLY,
    )
    def gf3_triad(trits: Trits = None, statement: Statement = None) -> TriadResult:
        """Check GF(3) balance (sum 0 mod 3) of 2-3 trits or a triad statement, and give the trit that completes it.

        completing_trit is the trit that, appended to the given trits, makes them balanced (0 if they are).
        """
        with client_errors():
            return TriadResult(**tools.gf3_triad(trits, statement))


# ---- helpers ------------------------------------------------------------------------------------


def _check_at_most(field: str, value: int, limit: int | float, unit: str) -> None:
    if value > limit:
        raise ToolError(f"{field}: at most {int(limit)} {unit} allowed by this server's limits, got {value}")


def _check_range(field: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ToolError(f"{field} must be in [{low}, {high}], got {value}")


_refuse_to_replace_other_kind = tools.refuse_to_replace_other_kind  # MCP-free, shared with the bridge
_check_color_model = tools.check_color_model
