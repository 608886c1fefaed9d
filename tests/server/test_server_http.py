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
    yield from serve_http(home, tmp_path, "--max-concurrent-jobs", "2")


def serve_http(home, tmp_path, *extra: str):
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(serve_command(home, "--http", "--host", "127.0.0.1", "--port", str(port), *extra),
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


@pytest.fixture
def http_server_quota(home, tmp_path):
    yield from serve_http(home, tmp_path, "--max-jobs-per-client", "2", "--max-queued-jobs", "8")


async def test_one_http_client_cannot_fill_the_queue_for_everyone(http_server_quota):
    x, y = blobs(rows=200, features=8)
    slow = {"x": x, "y": y, "hidden": [64, 64], "epochs": 1000, "batch_size": 1}
    async with Client(http_server_quota, mode="legacy") as greedy, Client(http_server_quota, mode="legacy") as other:
        jobs = [(await greedy.call_tool("ff_train", {"name": f"g{i}", **slow})).structured_content for i in range(2)]
        third = await greedy.call_tool("ff_train", {"name": "g2", **slow})
        assert third.is_error and "this client already has 2 jobs queued or running" in third.content[0].text
        assert "max_jobs_per_client" in third.content[0].text
        mine = (await other.call_tool("ff_train", {"name": "o0", **slow})).structured_content
        assert mine["state"] in ("queued", "running")
        for job in [*jobs, mine]:
            await greedy.call_tool("ff_job_cancel", {"job_id": job["job_id"]})
        again = await greedy.call_tool("ff_train", {"name": "g3", "x": x, "y": y, "hidden": [8], "epochs": 1})
        assert not again.is_error  # cancelled jobs no longer count
