"""Server configuration and the shared state the lifespan hands to every tool."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ff_mcp.server.executor import Executor
from ff_mcp.server.jobs import JobManager
from ff_mcp.server.limits import Limits
from ff_mcp.server.registry import ModelRegistry


def default_home() -> Path:
    """FF_MCP_HOME if set, else the platform's user data directory for ff-mcp."""
    env = os.environ.get("FF_MCP_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("ff-mcp"))


@dataclass(frozen=True)
class ServerConfig:
    """How to run the server; the CLI builds one from its flags."""

    home: Path = field(default_factory=default_home)  # holds models/ (the registry)
    dataset_dir: Path | None = None  # searched first for file-based data sets (else the data module's order)
    limits: Limits = field(default_factory=Limits)
    name: str = "ff-mcp"
    conformance_fixtures: bool = False  # add the official conformance suite's fixture tools (bench only)


@dataclass
class AppState:
    """What tools reach as ``ctx.request_context.lifespan_context``."""

    registry: ModelRegistry
    jobs: JobManager
    limits: Limits
    config: ServerConfig
    executor: Executor = None  # type: ignore[assignment]  # set by create()
    background: Any = None  # the lifespan's task group: work that outlives the request that started it (tasks)

    @classmethod
    def create(cls, config: ServerConfig) -> "AppState":
        limits = config.limits
        return cls(
            registry=ModelRegistry(config.home),
            jobs=JobManager(limits.max_concurrent_jobs, limits.max_queued_jobs, limits.max_job_seconds),
            limits=limits,
            config=config,
            executor=Executor(limits.max_concurrent_calls, limits.max_queued_calls, limits.max_call_seconds),
        )
