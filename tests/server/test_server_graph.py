"""Graphs over MCP: ff_train with x, y and edges (variant gnn), ff_predict and ff_goodness per node,
and edge-list errors that name the field."""

from __future__ import annotations

import random

import pytest
from mcp import Client

from ff_mcp.data.graphs import locate_planetoid

pytestmark = pytest.mark.anyio


def two_communities(nodes: int = 40, seed: int = 0):
    """Two dense communities joined by one edge; features hint the community; labels: the community,
    -1 for every fourth node."""
    rng = random.Random(seed)
    half = nodes // 2
    x = [[(1.0 if (i < half) == (j == 0) else 0.0) + rng.uniform(0, 0.6) for j in range(4)] for i in range(nodes)]
    edges = [[i, j] for i in range(nodes) for j in range(i + 1, nodes)
             if (i < half) == (j < half) and rng.random() < 0.3] + [[0, half]]
    y = [(0 if i < half else 1) if i % 4 else -1 for i in range(nodes)]
    return x, y, edges


def error_text(res) -> str:
    assert res.is_error, res.structured_content
    return res.content[0].text


async def test_train_predict_and_goodness_on_a_graph(server, mode):
    x, y, edges = two_communities()
    async with Client(server, mode=mode) as client:
        res = await client.call_tool("ff_train", {"name": "g", "x": x, "y": y, "edges": edges, "hidden": [8, 8],
                                                  "epochs": 30, "lr": 0.02, "wait_seconds": 60,
                                                  "options": {"patience": 50}})
        assert not res.is_error, res.content[0].text
        job = res.structured_content
        assert job["state"] == "done", job
        assert job["metrics"]["val_accuracy"] is not None
        info = (await client.call_tool("ff_model_info", {"model": "g"})).structured_content
        assert info["kind"] == "gnn" and info["methods"] == ["fused"]
        # the training graph without labels: the model's own training labels anchor its class nodes
        pred = await client.call_tool("ff_predict", {"model": "g", "x": x, "edges": edges})
        assert not pred.is_error, pred.content[0].text
        labels = pred.structured_content["labels"]
        truth = [0 if i < 20 else 1 for i in range(40)]
        assert len(labels) == 40 and sum(a == b for a, b in zip(labels, truth)) >= 36
        good = await client.call_tool("ff_goodness", {"model": "g", "x": x, "edges": edges})
        layers = good.structured_content["layers"]
        assert len(layers) == 2 and all(len(layer["goodness"]) == 40 for layer in layers)
        # errors name the field
        text = error_text(await client.call_tool("ff_predict", {"model": "g", "x": x}))
        assert "ff_predict: edges: this model is a graph model" in text
        text = error_text(await client.call_tool("ff_predict", {"model": "g", "x": x, "edges": [[0, 40]]}))
        assert "edges[0] = [0, 40]: node ids must be in [0, 40)" in text
        text = error_text(await client.call_tool("ff_predict", {"model": "g", "x": x, "edges": edges, "y": [0] * 39}))
        assert "y has 39 labels but x has 40 nodes" in text


async def test_graph_input_errors_name_the_field(server, mode):
    x, y, edges = two_communities()
    async with Client(server, mode=mode) as client:
        cases = [
            ({"edges": [[0, 99]]}, "edges[0] = [0, 99]: node ids must be in [0, 40)"),
            ({"edges": [[0, 1, 2]]}, "edges[0]"),
            ({"y": y[:-1]}, "y has 39 labels but x has 40 nodes"),
            ({"y": [-2] + y[1:]}, "y[0] is -2"),
            ({"split": ["train"] * 39}, "split must give one of"),
            ({"x": [[float("nan")] * 4] + x[1:]}, "x[0]"),
        ]
        for change, expected in cases:
            args = {"name": "bad", "x": x, "y": y, "edges": edges, "epochs": 2, **change}
            text = error_text(await client.call_tool("ff_train", args))
            assert expected in text and "\n" not in text, (change, text)
        text = error_text(await client.call_tool("ff_train", {"name": "bad", "x": x, "y": y, "split": ["train"] * 40}))
        assert "split: only a graph" in text
        text = error_text(await client.call_tool("ff_train", {"name": "bad", "x": x, "y": y, "edges": edges,
                                                              "variant": "ff"}))
        assert "variant 'ff' trains on rows" in text and "gnn" in text
        models = (await client.call_tool("ff_models", {})).structured_content["models"]
        assert models == []  # nothing was written


async def test_datasets_list_the_graphs(server):
    async with Client(server) as client:
        entries = {d["name"]: d for d in (await client.call_tool("ff_datasets", {})).structured_content["datasets"]}
    for name, nodes in (("cora", 2708), ("citeseer", 3327)):
        assert entries[name]["data_kind"] == "graph" and entries[name]["nodes"] == nodes
        assert entries[name]["available"] == (locate_planetoid(name) is not None)
    assert entries["mnist"]["data_kind"] == "rows"
