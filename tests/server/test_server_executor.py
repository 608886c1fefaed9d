"""The executor of heavy calls: a bounded pool with a queue limit, a per-call time limit, cancellation
checked between chunks (a cancelled call frees its slot at once), evaluation after training that stops
on cancel, and a flood of large calls during which tools/list keeps answering."""

from __future__ import annotations

import threading
import time

import anyio
import pytest
import torch
from mcp import Client

from conftest import save_untrained
from ff_mcp.engine import NetworkConfig, TrainConfig, Trainer, build_network
from ff_mcp.server import Limits, ServerConfig, build_server
from ff_mcp.server.executor import CallStopped, Executor

pytestmark = pytest.mark.anyio


def chunked_work(chunks: int, seconds_each: float, progress: list):
    def work(token):
        for i in range(chunks):
            token.check()
            time.sleep(seconds_each)
            progress.append(i)
        return len(progress)
    return work


async def test_a_cancelled_call_frees_its_slot_at_once_and_its_thread_stops_at_the_next_chunk():
    executor = Executor(max_concurrent=1, max_queued=4, max_seconds=60)
    progress: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(executor.run, chunked_work(1000, 0.01, progress))
        await anyio.sleep(0.2)
        tg.cancel_scope.cancel()
    assert executor.statistics()["running"] == 0
    done_before = len(progress)
    quick = await executor.run(lambda token: "next call ran")  # the slot is free
    assert quick == "next call ran"
    await anyio.sleep(0.1)
    assert len(progress) <= done_before + 1  # the abandoned thread stopped at its next check


async def test_calls_wait_for_a_slot_and_a_full_queue_refuses():
    executor = Executor(max_concurrent=1, max_queued=1, max_seconds=60)
    release = threading.Event()
    results = []

    async def run(tag):
        results.append(await executor.run(lambda token: (release.wait(10), tag)[1]))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, "first")
        await anyio.sleep(0.1)
        tg.start_soon(run, "second")  # waits for the slot
        await anyio.sleep(0.1)
        with pytest.raises(ValueError, match="the server is busy: 1 calls are waiting"):
            await executor.run(lambda token: "third")
        release.set()
    assert results == ["first", "second"]


async def test_a_call_past_its_time_limit_stops_with_a_message():
    executor = Executor(max_concurrent=1, max_queued=1, max_seconds=0.2)
    with pytest.raises(CallStopped, match="ran past max_call_seconds=0.2 s"):
        await executor.run(chunked_work(1000, 0.01, []))


async def test_ff_predict_past_max_call_seconds_is_a_tool_error(home):
    save_untrained(home, "m", in_features=4, num_classes=2)
    server = build_server(ServerConfig(home=home, limits=Limits(max_call_seconds=1e-9)))
    async with Client(server) as client:
        result = await client.call_tool("ff_predict", {"model": "m", "x": [[0.0] * 4] * 3})
    assert result.is_error and "ran past max_call_seconds" in result.content[0].text


def test_evaluation_after_training_stops_when_the_run_is_cancelled_mid_way():
    torch.manual_seed(0)
    x_train, y_train = torch.randn(200, 8), torch.randint(0, 3, (200,))
    x_test, y_test = torch.randn(5000, 8), torch.randint(0, 3, (5000,))
    network = build_network(NetworkConfig(in_features=8, num_classes=3, hidden=(16,), label_mode="concat"))
    steps = 200 // 50
    polls = []

    def should_stop() -> bool:  # False through the epoch's mini-batches, True from the evaluation on
        polls.append(1)
        return len(polls) > steps

    result = Trainer(network, TrainConfig(epochs=1, batch_size=50, train_eval_rows=0),
                     should_stop=should_stop).fit(x_train, y_train, x_test, y_test)
    assert result.state == "cancelled"
    assert result.history[-1]["evaluation"] == "stopped" and "test_accuracy" not in result.history[-1]
    assert len(polls) == steps + 1  # stopped before its first chunk of 1000 test rows


async def test_a_flood_of_large_calls_queues_behind_the_pool_while_tools_list_answers(home):
    limits = Limits(max_rows=4000, max_features=256, max_concurrent_calls=1, max_queued_calls=3)
    network = build_network(NetworkConfig(in_features=256, num_classes=10, hidden=(512, 512)))
    from ff_mcp.server.registry import ModelRegistry

    registry = ModelRegistry(home)
    registry.save("wide", network, {"predict_method": "goodness"}, {"state": "done"}, {})
    registry.close()
    x = torch.rand(4000, 256).tolist()
    server = build_server(ServerConfig(home=home, limits=limits))
    outcomes: list[str] = []
    list_seconds: list[float] = []
    async with Client(server) as client:
        async def predict():
            result = await client.call_tool("ff_predict", {"model": "wide", "x": x})
            outcomes.append(result.content[0].text if result.is_error else "ok")

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(predict)
            await anyio.sleep(0.5)
            for _ in range(5):
                started = time.perf_counter()
                assert (await client.list_tools()).tools
                list_seconds.append(time.perf_counter() - started)
                await anyio.sleep(0.2)
    assert outcomes.count("ok") >= 4  # one running, three waiting ...
    assert all("ok" == o or "the server is busy" in o for o in outcomes)  # ... and the rest refused, clearly
    assert max(list_seconds) < 2.0, list_seconds
