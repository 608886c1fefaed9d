"""The fixture tools the official MCP conformance suite's tasks scenarios call, so the suite can
check ff-mcp's Tasks extension (``server/tasks.py``) end to end. Served only with
``ff-mcp serve --conformance-fixtures`` (bench/conformance/run.sh); no model is touched.

- ``greet``: a quick tool that never becomes a task;
- ``slow_compute``: sleeps ``seconds`` then answers (a task; cancellable while it sleeps);
- ``failing_job``: a tool error after about a second (the task completes with ``isError``); runs only
  as a task, as the suite's required-task check expects;
- ``protocol_error_job``: a JSON-RPC error (the task fails);
- ``test_tool_with_task``: runs only as a task (a call without the opt-in gets -32021).
"""

from __future__ import annotations

from typing import Annotated

import anyio
import mcp_types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from pydantic import Field

TASK_TOOLS = frozenset({"slow_compute", "protocol_error_job"})
REQUIRED = frozenset({"test_tool_with_task", "failing_job"})  # the suite's required-task check calls failing_job


def register(server: MCPServer) -> None:
    @server.tool(description="Say hello (conformance fixture; never a task).")
    def greet(name: Annotated[str, Field(max_length=200)] = "World") -> str:
        return f"Hello, {name}!"

    @server.tool(description="Sleep, then answer (conformance fixture; a task when the client opts in).")
    async def slow_compute(seconds: Annotated[float, Field(ge=0, le=300)] = 1.0,
                           label: Annotated[str, Field(max_length=200)] = "") -> str:
        await anyio.sleep(seconds)
        return f"slow_compute {label} done after {seconds:g} s"

    @server.tool(description="Fail as a tool after about a second (conformance fixture).")
    async def failing_job() -> str:
        await anyio.sleep(1.0)
        raise ToolError("failing_job failed, as it always does")

    @server.tool(description="Fail with a JSON-RPC error (conformance fixture).")
    async def protocol_error_job() -> str:
        await anyio.sleep(0.2)
        raise MCPError(types.INTERNAL_ERROR, "protocol_error_job: a protocol-level failure, as intended")

    @server.tool(description="Runs only as a task (conformance fixture).")
    async def test_tool_with_task() -> str:
        await anyio.sleep(0.2)
        return "test_tool_with_task done"
