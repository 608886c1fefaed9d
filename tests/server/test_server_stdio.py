"""`ff-mcp serve` over stdio as a real subprocess: the SDK's stdio client, a raw JSON-RPC client,
stdout hygiene, and a restart after SIGKILL mid-job."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest
from mcp import Client, StdioServerParameters

from conftest import RawStdioServer, blobs

pytestmark = pytest.mark.anyio


async def test_sdk_stdio_client_trains_predicts_and_reads_goodness(home):
    x, y = blobs()
    params = StdioServerParameters(command=sys.executable, args=["-m", "ff_mcp", "serve", "--data-dir", str(home)])
    progress = []

    async def on_progress(value, total, message):
        progress.append(value)

    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"ff_train", "ff_predict", "ff_goodness", "ff_models"} <= names
        out = (await client.call_tool("ff_train", {"name": "s", "x": x, "y": y, "hidden": [8, 8], "epochs": 10,
                                                   "batch_size": 8, "lr": 0.01, "seed": 1, "wait_seconds": 60},
                                      progress_callback=on_progress)).structured_content
        assert out["state"] == "done" and out["metrics"]["test_accuracy"] >= 0.75
        assert progress
        pred = (await client.call_tool("ff_predict", {"model": "s", "x": x[:4]})).structured_content
        assert pred["labels"] == y[:4]
        good = (await client.call_tool("ff_goodness", {"model": "s", "x": x[:4]})).structured_content
        assert len(good["layers"]) == 2 and len(good["layers"][0]["goodness"]) == 4
        bad = await client.call_tool("ff_predict", {"model": "s", "x": [[1.0, 2.0]]})
        assert bad.is_error and "x rows must have 4 features, got 2" in bad.content[0].text


def test_stdout_carries_only_json_rpc_and_errors_carry_no_traceback(home):
    server = RawStdioServer(home)
    try:
        init = server.initialize()
        assert init["result"]["serverInfo"]["name"] == "ff-mcp"
        assert not server.call("ff_models", {})["isError"]
        bad = server.call("ff_train", {"name": "../x", "x": [[1]], "y": [0]})
        assert bad["isError"] and "Traceback" not in bad["content"][0]["text"]
        bad = server.call("ff_predict", {"model": "nope", "x": [[1.0]]})
        assert bad["isError"] and "model 'nope' does not exist" in bad["content"][0]["text"]
        nan = server.request("tools/call", {"name": "ff_predict", "arguments": {"model": "m", "x": [["NaN"]]}})
        assert nan["result"]["isError"]
        server.proc.stdin.write("this is not json\n")  # the SDK drops it; the server stays up
        server.proc.stdin.flush()
        assert not server.call("ff_datasets", {})["isError"]
    finally:
        rc = server.close()
    assert server.non_json == [], server.non_json
    assert rc == 0, "".join(server.stderr)


def test_registry_survives_sigkill_mid_job_without_partial_models(home):
    x, y = blobs()
    first = RawStdioServer(home)
    try:
        first.initialize()
        done = first.call("ff_train", {"name": "kept", "x": x, "y": y, "hidden": [8, 8], "epochs": 10,
                                       "batch_size": 8, "lr": 0.01, "seed": 1, "wait_seconds": 60})
        assert done["structuredContent"]["state"] == "done"
        job = first.call("ff_train", {"name": "killed", "dataset": "digits", "hidden": [64], "epochs": 1000,
                                      "batch_size": 10})["structuredContent"]
        for _ in range(300):
            status = first.call("ff_job_status", {"job_id": job["job_id"]})["structuredContent"]
            if status["state"] == "running" and status["step"] > 0:
                break
            time.sleep(0.05)
        assert status["state"] == "running"
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.close()
    models = home / "models"
    # What a kill during a checkpoint write leaves: a hidden temporary file (made stale here).
    stale = models / ".killed.safetensors.abc123.tmp"
    stale.write_bytes(b"partial")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    second = RawStdioServer(home)
    try:
        second.initialize()
        listed = second.call("ff_models", {})["structuredContent"]["models"]
        assert [m["name"] for m in listed] == ["kept"]
        pred = second.call("ff_predict", {"model": "kept", "x": x[:4]})["structuredContent"]
        assert pred["labels"] == y[:4]
        missing = second.call("ff_model_info", {"model": "killed"})
        assert missing["isError"] and "does not exist" in missing["content"][0]["text"]
        unknown_job = second.call("ff_job_status", {"job_id": job["job_id"]})
        assert unknown_job["isError"] and "forgotten on restart" in unknown_job["content"][0]["text"]
    finally:
        assert second.close() == 0
    assert not stale.exists()
    assert sorted(p.name for p in models.iterdir()) == ["kept.safetensors"]
