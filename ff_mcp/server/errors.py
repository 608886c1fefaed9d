"""One way to turn the errors a client can cause into ToolError, shared by every tool module.

Engine and data errors already say what was wrong and what is allowed; the server passes their
text on unchanged. Anything else is a bug: the SDK reports it as a generic error and logs the
traceback on stderr, so no internals reach the wire.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from mcp.server.mcpserver.exceptions import ToolError

from ff_mcp.data import DatasetNotFoundError
from ff_mcp.engine import CheckpointError
from ff_mcp.server.executor import CallStopped



class NotFoundError(LookupError):
    """An unknown model or job; the message names it and says what exists."""


# CheckpointError is a ValueError and DatasetNotFoundError a FileNotFoundError; both named for readers.
CLIENT_ERRORS: tuple[type[Exception], ...] = (ValueError, CheckpointError, DatasetNotFoundError, NotFoundError,
                                              CallStopped)

F = TypeVar("F", bound=Callable[..., Any])


def tool_error_from(exc: BaseException) -> ToolError:
    """Return a ToolError carrying exc's message."""
    if isinstance(exc, ToolError):
        return exc
    return ToolError(str(exc) or type(exc).__name__)


@contextmanager
def client_errors() -> Iterator[None]:
    """Re-raise ValueError / CheckpointError / DatasetNotFoundError / NotFoundError as ToolError with the same text."""
    try:
        yield
    except ToolError:
        raise
    except CLIENT_ERRORS as exc:
        raise tool_error_from(exc) from None


def as_tool_errors(func: F) -> F:
    """Decorator form of ``client_errors`` for sync and async tool functions (keeps the signature)."""
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with client_errors():
                return await func(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with client_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
