"""Training jobs: a bounded queue, a cap on concurrent jobs, one job per model, cooperative cancel.

Each running job has its own thread, so the MCP event loop never runs training. Cancellation is
a ``threading.Event`` the trainer polls once per mini-batch (``Job.should_stop``); the job's work
function decides what a stopped job keeps (the training tools save the last whole weights).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ff_mcp.server.errors import NotFoundError

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
FINISHED_JOBS_KEPT = 500  # job records remembered after they end (oldest forgotten first)


class UnknownJobError(NotFoundError):
    """No job with that id is known to this server process."""


@dataclass
class Job:
    """One training job; the trainer's callbacks update its progress fields from the job thread."""

    job_id: str
    model: str
    epochs: int  # planned epochs (all phases)
    work: Callable[["Job"], str]  # returns the final state: "done" or "cancelled"
    max_seconds: float | None = None
    state: str = "queued"
    epoch: int = 0
    step: int = 0
    steps: int = 0
    metrics: dict[str, Any] | None = None
    error: str | None = None
    created: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    started_at: float | None = None  # time.monotonic()
    finished_at: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False
    on_finish: Callable[[], None] | None = None  # called once when the job ends, however it ends
    client: str | None = None  # who submitted it (HTTP), for the per-client quota
    history: list[dict[str, Any]] = field(default_factory=list)  # one record an epoch (ff_mcp/history.py)
    warnings: list[str] = field(default_factory=list)  # what the data checks noticed (data/checks.py)

    # ---- used by the trainer (job thread) ---------------------------------------------------

    def should_stop(self) -> bool:
        if self.cancel_event.is_set():
            return True
        if self.max_seconds is not None and self.started_at is not None:
            if time.monotonic() - self.started_at > self.max_seconds:
                self.timed_out = True
                return True
        return False

    def on_batch_end(self, epoch: int, step: int, steps: int) -> None:
        self.step, self.steps = step, steps

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        from ff_mcp.history import epoch_record

        self.metrics = {k: v for k, v in metrics.items() if k != "layers"}
        self.history.append(epoch_record(metrics))
        self.epoch = int(metrics.get("epoch", self.epoch + 1))
        # the run's own plan (a kind that trains its layers in phases plans epochs per phase); early
        # stopping may end phases sooner, so epoch can jump between phases
        self.epochs = max(int(metrics.get("epochs", self.epochs)), self.epoch)

    # ---- read by tools ----------------------------------------------------------------------

    @property
    def progress(self) -> float:
        """Epochs done, fractional within an epoch; reaches `epochs` only once the job is done."""
        if self.state == "done":
            return float(self.epochs)
        partial = self.step / self.steps if self.steps and self.step < self.steps else 0.0
        return min(self.epochs - 1e-3, self.epoch + partial)

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.monotonic()) - self.started_at


