"""The Tasks extension over raw stdio (2026-07-28 envelope): opt-in, poll, complete, tool error,
cancel, unknown id, no task without the opt-in, and durability across a restart and a kill."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from conftest import RawStdioServer, blobs
from ff_mcp.server.tasks import TaskRecord, TaskStore

TASKS = "io.modelcontextprotocol/tasks"


def envelope(opt_in: bool) -> dict:
    return {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"extensions": {TASKS: {}}} if opt_in else {},
            "io.modelcontextprotocol/clientInfo": {"name": "raw-tasks", "version": "0"}}


class Modern(RawStdioServer):
    """A raw client on the 2026-07-28 wire: server/discover, then every request carries the envelope."""

    def __init__(self, home, *extra: str) -> None:
        super().__init__(home, *extra)
        self.discovered = self.modern("server/discover", {}, opt_in=True)

    def modern(self, method: str, params: dict, opt_in: bool = True, timeout: float = 60.0) -> dict:
        return self.request(method, {**params, "_meta": envelope(opt_in)}, timeout)

    def call_as_task(self, tool: str, arguments: dict) -> dict:
        out = self.modern("tools/call", {"name": tool, "arguments": arguments})
        assert out["result"]["resultType"] == "task", out
        return out["result"]

    def wait(self, task_id: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.modern("tasks/get", {"taskId": task_id})["result"]
            if task["status"] != "working":
                return task
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} still working after {timeout} s")


def test_discover_advertises_tasks_and_a_training_task_runs_to_its_result(home):
    x, y = blobs()
    server = Modern(home)
    try:
        assert TASKS in server.discovered["result"]["capabilities"]["extensions"]
        created = server.call_as_task("ff_train", {"name": "t", "x": x, "y": y, "hidden": [8, 8], "epochs": 10,
                                                   "batch_size": 8, "lr": 0.01, "seed": 1})
        assert created["status"] == "working" and created["ttlMs"] > 0 and created["pollIntervalMs"] > 0
        assert {"taskId", "createdAt", "lastUpdatedAt"} <= set(created)
        first = server.modern("tasks/get", {"taskId": created["taskId"]})["result"]  # durable at once
        assert first["taskId"] == created["taskId"] and first["resultType"] == "complete"
        task = server.wait(created["taskId"])
        assert task["status"] == "completed" and "training done after epoch 10/10" in task["statusMessage"]
        result = task["result"]
        assert result["isError"] is False and result["structuredContent"]["state"] == "done"
        assert result["structuredContent"]["model"] == "t"
        assert json.loads(result["content"][0]["text"])["epochs"] == 10
        predicted = server.call_as_task("ff_predict", {"model": "t", "x": x[:3]})
        done = server.wait(predicted["taskId"])
        assert done["status"] == "completed" and done["result"]["structuredContent"]["labels"] == y[:3]
    finally:
        server.close()


def test_without_the_opt_in_tools_answer_as_before(home):
    x, y = blobs()
    server = Modern(home)
    try:
        out = server.modern("tools/call", {"name": "ff_train", "arguments": {"name": "t", "x": x, "y": y,
                                                                             "hidden": [8], "epochs": 2}},
                            opt_in=False)["result"]
        assert "resultType" not in out or out["resultType"] == "complete"
        assert out["structuredContent"]["job_id"].startswith("job-")
        fast = server.modern("tools/call", {"name": "ff_models", "arguments": {}})["result"]  # not a task tool
        assert "models" in fast["structuredContent"]
    finally:
        server.close()


def test_a_tool_error_completes_the_task_with_the_error_result_and_unknown_ids_are_refused(home):
    server = Modern(home)
    try:
        created = server.call_as_task("ff_predict", {"model": "ghost", "x": [[1.0]]})
        task = server.wait(created["taskId"])
        assert task["status"] == "completed" and task["result"]["isError"] is True
        assert "model 'ghost' does not exist" in task["result"]["content"][0]["text"]
        for method in ("tasks/get", "tasks/cancel"):
            error = server.modern(method, {"taskId": "no-such-task"})["error"]
            assert error["code"] == -32602 and "'no-such-task' is not a task of this server" in error["message"]
        again = server.modern("tasks/cancel", {"taskId": created["taskId"]})  # idempotent on an ended task
        assert "error" not in again and server.wait(created["taskId"])["status"] == "completed"
        for method in ("tasks/get", "tasks/cancel", "tasks/update"):  # without the opt-in: -32021
            error = server.modern(method, {"taskId": created["taskId"]}, opt_in=False)["error"]
            assert error["code"] == -32021 and error["data"]["requiredCapabilities"]["extensions"] == {TASKS: {}}
        update = server.modern("tasks/update", {"taskId": created["taskId"], "inputResponses": {}})["error"]
        assert update["code"] == -32602 and "never ask for input" in update["message"]
    finally:
        server.close()


def test_cancel_ends_a_training_task_within_two_seconds_and_keeps_the_weights(home):
    server = Modern(home)
    try:
        created = server.call_as_task("ff_train", {"name": "long", "dataset": "digits", "hidden": [32],
                                                   "epochs": 1000, "batch_size": 10})
        deadline = time.monotonic() + 60
        while "batch" not in (server.modern("tasks/get", {"taskId": created["taskId"]})["result"]
                              .get("statusMessage") or ""):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        started = time.monotonic()
        assert "error" not in server.modern("tasks/cancel", {"taskId": created["taskId"]})
        task = server.modern("tasks/get", {"taskId": created["taskId"]})["result"]
        assert task["status"] == "cancelled" and time.monotonic() - started < 2
        for _ in range(100):  # the job saves what it trained once its mini-batch ends
            info = server.modern("tools/call", {"name": "ff_model_info", "arguments": {"model": "long"}})["result"]
            if not info["isError"]:
                break
            time.sleep(0.1)
        assert info["structuredContent"]["state"] == "cancelled"
    finally:
        server.close()


def test_tasks_survive_a_restart_and_a_kill_fails_the_working_ones(home):
    x, y = blobs()
    first = Modern(home)
    try:
        done = first.call_as_task("ff_train", {"name": "kept", "x": x, "y": y, "hidden": [8], "epochs": 2})
        assert first.wait(done["taskId"])["status"] == "completed"
        working = first.call_as_task("ff_train", {"name": "killed", "dataset": "digits", "hidden": [32],
                                                  "epochs": 1000, "batch_size": 10})
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.close()
    second = Modern(home)
    try:
        kept = second.modern("tasks/get", {"taskId": done["taskId"]})["result"]
        assert kept["status"] == "completed" and kept["result"]["structuredContent"]["model"] == "kept"
        lost = second.modern("tasks/get", {"taskId": working["taskId"]})["result"]
        assert lost["status"] == "failed" and "server stopped while this task was working" in lost["error"]["message"]
    finally:
        second.close()


def test_the_store_forgets_tasks_past_their_ttl(tmp_path):
    store = TaskStore(tmp_path)
    old = store.create("ff_predict", ttl_ms=1)
    store.finish(old, "completed", result={"content": [], "isError": False})
    time.sleep(0.01)
    assert TaskStore(tmp_path)._tasks == {}  # expired on load, and its file removed
    assert not list(tmp_path.glob("*.json"))
    kept = store.create("ff_predict")
    store.finish(kept, "completed", result={"content": [{"type": "text", "text": "7"}], "isError": False})
    assert store._tasks[kept.taskId].result is None  # ended results live in their file, not in memory
    assert store.wire(kept.taskId)["result"]["content"][0]["text"] == "7"
    assert isinstance(TaskStore(tmp_path).get(kept.taskId), TaskRecord)
    with pytest.raises(Exception, match="not a task of this server"):
        store.get(old.taskId)


def test_a_second_live_server_on_the_directory_leaves_the_first_ones_working_tasks_alone(tmp_path):
    first = TaskStore(tmp_path)
    working = first.create("ff_train")
    TaskStore(tmp_path)  # another server starting while the first is alive
    assert json.loads((tmp_path / f"{working.taskId}.json").read_text())["status"] == "working"
    first.finish(working, "completed", result={"content": [], "isError": False})
    assert first.wire(working.taskId)["status"] == "completed"


def test_a_task_cancelled_at_once_does_not_write_and_a_waiting_training_task_cancels_its_job(home):
    x, y = blobs(rows=200, features=8)
    server = Modern(home)
    try:
        created = server.call_as_task("ff_color_learn", {"name": "colors", "positive": ["#FF0000", "#00FF00"] * 100,
                                                         "epochs": 1000})
        server.modern("tasks/cancel", {"taskId": created["taskId"]})
        assert server.wait(created["taskId"])["status"] == "cancelled"
        training = server.call_as_task("ff_train", {"name": "waiting", "x": x, "y": y, "hidden": [64, 64],
                                                    "epochs": 1000, "batch_size": 1, "wait_seconds": 60})
        server.modern("tasks/cancel", {"taskId": training["taskId"]})
        deadline = time.monotonic() + 30
        while True:  # the job stops after its mini-batch and frees the name
            again = server.modern("tools/call", {"name": "ff_train", "arguments": {"name": "waiting", "x": x,
                                                                                  "y": y, "hidden": [8],
                                                                                  "epochs": 1}},
                                  opt_in=False)["result"]
            if not again["isError"]:
                break
            assert "already has job" in again["content"][0]["text"] and time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(1.0)
        models = server.modern("tools/call", {"name": "ff_models", "arguments": {}})["result"]
        assert "colors" not in {m["name"] for m in models["structuredContent"]["models"]}
    finally:
        server.close()
