"""One executor for the heavy calls that are not training jobs (predict, goodness, color learning and
scoring): a bounded pool, a per-call time limit, and cancellation the work checks between chunks.

The protocol loop only awaits: the work runs on a worker thread, at most ``max_concurrent_calls`` at
once; more wait their turn, and beyond ``max_queued_calls`` waiting calls a new one is refused. A
call cancelled by its client (or its task) or past ``max_call_seconds`` gives its slot back at once
and its thread stops at its next chunk (``CallToken.check``), a fraction of a second later.
Training keeps its job threads (``server/jobs.py``); its evaluation checks the same kind of stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")


class CallStopped(Exception):
    """The call was cancelled or ran out of time; the message says which."""


class CallToken:
    """What the worker thread polls: ``check()`` raises CallStopped once the call should stop."""

    def __init__(self, seconds: float | None) -> None:
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self.seconds = seconds
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    def should_stop(self) -> bool:
        return self._cancelled.is_set() or (self.deadline is not None and time.monotonic() > self.deadline)

    def check(self) -> None:
        if self._cancelled.is_set():
            raise CallStopped("the call was cancelled")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise CallStopped(f"the call ran past max_call_seconds={self.seconds:g} s and was stopped; "
                              f"send fewer rows per call")


class Executor:
    def __init__(self, max_concurrent: int = 2, max_queued: int = 32, max_seconds: float | None = 300.0) -> None:
        self.limiter = anyio.CapacityLimiter(max_concurrent)
        self.max_queued = max_queued
        self.max_seconds = max_seconds

    async def run(self, work: Callable[[CallToken], T], what: str = "call") -> T:
        """Run ``work(token)`` on a worker thread under the pool's limit. ValueError when the queue is full;
        CallStopped (a client error: the tool layer reports its message) when the work stopped."""
        waiting = self.limiter.statistics().tasks_waiting
        if self.limiter.available_tokens < 1 and waiting >= self.max_queued:
            raise ValueError(f"the server is busy: {waiting} calls are waiting (max_queued_calls); "
                             f"try again shortly")
        await self.limiter.acquire()
        token = CallToken(self.max_seconds)  # the time limit counts from the call's start, not its wait
        try:
            return await anyio.to_thread.run_sync(work, token, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            token.cancel()  # the abandoned thread stops at its next chunk; the slot is free now
            raise
        finally:
            self.limiter.release()

    def statistics(self) -> dict[str, Any]:
        stats = self.limiter.statistics()
        return {"running": stats.borrowed_tokens, "waiting": stats.tasks_waiting, "slots": stats.total_tokens}
