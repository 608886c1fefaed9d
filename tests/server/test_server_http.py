"""Streamable HTTP: four clients train and predict at once against one `ff-mcp serve --http`."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import anyio
import pytest
from mcp import Client

from conftest import blobs, serve_command

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server(home, tmp_path):
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(serve_command(home, "--http", "--host", "127.0.0.1", "--port", str(port),
                                          "--max-concurrent-jobs", "2"),
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    try:
        proc.wait(20)
    finally:
        proc.kill() if proc.poll() is None else None
        log.close()


async def test_four_concurrent_http_clients_see_only_their_own_models(http_server):
    results: dict[int, dict] = {}

    async def one_client(i: int) -> None:
        # Each client's model has its own width and class count, so any cross-talk shows.
        features, classes = 4 + i, 2 + (i % 2)
        x, y = blobs(rows=30, features=features, classes=classes, seed=i)
        mode = "legacy" if i % 2 else "auto"
        async with Client(http_server, mode=mode) as client:
            train = (await client.call_tool("ff_train", {"name": f"client{i}", "x": x, "y": y, "hidden": [8],
                                                         "epochs": 3, "batch_size": 10,
                                                         "wait_seconds": 120})).structured_content
            pred = (await client.call_tool("ff_predict", {"model": f"client{i}", "x": x[:5]})).structured_content
            info = (await client.call_tool("ff_model_info", {"model": f"client{i}"})).structured_content
            results[i] = {"train": train, "pred": pred, "info": info, "features": features, "classes": classes}

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(one_client, i)

    assert len({r["train"]["job_id"] for r in results.values()}) == 4
    for i, r in results.items():
        assert r["train"]["state"] == "done" and r["train"]["model"] == f"client{i}"
        assert r["info"]["config"]["in_features"] == r["features"]
        assert r["info"]["config"]["num_classes"] == r["classes"]
        assert len(r["pred"]["labels"]) == 5 and all(len(s) == r["classes"] for s in r["pred"]["scores"])

    async with Client(http_server, mode="legacy") as client:
        names = [m["name"] for m in (await client.call_tool("ff_models", {})).structured_content["models"]]
    assert names == ["client0", "client1", "client2", "client3"]


async def test_a_task_over_http_trains_and_polls_to_the_result(http_server):
    from ff_mcp.server.tasks import TasksClient

    x, y = blobs(rows=40, features=4)
    seen = []
    async with Client(http_server, extensions=[TasksClient(on_status=lambda task: seen.append(task.status))]) as client:
        result = await client.call_tool("ff_train", {"name": "task-http", "x": x, "y": y, "hidden": [8],
                                                     "epochs": 3, "batch_size": 10})
        assert result.structured_content["state"] == "done" and result.structured_content["model"] == "task-http"
        unknown = await client.call_tool("ff_train", {"name": "t", "x": x, "y": y, "optimiser": "adam"})
        assert unknown.is_error and "unknown argument 'optimiser'" in unknown.content[0].text
    assert seen[-1] == "completed"
