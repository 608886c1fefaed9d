"""Figures of a run: the history and goodness panels, `ff-mcp train --plot`, `ff-mcp plot` and ff_plot."""

from __future__ import annotations

import base64

import pytest
from mcp import Client

from ff_mcp.cli import main as cli_main
from ff_mcp.plot import png_size, training_figure
from ff_mcp.server import ServerConfig, build_server

pytestmark = pytest.mark.anyio

HISTORY = [{"epoch": e, "epochs": 3, "loss": 1.0 / e, "layer_loss": [1.0 / e, 2.0 / e], "train_accuracy": 0.5 + e / 10,
            "test_accuracy": 0.4 + e / 10} for e in (1, 2, 3)]


def test_the_figure_is_a_png_of_the_stated_size():
    assert png_size(training_figure(HISTORY)) == (800, 400)
    goodness = [([3.0, 4.0, 5.0], [1.0, 2.0, 2.5]), ([6.0, 7.0], [1.0, 1.5])]
    assert png_size(training_figure(HISTORY, goodness, "a title")) == (1200, 400)
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + b"\0" * 30)


def test_train_plot_and_plot_model_draw_the_run(tmp_path, capsys):
    model, first, second = tmp_path / "m.safetensors", tmp_path / "train.png", tmp_path / "later.png"
    assert cli_main(["train", "--dataset", "digits", "--hidden", "32,32", "--epochs", "3", "--device", "cpu",
                     "--quiet", "--out", str(model), "--plot", str(first)]) == 0
    assert f"plot              {first}" in capsys.readouterr().out
    assert png_size(first.read_bytes()) == (1200, 400)  # with the goodness panel: digits is here
    assert cli_main(["plot", str(model), "--out", str(second)]) == 0
    assert png_size(second.read_bytes()) == (1200, 400)


async def test_ff_plot_returns_the_figure_as_png_image_content(tmp_path):
    async with Client(build_server(ServerConfig(home=tmp_path))) as client:
        await client.call_tool("ff_train", {"name": "d", "dataset": "digits", "hidden": [32], "epochs": 2,
                                            "wait_seconds": 120})
        result = await client.call_tool("ff_plot", {"model": "d"})
        assert not result.is_error, result.content[0].text
        image = next(c for c in result.content if c.type == "image")
        png = base64.b64decode(image.data)
        assert image.mime_type == "image/png" and png_size(png) == (1200, 400)
        assert result.structured_content == {"model": "d", "epochs": 2, "goodness": True, "width": 1200,
                                             "height": 400}
        missing = await client.call_tool("ff_plot", {"model": "nope"})
        assert missing.is_error and "model 'nope' does not exist" in missing.content[0].text


async def test_ff_plot_of_a_model_trained_on_rows_named_like_a_data_set_draws_no_foreign_goodness(tmp_path):
    x = [[float((i + j) % 7) for j in range(64)] for i in range(40)]
    y = [i % 2 for i in range(40)]
    async with Client(build_server(ServerConfig(home=tmp_path))) as client:
        await client.call_tool("ff_train", {"name": "digits", "x": x, "y": y, "hidden": [8], "epochs": 2,
                                            "wait_seconds": 60})
        result = await client.call_tool("ff_plot", {"model": "digits"})
    assert not result.is_error, result.content[0].text
    assert result.structured_content["goodness"] is False and result.structured_content["width"] == 800
