"""Limits on what one client call may ask of the server; every one is configurable."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    """Upper bounds enforced by the tool schemas and again in code (defence in depth)."""

    max_rows: int = 10_000  # rows of x per call (train, predict, goodness)
    max_features: int = 4096  # columns of x (a 64x64 image)
    max_edges: int = 100_000  # [source, target] pairs of a graph (ff_train, ff_predict, ff_goodness with edges)
    max_classes: int = 1000  # labels 0..max_classes-1 in y
    max_hidden: int = 4096  # width of one hidden layer
    max_depth: int = 8  # number of hidden layers
    max_epochs: int = 1000
    max_batch_size: int = 10_000
    max_job_seconds: float = 3600.0  # wall time of one training job; it stops (and saves) when exceeded
    max_wait_seconds: float = 600.0  # longest ff_train wait_seconds
    max_concurrent_jobs: int = 1  # training threads; more jobs wait in the queue (torch already uses every core)
    max_queued_jobs: int = 16  # queued + running jobs; beyond that ff_train refuses
    max_jobs_per_client: int = 4  # queued + running jobs of one HTTP client (session, else name and address)
    max_call_seconds: float = 300.0  # wall time of one predict / goodness / color call; it stops when exceeded
    max_concurrent_calls: int = 2  # predict / goodness / color calls computing at once; more wait their turn
    max_queued_calls: int = 32  # calls waiting for a slot; beyond that a call is refused (server busy)
    # bytes of one JSON-RPC request (a stdio line, an HTTP body), refused before it is parsed; 64 MiB
    # holds 10,000 rows of 784 features written with ~8 characters a number
    max_request_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{f.name} must be a number > 0, got {value!r}")
        if self.max_classes < 2:
            raise ValueError(f"max_classes must be >= 2, got {self.max_classes}")

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
