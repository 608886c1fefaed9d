"""The color tools over stdio, through `python -m ff_mcp serve` as a real subprocess."""

from __future__ import annotations

import base64
import io
import sys

import pytest
from mcp import Client, StdioServerParameters
from PIL import Image

from ff_mcp.colorlearn import ff_color_learning, score_colors

pytestmark = pytest.mark.anyio

WARM = ["#D82626", "#E67F86", "#FF8000"]


async def test_color_tools_work_over_stdio_with_the_image_on_the_wire(tmp_path):
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "ff_mcp", "serve", "--data-dir", str(tmp_path / "home")])
    async with Client(params) as client:
        learned = await client.call_tool("ff_color_learn", {"name": "warm", "positive": WARM, "seed": 3, "epochs": 30})
        scored = await client.call_tool("ff_color_score",
                                        {"model": "warm", "colors": ["#2060F0", "#FF4000"], "image": True})
        bad = await client.call_tool("color_seed", {"seed": -1})
        triad = await client.call_tool("gf3_triad", {"trits": [0, 1]})
    direct = ff_color_learning(WARM, seed=3, epochs=30)
    assert learned.structured_content["goodness_pos"] == direct.goodness_pos
    scores, goodness = score_colors(direct.network, ["#2060F0", "#FF4000"])
    assert scored.structured_content == {"model": "warm", "scores": scores, "goodness": goodness}
    image = Image.open(io.BytesIO(base64.b64decode(scored.content[1].data)))
    assert image.format == "PNG" and image.getpixel((2, 2)) == (255, 64, 0)  # the warm color comes first
    assert bad.is_error and "seed" in bad.content[0].text and "Traceback" not in bad.content[0].text
    assert triad.structured_content["completing_trit"] == -1
