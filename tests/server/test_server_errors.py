"""errors.py: engine and data errors reach the client as ToolError with their own text; bugs do not."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from ff_mcp.data import DatasetNotFoundError
from ff_mcp.engine import CheckpointError
from ff_mcp.server.errors import as_tool_errors, client_errors, tool_error_from

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("exc", [ValueError("epochs must be >= 1, got 0"), CheckpointError("checkpoint m is truncated"),
                                 DatasetNotFoundError("mnist files are in none of: /a, /b")])
def test_client_errors_become_tool_errors_with_the_same_text(exc):
    with pytest.raises(ToolError) as raised:
        with client_errors():
            raise exc
    assert str(raised.value) == str(exc)
    assert str(tool_error_from(exc)) == str(exc)


def test_other_exceptions_pass_through_unchanged():
    with pytest.raises(RuntimeError):
        with client_errors():
            raise RuntimeError("a bug")


async def test_the_decorator_keeps_the_schema_and_hides_bugs():
    server = MCPServer("t")

    @server.tool()
    @as_tool_errors
    def check(width: int) -> int:
        """Refuses odd widths."""
        if width % 2:
            raise ValueError(f"width must be even, got {width}")
        if width == 0:
            raise RuntimeError("secret internals")
        return width

    @server.tool()
    @as_tool_errors
    async def acheck(width: int) -> int:
        """Async twin."""
        raise ValueError(f"width {width} refused")

    async with Client(server, mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["check"].input_schema["properties"]["width"]["type"] == "integer"
        assert (await client.call_tool("check", {"width": 4})).structured_content == {"result": 4}
        odd = await client.call_tool("check", {"width": 3})
        assert odd.is_error and "width must be even, got 3" in odd.content[0].text
        bug = await client.call_tool("check", {"width": 0})
        assert bug.is_error and "secret" not in bug.content[0].text
        assert "width 5 refused" in (await client.call_tool("acheck", {"width": 5})).content[0].text
