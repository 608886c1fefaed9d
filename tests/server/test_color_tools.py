"""ff_color_learn, ff_color_score, color_seed and gf3_triad through the SDK's in-process Client."""

from __future__ import annotations

import base64
import io
import json

import pytest
from mcp import Client
from PIL import Image

from ff_mcp.colorlearn import ff_color_learning, score_colors
from ff_mcp.engine import NetworkConfig, build_network
from ff_mcp.gf3 import colors as stream_colors
from ff_mcp.server import Limits, ModelRegistry, ServerConfig, build_server

pytestmark = pytest.mark.anyio

WARM = ["#D82626", "#E67F86", [255, 128, 0], [0.75, 0.2, 0.3]]
COOL = ["#2626D8", "#55B0E6", [48, 80, 192], [0.4, 0.25, 0.95]]
COLOR_TOOLS = {"ff_color_learn", "ff_color_score", "color_seed", "gf3_triad"}


@pytest.fixture
def server(home):
    return build_server(ServerConfig(home=home, limits=Limits(max_rows=300, max_hidden=64, max_epochs=200)))


async def call(client, tool, arguments):
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return result


async def error_text(client, tool, arguments) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return result.content[0].text


async def test_color_tools_are_listed_with_schemas_and_annotations(server, mode):
    async with Client(server, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert COLOR_TOOLS <= set(tools)
    for name in COLOR_TOOLS:
        assert tools[name].output_schema is not None and tools[name].description
    assert tools["ff_color_learn"].annotations.read_only_hint is False
    for name in ("ff_color_score", "color_seed", "gf3_triad"):
        assert tools[name].annotations.read_only_hint is True and tools[name].annotations.idempotent_hint is True
    assert tools["color_seed"].input_schema["properties"]["count"]["maximum"] == 10_000
    assert set(tools["ff_color_score"].output_schema["properties"]) >= {"scores", "goodness"}


async def test_color_seed_returns_the_gf3_stream(server, mode):
    async with Client(server, mode=mode) as client:
        result = await call(client, "color_seed", {"seed": 1069, "start": 5, "count": 4})
    expected = [{"index": c.index, "hex": c.hex, "hue": c.hue, "trit": c.trit} for c in stream_colors(1069, 5, 4)]
    assert result.structured_content["colors"] == expected


async def test_color_seed_defaults_are_seed_1069_start_0_count_12(server):
    async with Client(server) as client:
        result = await call(client, "color_seed", {})
    assert [c["index"] for c in result.structured_content["colors"]] == list(range(12))
    assert result.structured_content["colors"][1]["hex"] == "#55B0E6"  # Gay.jl hash_color(1069, 1)


async def test_color_seed_count_over_10000_is_an_error_naming_count(server):
    async with Client(server) as client:
        text = await error_text(client, "color_seed", {"count": 10_001})
        assert "count" in text and "10000" in text
        text = await error_text(client, "color_seed", {"start": 2**64 - 1, "count": 2})
        assert "start + count must be <= 2**64" in text


async def test_learn_then_score_matches_the_library_bit_for_bit(server, mode):
    arguments = {"name": "warm", "positive": WARM, "negative": COOL, "seed": 5, "hidden": 8, "epochs": 40}
    async with Client(server, mode=mode) as client:
        learned = (await call(client, "ff_color_learn", arguments)).structured_content
        scored = (await call(client, "ff_color_score", {"model": "warm", "colors": WARM + COOL})).structured_content
        again = (await call(client, "ff_color_learn", arguments)).structured_content
    direct = ff_color_learning(WARM, COOL, seed=5, hidden=8, epochs=40)
    assert learned["goodness_pos"] == direct.goodness_pos and learned["goodness_neg"] == direct.goodness_neg
    assert learned["margin"] == direct.margin and learned["accuracy"] == direct.accuracy == 1.0
    assert learned["model"] == "warm" and learned["uri"] == "ff://models/warm"
    assert learned["negatives"] == ["#2626D8", "#55B0E6", "#3050C0", "#6640F2"] and not learned["negatives_drawn"]
    assert again == learned
    scores, goodness = score_colors(direct.network, WARM + COOL)
    assert scored == {"model": "warm", "scores": scores, "goodness": goodness}


async def test_learn_without_negatives_draws_them_from_the_stream(server):
    async with Client(server) as client:
        learned = (await call(client, "ff_color_learn", {"name": "w", "positive": WARM, "epochs": 30})).structured_content
    assert learned["negatives_drawn"] and len(learned["negatives"]) == len(learned["goodness_neg"]) == 16


async def test_score_returns_a_png_swatch_when_asked(server, mode):
    async with Client(server, mode=mode) as client:
        await call(client, "ff_color_learn", {"name": "warm", "positive": WARM, "negative": COOL, "epochs": 30})
        plain = await call(client, "ff_color_score", {"model": "warm", "colors": COOL + WARM})
        pictured = await call(client, "ff_color_score", {"model": "warm", "colors": COOL + WARM, "image": True})
    assert [block.type for block in plain.content] == ["text"]
    assert [block.type for block in pictured.content] == ["text", "image"]
    assert pictured.structured_content == plain.structured_content
    assert json.loads(pictured.content[0].text) == pictured.structured_content
    image = Image.open(io.BytesIO(base64.b64decode(pictured.content[1].data)))
    assert pictured.content[1].mime_type == "image/png" and image.format == "PNG"
    assert image.getpixel((2, 2))[0] > image.getpixel((2, 2))[2]  # a warm color scores highest


async def test_bad_colors_name_the_field_and_position(server):
    async with Client(server) as client:
        text = await error_text(client, "ff_color_learn", {"name": "m", "positive": ["#D82626", "#GGHHII"]})
        assert "positive[1]:" in text and "'#GGHHII'" in text
        text = await error_text(client, "ff_color_learn", {"name": "m", "positive": WARM, "negative": [[1, 2, 300]]})
        assert "negative[0]:" in text and "[1, 2, 300]" in text
        await call(client, "ff_color_learn", {"name": "m", "positive": WARM, "epochs": 5})
        text = await error_text(client, "ff_color_score", {"model": "m", "colors": ["#FFF"]})
        assert "colors[0]:" in text and "'#FFF'" in text


async def test_limits_of_the_server_bound_colors_and_epochs(server):
    async with Client(server) as client:
        text = await error_text(client, "ff_color_learn", {"name": "m", "positive": ["#D82626"] * 301})
        assert "positive: at most 300 colors" in text
        text = await error_text(client, "ff_color_learn", {"name": "m", "positive": WARM, "epochs": 201})
        assert "epochs: at most 200 epochs" in text
        text = await error_text(client, "ff_color_learn", {"name": "../x", "positive": WARM})
        assert "name" in text


async def test_score_refuses_unknown_and_non_color_models(server, home):
    plain = build_network(NetworkConfig(in_features=4, num_classes=2, hidden=(8,)), 0)
    ModelRegistry(home).save("plain", plain, {}, {}, {"dataset": "blobs"})
    async with Client(server) as client:
        text = await error_text(client, "ff_color_score", {"model": "nope", "colors": WARM})
        assert "model 'nope' does not exist" in text
        text = await error_text(client, "ff_color_score", {"model": "plain", "colors": WARM})
        assert "model 'plain' is not a color model" in text and "ff_color_learn" in text
        text = await error_text(client, "ff_color_learn", {"name": "plain", "positive": WARM})
        assert "model 'plain' exists and is not a color model" in text


async def test_score_image_is_limited_to_256_colors(server):
    async with Client(server) as client:
        await call(client, "ff_color_learn", {"name": "m", "positive": WARM, "epochs": 5})
        text = await error_text(client, "ff_color_score", {"model": "m", "colors": ["#102030"] * 257, "image": True})
        assert "at most 256 colors when image is true" in text


@pytest.mark.parametrize(
    ("trits", "expected"),
    [
        ([1, -1], {"balanced": True, "sum_mod3": 0, "completing_trit": 0}),
        ([1, 1], {"balanced": False, "sum_mod3": 2, "completing_trit": 1}),
        ([-1, 0], {"balanced": False, "sum_mod3": 2, "completing_trit": 1}),
        ([-1, 0, 1], {"balanced": True, "sum_mod3": 0, "completing_trit": 0}),
        ([1, 1, 1], {"balanced": True, "sum_mod3": 0, "completing_trit": 0}),
        ([-1, 1, 1], {"balanced": False, "sum_mod3": 1, "completing_trit": -1}),
    ],
)
async def test_gf3_triad_checks_and_completes_trits(server, trits, expected):
    async with Client(server) as client:
        result = (await call(client, "gf3_triad", {"trits": trits})).structured_content
    assert {k: result[k] for k in expected} == expected and result["trits"] == trits


async def test_gf3_triad_reads_the_seed_cards_statements(server):
    statement = "persistent-homology (-1) ⊗ open-games (0) ⊗ forward-forward-learning (+1) = 0 ✓"
    unworld = "proofgeneral-narya (-1) ⊗ unworld (+1) ⊗ forward-forward-learning (+1) = 0 ✓"
    async with Client(server) as client:
        card = (await call(client, "gf3_triad", {"statement": statement})).structured_content
        own = (await call(client, "gf3_triad", {"statement": unworld})).structured_content
    assert card["balanced"] and card["claim_correct"] and card["trits"] == [-1, 0, 1]
    assert card["names"] == ["persistent-homology", "open-games", "forward-forward-learning"]
    assert not own["balanced"] and own["claim_correct"] is False and own["completing_trit"] == -1
    assert own["canonical"].endswith("= +1 ✗")


async def test_gf3_triad_errors_say_what_to_give(server):
    async with Client(server) as client:
        assert "give trits or statement, not both" in await error_text(
            client, "gf3_triad", {"trits": [1, 0], "statement": "a (1) ⊗ b (0)"})
        assert "got neither" in await error_text(client, "gf3_triad", {})
        assert "trits[1] must be -1, 0 or +1, got 2" in await error_text(client, "gf3_triad", {"trits": [1, 2]})
        assert "trits" in await error_text(client, "gf3_triad", {"trits": [1]})
        text = await error_text(client, "gf3_triad", {"statement": "a (2) ⊗ b (0)"})
        assert "a trit must be -1, 0 or +1" in text


async def test_skill_resource_serves_skill_md(server):
    from pathlib import Path

    async with Client(server) as client:
        contents = (await client.read_resource("ff://skill")).contents
    text = (Path(__file__).resolve().parents[2] / "skill.md").read_text(encoding="utf-8")
    assert contents[0].text == text
