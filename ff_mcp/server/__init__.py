"""The MCP face of ff-mcp: tools for training jobs, prediction, goodness and a persistent model registry.

``build_server(ServerConfig(...))`` returns an ``MCPServer``; ``ff-mcp serve`` runs it over stdio
or streamable HTTP.
"""

from ff_mcp.server.app import build_server
from ff_mcp.server.errors import as_tool_errors, client_errors, tool_error_from
from ff_mcp.server.limits import Limits
from ff_mcp.server.registry import ModelRegistry, validate_name
from ff_mcp.server.state import AppState, ServerConfig

__all__ = ["AppState", "Limits", "ModelRegistry", "ServerConfig", "as_tool_errors", "build_server",
           "client_errors", "tool_error_from", "validate_name"]