class JobManager:
    """Runs jobs on threads, at most ``max_concurrent`` at once; the rest wait in FIFO order."""

    def __init__(self, max_concurrent: int = 1, max_jobs: int = 16, max_job_seconds: float | None = None) -> None:
        self.max_concurrent = max_concurrent
        self.max_jobs = max_jobs
        self.max_job_seconds = max_job_seconds
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._threads: dict[str, threading.Thread] = {}
        self._closed = False

    def submit(self, model: str, epochs: int, work: Callable[[Job], str],
               on_finish: Callable[[], None] | None = None, client: str | None = None,
               max_per_client: int | None = None) -> Job:
        """Queue a job for `model`; ValueError if that model already has one, the queue is full, or
        `client` (when given) already has `max_per_client` jobs queued or running."""
        with self._lock:
            if self._closed:
                raise ValueError("the server is shutting down; no new jobs are accepted")
            active = [j for j in self._jobs.values() if j.state in ACTIVE]
            for other in active:
                if other.model == model:
                    raise ValueError(
                        f"model {model!r} already has job {other.job_id} ({other.state}); "
                        f"wait for it or cancel it with ff_job_cancel"
                    )
            mine = [j for j in active if client is not None and j.client == client]
            if max_per_client is not None and len(mine) >= max_per_client:
                raise ValueError(f"this client already has {len(mine)} jobs queued or running, the most one client "
                                 f"may have (max_jobs_per_client); wait for one to finish or cancel one")
            if len(active) >= self.max_jobs:
                raise ValueError(f"{len(active)} jobs are queued or running, the most allowed (max_queued_jobs); "
                                 f"wait for one to finish or cancel one")
            job = Job(job_id=f"job-{uuid.uuid4().hex[:12]}", model=model, epochs=epochs, work=work,
                      max_seconds=self.max_job_seconds, on_finish=on_finish, client=client)
            self._jobs[job.job_id] = job
            self._queue.append(job)
            self._forget_old_locked()
            self._dispatch_locked()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJobError(f"job_id {job_id!r} is not a job of this server (jobs are forgotten on restart); "
                                  f"start one with ff_train")
        return job

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued job ends at once, a running one after its current mini-batch."""
        job = self.get(job_id)
        with self._lock:
            if job.state == "queued":
                self._queue.remove(job)
                self._finish_locked(job, "cancelled")
            elif job.state == "running":
                job.cancel_event.set()
        return job

    def active_for(self, model: str) -> Job | None:
        with self._lock:
            return next((j for j in self._jobs.values() if j.model == model and j.state in ACTIVE), None)

    def queue_position(self, job: Job) -> int:
        with self._lock:
            return next((i for i, j in enumerate(self._queue) if j is job), -1)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel everything and wait up to `timeout` seconds for running jobs to save and end."""
        with self._lock:
            self._closed = True
            while self._queue:
                self._finish_locked(self._queue.popleft(), "cancelled")
            threads = list(self._threads.values())
            for job in self._jobs.values():
                job.cancel_event.set()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # ---- internals --------------------------------------------------------------------------

    def _dispatch_locked(self) -> None:
        while self._queue and len(self._threads) < self.max_concurrent:
            job = self._queue.popleft()
            job.state = "running"
            job.started_at = time.monotonic()
            thread = threading.Thread(target=self._run, args=(job,), name=f"ff-{job.job_id}", daemon=True)
            self._threads[job.job_id] = thread
            thread.start()

    def _run(self, job: Job) -> None:
        state, error = "failed", None
        try:
            state = job.work(job)
            if job.timed_out:
                error = f"stopped after max_job_seconds={self.max_job_seconds:g} s; the model so far was saved"
        except Exception as exc:  # noqa: BLE001 - a job must never take the server down
            error = _describe(exc)
            if error == str(exc):  # a client-fixable error: its message says it all
                log.warning("job %s (model %r) failed: %s", job.job_id, job.model, exc)
            else:
                log.exception("job %s (model %r) failed", job.job_id, job.model)
        finally:
            with self._lock:
                self._threads.pop(job.job_id, None)
                job.error = error
                self._finish_locked(job, state)
                self._dispatch_locked()

    def _finish_locked(self, job: Job, state: str) -> None:
        job.state = state
        job.finished_at = time.monotonic()
        if job.on_finish is not None:
            on_finish, job.on_finish = job.on_finish, None
            try:
                on_finish()
            except Exception:  # noqa: BLE001 - a cleanup must not keep the job from ending
                log.exception("job %s: cleanup failed", job.job_id)
        job.finished.set()

    def _forget_old_locked(self) -> None:
        finished = [j for j in self._jobs.values() if j.state not in ACTIVE]
        for job in finished[: max(0, len(finished) - FINISHED_JOBS_KEPT)]:
            del self._jobs[job.job_id]


def _describe(exc: BaseException) -> str:
    """A job error for the client: the message of errors it can act on, the type name otherwise."""
    from ff_mcp.server.errors import CLIENT_ERRORS

    if isinstance(exc, CLIENT_ERRORS):
        return str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return "out of memory; try fewer rows, smaller hidden layers or a smaller batch_size"
    return f"internal error ({type(exc).__name__}); see the server log"
