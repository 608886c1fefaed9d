"""The ff_* tools through the SDK's in-process Client, in legacy and auto (2026-07-28) modes."""

from __future__ import annotations

import json

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from ff_mcp.engine import model_kind_names
from ff_mcp.server import Limits, ServerConfig, build_server

from conftest import blobs, save_untrained

pytestmark = pytest.mark.anyio

TOOLS = {"ff_train", "ff_job_status", "ff_job_cancel", "ff_predict", "ff_goodness", "ff_models", "ff_model_info",
         "ff_model_delete", "ff_datasets", "ff_variants"}


async def train(client, name, data, **kw):
    x, y = data
    args = {"name": name, "x": x, "y": y, "hidden": [8, 8], "epochs": 3, "batch_size": 10, "lr": 0.01,
            "wait_seconds": 30, **kw}
    res = await client.call_tool("ff_train", args)
    assert not res.is_error, res.content[0].text
    return res.structured_content


def error_text(res) -> str:
    assert res.is_error, res.structured_content
    return res.content[0].text


async def test_every_tool_has_annotations_descriptions_and_an_output_schema(server, mode):
    async with Client(server, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert TOOLS <= set(tools)
    for name in TOOLS:
        tool = tools[name]
        assert tool.annotations is not None and tool.annotations.read_only_hint is not None, name
        assert tool.description and tool.output_schema["type"] == "object", name
        for prop, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{name}.{prop} has no description"
    assert tools["ff_predict"].annotations.read_only_hint is True
    assert tools["ff_model_delete"].annotations.destructive_hint is True
    train_schema = tools["ff_train"].input_schema["properties"]

    def bound(schema: dict, key: str):  # an optional argument's bound sits in its non-null anyOf branch
        return next(s[key] for s in [schema, *schema.get("anyOf", [])] if key in s)

    assert bound(train_schema["epochs"], "maximum") == 50  # the configured limit reaches the schema
    assert bound(train_schema["hidden"], "maxItems") == 3
    # the registered kinds when the server was built (a const for one kind), or null for the data's default
    variant = next(s for s in train_schema["variant"]["anyOf"] if s.get("type") != "null")
    assert variant.get("enum", [variant.get("const")]) == model_kind_names()


async def test_train_waits_and_returns_final_metrics_with_progress(server, mode, tiny_data):
    progress = []

    async def on_progress(value, total, message):
        progress.append((value, total, message))

    x, y = tiny_data
    async with Client(server, mode=mode) as client:
        res = await client.call_tool(
            "ff_train", {"name": "blobs", "x": x, "y": y, "hidden": [8, 8], "epochs": 10, "batch_size": 8,
                         "lr": 0.01, "seed": 1, "wait_seconds": 30}, progress_callback=on_progress)
    out = res.structured_content
    assert out["state"] == "done" and out["model"] == "blobs" and out["epoch"] == 10
    assert out["job_id"].startswith("job-")
    assert out["metrics"]["test_accuracy"] >= 0.75
    assert {"loss", "train_accuracy", "train_seconds", "epoch"} <= set(out["metrics"])
    assert progress, "a client with a progress token gets notifications"
    values = [p[0] for p in progress]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    assert progress[-1][1] == 10 and "done" in progress[-1][2]


async def test_train_without_wait_returns_a_job_to_poll(server, mode, tiny_data):
    x, y = tiny_data
    async with Client(server, mode=mode) as client:
        res = await client.call_tool("ff_train", {"name": "polled", "x": x, "y": y, "hidden": [8], "epochs": 5})
        job = res.structured_content
        assert job["state"] in ("queued", "running", "done")
        for _ in range(200):
            status = (await client.call_tool("ff_job_status", {"job_id": job["job_id"]})).structured_content
            if status["state"] == "done":
                break
            await anyio.sleep(0.05)
        assert status["state"] == "done" and status["epoch"] == status["epochs"] == 5
        assert status["error"] is None and status["metrics"]["epoch"] == 5


async def test_predict_returns_one_label_and_one_score_per_class_per_row(server, mode, tiny_data):
    async with Client(server, mode=mode) as client:
        await train(client, "p", tiny_data, epochs=10, batch_size=8, seed=1)
        x, y = blobs(rows=10, seed=1)
        out = (await client.call_tool("ff_predict", {"model": "p", "x": x})).structured_content
    assert len(out["labels"]) == 10 and all(len(row) == 2 for row in out["scores"])
    assert out["method"] == "goodness"
    assert sum(a == b for a, b in zip(out["labels"], y)) >= 8


async def test_goodness_gives_one_value_per_row_per_layer(server, mode, tiny_data):
    async with Client(server, mode=mode) as client:
        await train(client, "g", tiny_data, hidden=[8, 6, 4])
        x, _ = blobs(rows=3, seed=2)
        neutral = (await client.call_tool("ff_goodness", {"model": "g", "x": x})).structured_content
        labelled = (await client.call_tool("ff_goodness", {"model": "g", "x": x, "labels": [0, 1, 0]})).structured_content
    for out in (neutral, labelled):
        assert len(out["layers"]) == 3
        for layer in out["layers"]:
            assert len(layer["goodness"]) == len(layer["p_positive"]) == 3
            assert all(0.0 <= p <= 1.0 for p in layer["p_positive"])
    assert neutral != labelled


async def test_models_info_resource_and_delete(server, mode, tiny_data):
    async with Client(server, mode=mode) as client:
        await train(client, "m.1", tiny_data)
        listed = (await client.call_tool("ff_models", {})).structured_content["models"]
        assert [m["name"] for m in listed] == ["m.1"]
        info = (await client.call_tool("ff_model_info", {"model": "m.1"})).structured_content
        assert info["config"]["hidden"] == [8, 8] and info["config"]["in_features"] == 4
        assert info["bytes"] > 0 and info["created"].endswith("Z") and info["state"] == "done"
        assert info["metrics"]["epoch"] == 3 and "test_accuracy" in info["metrics"]
        card = json.loads((await client.read_resource("ff://models/m.1")).contents[0].text)
        assert card["name"] == "m.1" and card["config"] == info["config"]
        deleted = (await client.call_tool("ff_model_delete", {"model": "m.1"})).structured_content
        assert deleted == {"model": "m.1", "deleted": True}
        assert (await client.call_tool("ff_models", {})).structured_content["models"] == []
        assert "does not exist" in error_text(await client.call_tool("ff_model_delete", {"model": "m.1"}))
        with pytest.raises(MCPError):
            await client.read_resource("ff://models/m.1")


async def test_datasets_lists_digits_as_available(server, mode):
    async with Client(server, mode=mode) as client:
        out = (await client.call_tool("ff_datasets", {})).structured_content
    by_name = {d["name"]: d for d in out["datasets"]}
    assert {"mnist", "fashion-mnist", "digits", "mnist1d"} <= set(by_name)
    assert by_name["digits"]["available"] and by_name["digits"]["in_features"] == 64


async def test_train_on_a_named_dataset(home):
    server = build_server(ServerConfig(home=home))
    async with Client(server, mode="auto") as client:
        out = (await client.call_tool("ff_train", {"name": "dig", "dataset": "digits", "hidden": [32], "epochs": 2,
                                                   "batch_size": 100, "wait_seconds": 60})).structured_content
        info = (await client.call_tool("ff_model_info", {"model": "dig"})).structured_content
    assert out["state"] == "done" and info["dataset"] == "digits" and info["config"]["in_features"] == 64


async def test_cancel_stops_a_running_job_and_keeps_its_weights(home, mode):
    server = build_server(ServerConfig(home=home))
    async with Client(server, mode=mode) as client:
        job = (await client.call_tool("ff_train", {"name": "long", "dataset": "digits", "hidden": [64],
                                                   "epochs": 1000, "batch_size": 10})).structured_content
        for _ in range(400):
            status = (await client.call_tool("ff_job_status", {"job_id": job["job_id"]})).structured_content
            if status["state"] == "running" and status["step"] > 0:
                break
            await anyio.sleep(0.02)
        out = (await client.call_tool("ff_job_cancel", {"job_id": job["job_id"]})).structured_content
        assert out["state"] == "cancelled" and out["epoch"] < 1000
        info = (await client.call_tool("ff_model_info", {"model": "long"})).structured_content
        assert info["state"] == "cancelled"
        pred = await client.call_tool("ff_predict", {"model": "long", "x": [[0.0] * 64]})
        assert not pred.is_error


async def test_one_job_per_model_and_a_queue_behind_the_cap(server, mode):
    x, y = blobs(rows=200, features=16)
    async with Client(server, mode=mode) as client:
        first = (await client.call_tool("ff_train", {"name": "a", "x": x, "y": y, "hidden": [64, 64],
                                                     "epochs": 50, "batch_size": 1})).structured_content
        again = await client.call_tool("ff_train", {"name": "a", "x": x, "y": y, "hidden": [8], "epochs": 1})
        assert "already has job" in error_text(again)
        second = (await client.call_tool("ff_train", {"name": "b", "x": x, "y": y, "hidden": [8],
                                                      "epochs": 1})).structured_content
        assert second["state"] == "queued"  # max_concurrent_jobs=1
        await client.call_tool("ff_job_cancel", {"job_id": first["job_id"]})
        for _ in range(200):
            status = (await client.call_tool("ff_job_status", {"job_id": second["job_id"]})).structured_content
            if status["state"] == "done":
                break
            await anyio.sleep(0.05)
        assert status["state"] == "done"


async def running_and_queued(client) -> tuple[dict, dict]:
    """A long job on model "a" (running: max_concurrent_jobs=1) and a short one on "q" queued behind it."""
    x, y = blobs(rows=200, features=16)
    first = (await client.call_tool("ff_train", {"name": "a", "x": x, "y": y, "hidden": [64, 64],
                                                 "epochs": 50, "batch_size": 1})).structured_content
    queued = (await client.call_tool("ff_train", {"name": "q", "x": x, "y": y, "hidden": [8],
                                                  "epochs": 1})).structured_content
    return first, queued


async def test_cancel_a_queued_job_ends_it_at_once(server, mode):
    async with Client(server, mode=mode) as client:
        first, queued = await running_and_queued(client)
        out = (await client.call_tool("ff_job_cancel", {"job_id": queued["job_id"]})).structured_content
        assert out["state"] == "cancelled" and out["epoch"] == 0
        await client.call_tool("ff_job_cancel", {"job_id": first["job_id"]})
        assert "does not exist" in error_text(await client.call_tool("ff_model_info", {"model": "q"}))


async def test_a_queued_then_cancelled_job_frees_its_model_name(server, mode):
    async with Client(server, mode=mode) as client:
        first, queued = await running_and_queued(client)
        await client.call_tool("ff_job_cancel", {"job_id": queued["job_id"]})
        color = await client.call_tool("ff_color_learn", {"name": "a", "positive": ["#FF0000"], "epochs": 1})
        assert color.is_error and "model 'a' has job" in error_text(color)
        again = await client.call_tool("ff_color_learn", {"name": "q", "positive": ["#FF0000"], "epochs": 1})
        assert not again.is_error, error_text(again)  # the cancelled job's name is free again
        await client.call_tool("ff_job_cancel", {"job_id": first["job_id"]})


async def test_the_greedy_schedules_epochs_count_against_max_epochs(server):
    x, y = blobs(rows=40, features=4)
    async with Client(server) as client:  # max_epochs=50
        res = await client.call_tool("ff_train", {"name": "g", "x": x, "y": y, "hidden": [8, 8, 8], "epochs": 20,
                                                  "schedule": "greedy"})
        assert res.is_error
        assert ("schedule 'greedy' trains each of the 3 layers for 20 epochs, 60 in all; max_epochs is 50, "
                "so give epochs <= 16") in error_text(res)
        ok = (await client.call_tool("ff_train", {"name": "g", "x": x, "y": y, "hidden": [8, 8, 8], "epochs": 16,
                                                  "schedule": "greedy", "wait_seconds": 60})).structured_content
        assert ok["state"] == "done" and ok["epochs"] == 48


X4 = [[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("ff_predict", {"model": "nope", "x": X4}, "model 'nope' does not exist"),
        ("ff_job_status", {"job_id": "job-123"}, "job_id 'job-123' is not a job"),
        ("ff_job_cancel", {"job_id": "job-123"}, "job_id 'job-123' is not a job"),
        ("ff_predict", {"model": "known", "x": [[0.0] * 3]}, "x rows must have 4 features, got 3"),
        ("ff_predict", {"model": "known", "x": [[0.0] * 4, [0.0] * 3]}, "x is ragged: row 1 has 3 values"),
        ("ff_predict", {"model": "known", "x": [[0.0, 1e39, 0.0, 0.0]]}, "x contains NaN or inf at row 0, column 1"),
        ("ff_predict", {"model": "known", "x": [[float("nan")] * 4]}, "x[0][0]"),  # JSON has no NaN: it arrives as null
        ("ff_predict", {"model": "known", "x": [[0.0] * 4] * 201}, "x"),  # max_rows=200 in the schema
        ("ff_predict", {"model": "..", "x": X4}, "model must be 1-64 characters"),
        ("ff_predict", {"model": "a/b", "x": X4}, "model"),
        ("ff_goodness", {"model": "known", "x": X4, "labels": [0]}, "labels has 1 entries but x has 2 rows"),
        ("ff_goodness", {"model": "known", "x": X4, "labels": [0, 7]}, "labels[1] is 7; labels must be in [0, 2)"),
        ("ff_train", {"name": "t", "x": X4, "y": [0, 1, 1]}, "y has 3 labels but x has 2 rows"),
        ("ff_train", {"name": "t", "x": X4}, "x and y must be given together"),
        ("ff_train", {"name": "t"}, "give dataset"),
        ("ff_train", {"name": "t", "dataset": "digits", "x": X4 * 2, "y": [0, 1, 0, 1]}, "not both"),
        ("ff_train", {"name": "t", "dataset": "imagenet"}, "unknown data set 'imagenet'"),
        ("ff_train", {"name": "t", "x": [[-1e39] * 4] * 2, "y": [0, 1]}, "x contains NaN or inf"),
        ("ff_train", {"name": "t", "x": X4 * 2, "y": [0, 1, 0, 1], "epochs": 51}, "epochs"),
        ("ff_train", {"name": "t", "x": X4 * 2, "y": [0, 1, 0, 1], "epochs": 0}, "epochs"),
        ("ff_train", {"name": "t", "x": X4 * 2, "y": [0, 1, 0, 1], "hidden": [65]}, "hidden"),
        ("ff_train", {"name": "t", "x": X4 * 2, "y": [0, 1, 0, 1], "hidden": [4, 4, 4, 4]}, "hidden"),
        ("ff_train", {"name": "t", "x": X4 * 2, "y": [0, 1, 0, 1], "hidden": []}, "hidden"),
        ("ff_train", {"name": "..", "x": X4 * 2, "y": [0, 1, 0, 1]}, "name must be 1-64 characters"),
        ("ff_train", {"name": "../../etc/x", "x": X4 * 2, "y": [0, 1, 0, 1]}, "name"),
        ("ff_train", {"name": "t", "x": X4 * 11, "y": list(range(11)) * 2},
         "y has 11 distinct labels; at most 10 classes are allowed (max_classes)"),
        ("ff_train", {"name": "t", "x": [[0.0] * 17] * 2, "y": [0, 1]}, "x"),  # max_features=16
        ("ff_train", {"name": "t", "x": X4 * 2, "y": [0, 1, 0, 1], "device": "tpu"}, "device"),
        ("ff_train", {"name": "t", "x": X4 * 2, "y": [0, 1, 0, 1], "lr": -1}, "lr"),
        ("ff_model_info", {"model": "ghost"}, "model 'ghost' does not exist"),
        ("ff_train", {"name": "t", "x": X4 * 2, "y": [0, 1, 0, 1], "negatives": "hybrid"}, "needs image data"),
        ("ff_train", {"name": "t", "x": X4, "y": [0, 0]}, "y holds one class only (0)"),
    ],
)
async def test_client_mistakes_are_tool_errors_naming_the_field(server, home, tool, args, expected):
    save_untrained(home, "known", in_features=4, num_classes=2)
    async with Client(server, mode="legacy") as client:
        text = error_text(await client.call_tool(tool, args))
        assert expected in text
        assert "Traceback" not in text
        # the server still answers
        assert not (await client.call_tool("ff_models", {})).is_error


async def test_resources_list_and_skill(server, mode):
    async with Client(server, mode=mode) as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert any(t.uri_template == "ff://models/{name}" for t in templates)
        resources = (await client.list_resources()).resources
        assert any(str(r.uri) == "ff://skill" for r in resources)


async def test_skill_resource_reads_skill_md_or_says_where_it_looked(server, monkeypatch, tmp_path):
    from ff_mcp.server import app

    monkeypatch.setattr(app, "SKILL_PATHS", (tmp_path / "missing.md",))
    async with Client(server, mode="legacy") as client:
        with pytest.raises(MCPError) as err:
            await client.read_resource("ff://skill")
        assert "skill.md is not installed" in str(err.value)
        (tmp_path / "missing.md").write_text("# skill\nuse ff_train")
        text = (await client.read_resource("ff://skill")).contents[0].text
    assert text.startswith("# skill")


async def test_wall_time_limit_stops_a_job_and_says_why(home):
    limits = Limits(max_job_seconds=0.5)
    server = build_server(ServerConfig(home=home, limits=limits))
    async with Client(server, mode="legacy") as client:
        out = (await client.call_tool("ff_train", {"name": "slow", "dataset": "digits", "hidden": [64],
                                                   "epochs": 1000, "batch_size": 10,
                                                   "wait_seconds": 30})).structured_content
    assert out["state"] == "cancelled" and "max_job_seconds" in out["error"]


async def test_job_status_carries_one_history_record_per_epoch(server):
    x, y = blobs(rows=40, features=4)
    async with Client(server) as client:
        job = (await client.call_tool("ff_train", {"name": "h", "x": x, "y": y, "hidden": [8], "epochs": 3,
                                                   "wait_seconds": 60})).structured_content
        status = (await client.call_tool("ff_job_status", {"job_id": job["job_id"]})).structured_content
    history = status["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert {"loss", "layer_loss", "train_accuracy", "test_accuracy", "seconds", "samples_per_second"} <= set(history[0])
    assert history[-1]["test_accuracy"] == pytest.approx(status["metrics"]["test_accuracy"], abs=1e-6)
