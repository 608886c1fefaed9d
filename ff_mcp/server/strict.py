"""Strict tool inputs: unknown arguments are refused, and a wrong argument gets one plain line.

The SDK builds each tool's argument model from its signature and ignores keys it does not know,
so ``ff_train(..., optimiser="adam")`` would train with the default optimizer and say nothing; its
validation errors carry pydantic's class names, type codes and a documentation URL. ``make_strict``
turns every registered tool's argument model into one that forbids extra keys (its schema then says
``additionalProperties: false``) and rewrites validation failures as one line that names the field,
what was wrong and what is allowed.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools.base import Tool
from pydantic import ConfigDict, ValidationError

from ff_mcp.tools import unknown_arguments

_MAX_SHOWN = 3  # errors described in one message; the rest are counted
_BRANCH_NAMES = {"str", "int", "float", "bool", "none", "dict", "list", "nullable"}


def make_strict(server: MCPServer) -> None:
    """Make every tool registered on ``server`` refuse unknown arguments and describe bad ones plainly.

    Call after the tools are registered. The SDK reads ``fn_metadata.arg_model`` and ``parameters``
    when a call comes and when tools are listed, so replacing them takes effect at once.
    """
    manager = server._tool_manager  # the SDK keeps registered tools here (MCPServer.add_tool writes it)
    for tool in manager.list_tools():
        base = tool.fn_metadata.arg_model
        if base.model_config.get("extra") != "forbid":
            strict = type(base.__name__, (base,), {
                "model_config": ConfigDict(**{**base.model_config, "extra": "forbid"}),
                "__module__": base.__module__,
            })
            tool.fn_metadata.arg_model = strict
            tool.parameters = strict.model_json_schema(by_alias=True)
        if not isinstance(tool, StrictTool):
            manager._tools[tool.name] = StrictTool(**{name: getattr(tool, name) for name in Tool.model_fields})


class StrictTool(Tool):
    """A tool whose argument errors read as one line naming the field (see ``describe_validation``)."""

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            return await super().run(arguments, context, convert_result=convert_result)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError) and cause.title == self.fn_metadata.arg_model.__name__:
                accepted = [f.alias or name for name, f in self.fn_metadata.arg_model.model_fields.items()]
                message = describe_validation(cause, self.name, accepted)
                raise ToolError(f"Error executing tool {self.name}: {message}") from None
            raise


def describe_validation(exc: ValidationError, tool: str, accepted: list[str]) -> str:
    """One line for a failed argument validation: unknown keys named with what the tool accepts;
    each other problem as ``field: what is wrong (got value)``; no type codes, class names or URLs."""
    errors = exc.errors(include_url=False)
    unknown = [str(e["loc"][0]) for e in errors if e.get("type") == "extra_forbidden" and e.get("loc")]
    parts = [unknown_arguments(tool, unknown, accepted)] if unknown else []
    others = [e for e in errors if e.get("type") != "extra_forbidden"]
    for error in others[:_MAX_SHOWN]:
        field = field_path(error.get("loc", ()))
        if error.get("type") == "missing":
            parts.append(f"{field}: required but not given")
            continue
        message = str(error.get("msg", "invalid value")).replace("\n", " ")
        message = message[0].lower() + message[1:] if message else message
        parts.append(f"{field}: {message} (got {short_value(error.get('input'))})")
    if len(others) > _MAX_SHOWN:
        more = len(others) - _MAX_SHOWN
        parts.append(f"and {more} more problem{'s' if more > 1 else ''} in the same call")
    return "; ".join(parts)


def field_path(loc: tuple) -> str:
    """('x', 3, 'float') -> 'x[3]': list indices in brackets, union-branch tags dropped."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _BRANCH_NAMES or any(c in str(part) for c in "[]()"):
            continue
        else:
            path += ("." if path else "") + str(part)
    return path or "arguments"


def short_value(value: Any) -> str:
    """A value as a caller would recognise it, never longer than a few dozen characters."""
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return f"an object with keys {', '.join(repr(k) for k in list(value)[:5])}" + (", ..." if len(value) > 5 else "")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits"
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."
