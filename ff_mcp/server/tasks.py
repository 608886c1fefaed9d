"""The MCP Tasks extension (``io.modelcontextprotocol/tasks``, SEP-2663, the 2026-07-28 era).

A client that names the extension in a request's ``_meta`` client capabilities gets, from a
``tools/call`` of a long tool (``TASK_TOOLS``), a ``CreateTaskResult`` at once instead of the
tool's answer; it polls ``tasks/get`` until the task is ``completed`` (the tool's whole
CallToolResult inline, ``isError`` included), ``failed`` (a JSON-RPC error) or ``cancelled``
(by ``tasks/cancel``). A client without the opt-in gets today's answers; the ff_job_* tools stay
for older clients.

Training is already a job (``server/jobs.py``): a task of ff_train follows its job, takes its
status message (epoch, loss, accuracy) from it, and cancels it. Other tools run in the background
under the task. Tasks are durable: each is written to ``<home>/tasks/<taskId>.json`` before its
CreateTaskResult is returned and again when it ends, so a finished task can be fetched after a
restart until its TTL runs out; a task that was working when the server stopped is failed on
the next start. The wire types are built here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from pydantic import Field

from ff_mcp.server.dirlock import DirectoryLock

log = logging.getLogger(__name__)

IDENTIFIER = "io.modelcontextprotocol/tasks"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
TASK_TOOLS = frozenset({"ff_train", "ff_color_learn", "ff_predict", "ff_goodness"})
DEFAULT_TTL_MS = 24 * 3600 * 1000  # a finished task is kept a day
POLL_INTERVAL_MS = 1000
TERMINAL = ("completed", "failed", "cancelled")
MISSING_CAPABILITY = -32021  # SEP-2575: MissingRequiredClientCapability
_FOLLOW_SECONDS = 0.25  # how often a task of ff_train reads its job
MAX_TASKS = 10_000  # task records kept; beyond, the oldest ended ones are forgotten


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class TaskRecord:
    """One task as stored; ``wire()`` is what tasks/get answers."""

    taskId: str
    tool: str
    status: str = "working"
    statusMessage: str | None = None
    createdAt: str = field(default_factory=_now)
    lastUpdatedAt: str = field(default_factory=_now)
    ttlMs: int | None = DEFAULT_TTL_MS
    pollIntervalMs: int = POLL_INTERVAL_MS
    result: dict[str, Any] | None = None  # the CallToolResult, when completed
    error: dict[str, Any] | None = None  # the JSON-RPC error object, when failed
    created_epoch: float = field(default_factory=time.time)
    job_id: str | None = None

    def created_result(self) -> dict[str, Any]:
        """The CreateTaskResult a tools/call answers with. It also carries a one-line ``content``, so a
        validator (or a client) that reads it as a core CallToolResult still finds a valid one."""
        out = self._task_fields()
        out["content"] = [{"type": "text", "text": f"{self.tool} runs as task {self.taskId}; poll tasks/get"}]
        out["resultType"] = "task"
        return out

    def wire(self) -> dict[str, Any]:
        """tasks/get's answer: the task, with the tool's result or the error once it has ended."""
        out = self._task_fields()
        if self.status == "completed" and self.result is not None:
            out["result"] = self.result
        if self.status == "failed" and self.error is not None:
            out["error"] = self.error
        out["resultType"] = "complete"
        return out

    def _task_fields(self) -> dict[str, Any]:
        out = {"taskId": self.taskId, "status": self.status, "createdAt": self.createdAt,
               "lastUpdatedAt": self.lastUpdatedAt, "ttlMs": self.ttlMs, "pollIntervalMs": self.pollIntervalMs}
        if self.statusMessage:
            out["statusMessage"] = self.statusMessage
        return out

    def expired(self, now: float | None = None) -> bool:
        return self.ttlMs is not None and (now or time.time()) - self.created_epoch > self.ttlMs / 1000


class TaskStore:
    """Tasks in memory, each also in a JSON file under ``root`` (written atomically). An ended task's
    result lives only in its file (read back by ``wire``), so memory holds the small records only;
    at most ``MAX_TASKS`` are kept, the oldest ended ones forgotten first."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._tasks: dict[str, TaskRecord] = {}
        self._lock = threading.Lock()
        self._directory = DirectoryLock(self.root / ".lock", while_alone=lambda: self._load(alone=True))
        if not self._directory.alone:
            self._load(alone=False)

    def close(self) -> None:
        self._directory.close()

    def _load(self, alone: bool) -> None:
        """Read the tasks of earlier runs. Only a server alone on the directory fails the tasks left
        working (their server is gone) and removes temporary files; another live server owns them."""
        now = time.time()
        for path in self.root.glob("*.json"):
            try:
                record = TaskRecord(**json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                log.warning("ignoring unreadable task file %s", path.name)
                continue
            if record.expired(now):
                path.unlink(missing_ok=True)
                continue
            if record.status not in TERMINAL:
                if not alone:
                    continue  # a live server's task
                record.status, record.lastUpdatedAt = "failed", _now()  # its work died with its server
                record.statusMessage = "the server stopped while this task was working; start it again"
                record.error = {"code": types.INTERNAL_ERROR, "message": record.statusMessage}
                self._write(record)
            record.result = record.error = None  # read from the file when asked for
            self._tasks[record.taskId] = record
        if alone:
            for path in self.root.glob(".*.tmp"):
                path.unlink(missing_ok=True)

    def create(self, tool: str, ttl_ms: int | None = DEFAULT_TTL_MS) -> TaskRecord:
        record = TaskRecord(taskId=secrets.token_urlsafe(18), tool=tool, ttlMs=ttl_ms,
                            statusMessage=f"{tool} accepted")
        with self._lock:
            self._purge_locked()
            self._tasks[record.taskId] = record
        self._write(record)  # durable before the CreateTaskResult leaves
        return record

    def get(self, task_id: str) -> TaskRecord:
        with self._lock:
            record = self._tasks.get(task_id)
        if record is None or record.expired():
            raise MCPError(types.INVALID_PARAMS, f"taskId {task_id!r} is not a task of this server (unknown, or "
                                                 f"past its ttlMs)")
        return record

    def wire(self, task_id: str) -> dict[str, Any]:
        """tasks/get's answer for ``task_id``, with an ended task's result or error read from its file."""
        record = self.get(task_id)
        if record.status in ("completed", "failed") and record.result is None and record.error is None:
            try:
                stored = json.loads((self.root / f"{record.taskId}.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise MCPError(types.INTERNAL_ERROR, f"task {task_id!r} ended but its stored result cannot be "
                                                     f"read") from None
            full = TaskRecord(**{**asdict(record), "result": stored.get("result"), "error": stored.get("error")})
            return full.wire()
        return record.wire()

    def update(self, record: TaskRecord, message: str | None) -> None:
        """A new status message for a working task (kept in memory; the file keeps the start and the end)."""
        if record.status == "working" and message and message != record.statusMessage:
            record.statusMessage, record.lastUpdatedAt = message, _now()

    def finish(self, record: TaskRecord, status: str, message: str | None = None, result: dict | None = None,
               error: dict | None = None) -> bool:
        """End a working task; False if it had already ended (a cancel came first)."""
        with self._lock:
            if record.status in TERMINAL:
                return False
            record.status, record.lastUpdatedAt = status, _now()
            record.statusMessage = message or record.statusMessage
            record.result, record.error = result, error
        self._write(record)  # if this fails the result stays in memory (and the caller logs it)
        record.result = record.error = None  # the file keeps them; memory keeps the record
        return True

    def _write(self, record: TaskRecord) -> None:
        path = self.root / f"{record.taskId}.json"
        tmp = self.root / f".{record.taskId}.{secrets.token_hex(4)}.tmp"
        try:
            tmp.write_text(json.dumps(asdict(record)), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise

    def _purge_locked(self) -> None:
        now = time.time()
        gone = [t for t, r in self._tasks.items() if r.expired(now)]
        ended = [t for t, r in self._tasks.items() if r.status in TERMINAL and t not in gone]
        gone += ended[: max(0, len(self._tasks) - len(gone) - MAX_TASKS + 1)]  # oldest ended first (dict order)
        for task_id in gone:
            del self._tasks[task_id]
            (self.root / f"{task_id}.json").unlink(missing_ok=True)


class TaskIdParams(types.RequestParams):
    taskId: str = Field(min_length=1, max_length=128)


class TaskUpdateParams(TaskIdParams):
    inputResponses: dict[str, Any] | None = None


def _require_opt_in(ctx: Any, method: str) -> None:
    """SEP-2663: the tasks methods need the extension in the request's client capabilities (-32021 else)."""
    if not opted_in(ctx):
        raise MCPError(MISSING_CAPABILITY, f"{method} needs the {IDENTIFIER} extension in the request's client "
                                           f"capabilities (_meta {CAPABILITIES_KEY}.extensions)",
                       data={"requiredCapabilities": {"extensions": {IDENTIFIER: {}}}})


def request_meta(meta: Any) -> dict[str, Any]:
    """A request's ``_meta`` as a plain dict (the SDK hands a model or a mapping; None gives {})."""
    if meta is None:
        return {}
    if isinstance(meta, dict):
        return meta
    return meta.model_dump(by_alias=True) if hasattr(meta, "model_dump") else dict(meta)


def opted_in(ctx: Any) -> bool:
    """Whether this request's client capabilities name the Tasks extension."""
    capabilities = request_meta(getattr(ctx, "meta", None)).get(CAPABILITIES_KEY) or {}
    extensions = capabilities.get("extensions") if isinstance(capabilities, dict) else None
    return isinstance(extensions, dict) and IDENTIFIER in extensions


def _dump(result: Any) -> dict[str, Any]:
    if hasattr(result, "model_dump"):
        return result.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dict(result)


class TasksExtension(Extension):
    """Serves tools/call of ``TASK_TOOLS`` as tasks for opted-in clients, and tasks/get, tasks/cancel."""

    identifier = IDENTIFIER

    def __init__(self, store: TaskStore, task_tools: frozenset[str] = TASK_TOOLS,
                 required: frozenset[str] = frozenset()) -> None:
        """``task_tools``: tools an opted-in call of becomes a task; ``required``: tools that only run as
        tasks (a call without the opt-in is refused with -32021)."""
        self.store = store
        self.task_tools = frozenset(task_tools) | frozenset(required)
        self.required = frozenset(required)
        self._scopes: dict[str, anyio.CancelScope] = {}

    def methods(self) -> list[MethodBinding]:
        return [MethodBinding("tasks/get", TaskIdParams, self.get),
                MethodBinding("tasks/cancel", TaskIdParams, self.cancel),
                MethodBinding("tasks/update", TaskUpdateParams, self.update)]

    async def get(self, ctx: Any, params: TaskIdParams) -> dict[str, Any]:
        _require_opt_in(ctx, "tasks/get")
        return self.store.wire(params.taskId)

    async def update(self, ctx: Any, params: "TaskUpdateParams") -> dict[str, Any]:
        _require_opt_in(ctx, "tasks/update")
        record = self.store.get(params.taskId)
        raise MCPError(types.INVALID_PARAMS, f"task {record.taskId!r} is not waiting for input ({record.status}); "
                                             f"ff-mcp tasks never ask for input")

    async def cancel(self, ctx: Any, params: TaskIdParams) -> dict[str, Any]:
        """Ends a working task (cancelled at once); on an ended task an acknowledgement that changes nothing."""
        _require_opt_in(ctx, "tasks/cancel")
        record = self.store.get(params.taskId)
        if record.status in TERMINAL:
            return {}
        if record.job_id is not None:  # else the task cancels its job once the job is queued
            _cancel_job(ctx.lifespan_context, record.job_id)
        scope = self._scopes.get(record.taskId)
        if scope is not None:
            scope.cancel()
        self._end(record, "cancelled", "cancelled by the client")
        return {}

    async def intercept_tool_call(self, params: Any, ctx: Any, call_next: Any) -> Any:
        if params.name in self.required:
            _require_opt_in(ctx, f"tools/call of {params.name}")
        if params.name not in self.task_tools or not opted_in(ctx):
            return await call_next(ctx)
        state = ctx.lifespan_context
        record = self.store.create(params.name)
        if params.name == "ff_train" and isinstance(params.arguments, dict):
            # the task follows the job itself: the tool returns once the job is queued (the handler is
            # invoked with this same params object)
            params.arguments["wait_seconds"] = 0
        state.background.start_soon(self._run_safely, record, ctx, call_next)
        return record.created_result()

    async def _run_safely(self, record: TaskRecord, ctx: Any, call_next: Any) -> None:
        """``_run``, and whatever happens the task ends and the background task group lives on."""
        try:
            if record.status in TERMINAL:  # cancelled before it started
                return
            if record.tool == "ff_train":
                await self._run_training(record, ctx, call_next)
            else:
                await self._run(record, ctx, call_next)
        except MCPError as exc:
            self._end(record, "failed", exc.error.message, error=exc.error.model_dump(exclude_none=True))
        except Exception as exc:  # noqa: BLE001 - a task must end, and say so, whatever happened
            log.exception("task %s (%s) failed", record.taskId, record.tool)
            self._end(record, "failed", "internal error; see the server log",
                      error={"code": types.INTERNAL_ERROR, "message": f"internal error ({type(exc).__name__})"})

    def _end(self, record: TaskRecord, status: str, message: str, **outcome: Any) -> None:
        try:
            self.store.finish(record, status, message, **outcome)
        except OSError:
            log.exception("task %s: its end could not be written (the in-memory state is kept)", record.taskId)

    async def _run(self, record: TaskRecord, ctx: Any, call_next: Any) -> None:
        """A tool call run under the task; cancelling the task cancels the call (the executor's token)."""
        with anyio.CancelScope() as scope:
            self._scopes[record.taskId] = scope
            try:
                result = _dump(await call_next(ctx))
                self._end(record, "completed", _final_message(record.tool, result), result=result)
            finally:
                self._scopes.pop(record.taskId, None)
        if scope.cancelled_caught:
            self._end(record, "cancelled", "cancelled")

    async def _run_training(self, record: TaskRecord, ctx: Any, call_next: Any) -> None:
        """ff_train under a task: the tool queues a job (shielded, so a cancel cannot lose the job's id),
        then the task follows the job; a cancel, before or after the job is known, cancels the job."""
        with anyio.CancelScope(shield=True):
            result = _dump(await call_next(ctx))
        job_id = (result.get("structuredContent") or {}).get("job_id")
        if result.get("isError") or not job_id:
            self._end(record, "completed", _final_message(record.tool, result), result=result)
            return
        record.job_id = job_id
        state = ctx.lifespan_context
        if record.status in TERMINAL:  # cancelled while the job was being queued
            _cancel_job(state, job_id)
            return
        final = await self._follow_job(record, state, job_id)
        if final is not None:
            self._end(record, "completed", _final_message(record.tool, final), result=final)

    async def _follow_job(self, record: TaskRecord, state: Any, job_id: str) -> dict[str, Any] | None:
        from ff_mcp.server.tools import progress_message, train_job_result

        job = state.jobs.get(job_id)
        while not job.finished.is_set():
            self.store.update(record, progress_message(state, job))
            if record.status in TERMINAL:
                return None
            await anyio.sleep(_FOLLOW_SECONDS)
        if record.status in TERMINAL:
            return None
        out = train_job_result(job)
        body = out.model_dump(mode="json")
        return {"content": [{"type": "text", "text": json.dumps(body, indent=2)}], "structuredContent": body,
                "isError": job.state == "failed"}


def _cancel_job(state: Any, job_id: str) -> None:
    """Training stops after its mini-batch and saves what it has."""
    try:
        state.jobs.cancel(job_id)
    except LookupError:
        pass


def _final_message(tool: str, result: dict[str, Any]) -> str:
    if result.get("isError"):
        content = result.get("content") or [{}]
        return f"{tool} answered with an error: {str(content[0].get('text', ''))[:200]}"
    body = result.get("structuredContent") or {}
    if tool == "ff_train":
        metrics = body.get("metrics") or {}
        accuracy = metrics.get("test_accuracy")
        tail = f", test accuracy {accuracy:.4f}" if isinstance(accuracy, (int, float)) else ""
        return f"training {body.get('state')} after epoch {body.get('epoch')}/{body.get('epochs')}{tail}"
    return f"{tool} done"


# ---- the client side (for Python clients, the docs' example and the tests) ------------------------

from typing import Literal  # noqa: E402

from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim  # noqa: E402
from pydantic import ConfigDict  # noqa: E402


class TaskCreated(types.Result):
    """tools/call's answer when the server made a task."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    result_type: Literal["task"] = Field(alias="resultType")
    task_id: str = Field(alias="taskId")
    status: str
    poll_interval_ms: int | None = Field(None, alias="pollIntervalMs")


class TaskState(types.Result):
    """tasks/get's answer."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    task_id: str = Field(alias="taskId")
    status: str
    status_message: str | None = Field(None, alias="statusMessage")
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class GetTask(types.Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    name_param = "taskId"  # SEP-2663: mirrored into the Mcp-Name header over HTTP


class CancelTask(types.Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    name_param = "taskId"


class TaskFailed(RuntimeError):
    """A task ended failed or cancelled; ``state`` is the last tasks/get answer."""

    def __init__(self, state: TaskState) -> None:
        detail = (state.error or {}).get("message") or state.status_message or state.status
        super().__init__(f"task {state.task_id} {state.status}: {detail}")
        self.state = state


class TasksClient(ClientExtension):
    """For ``mcp.Client(..., extensions=[TasksClient()])``: opts every call in to tasks, and turns a
    task back into the tool's CallToolResult by polling tasks/get. ``on_status(state)`` sees each poll."""

    identifier = IDENTIFIER

    def __init__(self, on_status=None) -> None:
        self.on_status = on_status

    def claims(self) -> list[ResultClaim]:
        return [ResultClaim(result_type="task", model=TaskCreated, resolve=self._resolve)]

    async def _resolve(self, created: TaskCreated, ctx: ClaimContext) -> types.CallToolResult:
        params = TaskIdParams(taskId=created.task_id)
        while True:
            state = await ctx.session.send_request(GetTask(params=params), TaskState)
            if self.on_status is not None:
                self.on_status(state)
            if state.status == "completed":
                return types.CallToolResult.model_validate(state.result)
            if state.status in ("failed", "cancelled"):
                raise TaskFailed(state)
            await anyio.sleep((created.poll_interval_ms or POLL_INTERVAL_MS) / 1000)
