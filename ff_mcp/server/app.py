"""Build the ff-mcp MCPServer: lifespan state, the ff_* tools, resources, and the color tools."""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

import ff_mcp
from ff_mcp.engine import CheckpointError
from ff_mcp.server.errors import NotFoundError
from ff_mcp.server.registry import validate_name
from ff_mcp.server.state import AppState, ServerConfig
from ff_mcp.server.strict import make_strict
from ff_mcp.server.tasks import TASK_TOOLS, TaskStore, TasksExtension
from ff_mcp.server.tools import register_tools

log = logging.getLogger(__name__)

SKILL_PATHS = (
    Path(ff_mcp.__file__).resolve().parents[1] / "skill.md",  # the repository root, next to the package
    Path(__file__).resolve().parent / "skill.md",  # a packaged copy, if one is installed
)

INSTRUCTIONS = """\
Forward-Forward (FF) learning tools. Train with ff_train (a data set name from ff_datasets, or rows x
with labels y); it returns a job_id at once (or waits up to wait_seconds, reporting progress). Poll
ff_job_status, stop with ff_job_cancel. Saved models persist across restarts: list them with ff_models,
use them with ff_predict (one label per row) and ff_goodness (per-layer goodness of each row).
The resource ff://skill explains the workflow; ff://models/{name} is a model's card as JSON."""


def build_server(config: ServerConfig | None = None) -> MCPServer:
    """A ready-to-run server; its lifespan opens the registry and the job manager."""
    config = config or ServerConfig()

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[AppState]:
        state = AppState.create(config)
        log.info("ff-mcp registry at %s", state.registry.root)
        try:
            async with anyio.create_task_group() as background:
                state.background = background
                try:
                    yield state
                finally:
                    background.cancel_scope.cancel()
        finally:
            # Running jobs stop after their current mini-batch and save what they have.
            await anyio.to_thread.run_sync(state.jobs.shutdown)
            state.registry.close()

    task_tools, required = TASK_TOOLS, frozenset()
    if config.conformance_fixtures:
        from ff_mcp.server import conformance_fixtures

        task_tools, required = task_tools | conformance_fixtures.TASK_TOOLS, conformance_fixtures.REQUIRED
    tasks = TasksExtension(TaskStore(Path(config.home) / "tasks"), task_tools, required)
    server = MCPServer(config.name, title="Forward-Forward learning", version=ff_mcp.__version__,
                       instructions=INSTRUCTIONS, lifespan=lifespan, log_level="WARNING", extensions=[tasks])
    register_tools(server, config.limits)
    register_resources(server)
    if importlib.util.find_spec("ff_mcp.server.color_tools"):
        from ff_mcp.server.color_tools import register_color_tools  # colors and GF(3) (issue 4)

        register_color_tools(server)
    from ff_mcp.server.nca_tools import register_nca_tools  # the NCA's picture strip (issue 19)

    register_nca_tools(server)
    if config.conformance_fixtures:
        conformance_fixtures.register(server)
    make_strict(server)  # after every tool is registered: unknown arguments refused, errors in one line
    return server


def register_resources(server: MCPServer) -> None:
    @server.resource("ff://models/{name}", mime_type="application/json", title="Model card",
                     description="A saved model's configuration, metrics, creation time and size, as JSON")
    def model_card(name: str, ctx: Context) -> str:
        state: AppState = ctx.request_context.lifespan_context
        try:
            validate_name(name, "name")
            card = state.registry.info(name)
        except (ValueError, NotFoundError, CheckpointError) as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return json.dumps(card.model_dump(mode="json"), indent=2)

    @server.resource("ff://skill", mime_type="text/markdown", title="How to use ff-mcp",
                     description="The repository's skill.md: how to train, predict and inspect FF models")
    def skill() -> str:
        for path in SKILL_PATHS:
            if path.is_file():
                return path.read_text(encoding="utf-8")
        raise ResourceError("skill.md is not installed: looked for " + " and ".join(str(p) for p in SKILL_PATHS))
