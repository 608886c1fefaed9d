"""The transports' front door: every request is answered, and none is parsed past the size limit.

The SDK's stdio reader drops a line it cannot decode as a JSON-RPC message, so the client waits for
an answer that never comes (a lone surrogate ``"\\ud800"``, arguments nested hundreds of levels
deep, an integer of thousands of digits, ``params`` given as an array). This reader decodes each
line with the SDK's own decoder and, when that fails, answers the request with a JSON-RPC error
that says what was wrong, using the request's id when it can be read. Lines longer than
``max_request_bytes`` are refused before they are parsed (and their bytes are not kept), so a
huge request costs the server no memory.

Only the transport differs from the SDK's: messages that decode go to the same low-level server.
Over HTTP the SDK answers undecodable bodies itself (400, id null, validator text); ``screen_http``
puts the same screen in front of it, so both transports give the same answer with the request's id.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import mcp_types as types
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

log = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024  # Limits.max_request_bytes
_READ_CHUNK = 1 << 20
_ID_PREFIX = 65536  # bytes of a refused line searched for its id
_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}(?![\d.eE])|"(?:[^"\\]|\\.){0,256}")')


def error_response(request_id: Any, code: int, message: str) -> SessionMessage:
    return SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=_answerable_id(request_id),
                                             error=types.ErrorData(code=code, message=message)))


def _answerable_id(request_id: Any) -> int | str | None:
    """An id an answer can carry: an int, or a str that is valid Unicode (``"\ud800"`` is not: null)."""
    if isinstance(request_id, bool) or not isinstance(request_id, (int, str)):
        return None
    if isinstance(request_id, str):
        try:
            request_id.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return request_id


def sniff_id(prefix: bytes) -> int | str | None:
    """The id of a request that cannot be parsed, read from its first bytes; None if not found."""
    match = _ID.search(prefix[:_ID_PREFIX])
    if match is None:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    return _answerable_id(value)


def screen_line(line: bytes) -> tuple[SessionMessage | None, SessionMessage | None]:
    """(message for the server, None) when ``line`` decodes; else (None, the error to answer, or
    None when the line is not a request and so has nobody to answer)."""
    text = line.decode("utf-8", errors="replace")
    if not text.strip():
        return None, None
    try:
        message = types.jsonrpc_message_adapter.validate_json(text, by_name=False)
    except ValidationError as exc:
        return None, _refusal(line, text, exc)
    if isinstance(message, types.JSONRPCNotification) and b'"id"' in line:
        parsed = _loads(text)  # a request whose id is not a valid id (true, 1.5, {}) decodes as a notification
        if isinstance(parsed, dict) and "id" in parsed:
            return None, error_response(None, types.INVALID_REQUEST,
                                        f"Invalid request: id must be a string or an integer, got "
                                        f"{json.dumps(parsed['id'])[:40]}")
    return SessionMessage(message), None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def too_large(size: int, max_bytes: int, head: bytes) -> SessionMessage:
    log.warning("refused a request of %d bytes (max_request_bytes %d)", size, max_bytes)
    return error_response(sniff_id(head), types.INVALID_REQUEST,
                          f"Invalid request: {size} bytes exceeds the server's request size limit of {max_bytes} "
                          f"bytes (--max-request-bytes); send fewer rows per call")


def _refusal(line: bytes, text: str, exc: ValidationError) -> SessionMessage | None:
    errors = exc.errors(include_url=False)
    json_error = next((e for e in errors if e.get("type") == "json_invalid"), None)
    parsed = _loads(text)
    if isinstance(parsed, dict):
        if "method" in parsed and "id" not in parsed:
            log.warning("dropped a malformed notification: %s", _one_line(exc, json_error, "request"))
            return None
        if "method" not in parsed and ("result" in parsed or "error" in parsed):
            log.warning("dropped a malformed response from the client")
            return None
        request_id = parsed.get("id")
    elif parsed is not None:
        kind = "a batch (array)" if isinstance(parsed, list) else f"a JSON {type(parsed).__name__}"
        return error_response(None, types.INVALID_REQUEST,
                              f"Invalid request: a request must be one JSON-RPC object, got {kind}")
    else:
        request_id = sniff_id(line)
    if json_error is not None:
        return error_response(request_id, types.PARSE_ERROR, "Parse error: " + _json_problem(json_error))
    return error_response(request_id, types.INVALID_REQUEST, "Invalid request: " + _one_line(exc, None, "request"))


def _json_problem(error: dict) -> str:
    message = str(error.get("msg", "invalid JSON")).removeprefix("Invalid JSON: ")
    if "hex escape" in message or "surrogate" in message:
        message = "a string holds an invalid \\u escape (a lone surrogate such as \\ud800?)" + _where(message)
    elif "recursion limit" in message:
        message = "the request is nested too deeply" + _where(message)
    elif "number out of range" in message:
        message = "a number is out of range (integers of more than 4300 digits are refused)" + _where(message)
    return message


def _where(message: str) -> str:
    match = re.search(r" at line \d+ column \d+", message)
    return match.group(0) if match else ""


def _one_line(exc: ValidationError, json_error: dict | None, what: str) -> str:
    """The request's own problem: for a tools/call whose params are not an object, 'params must be an object'."""
    if json_error is not None:
        return _json_problem(json_error)
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error.get("loc", ())]
        if loc and loc[0] == "JSONRPCRequest":
            field = ".".join(loc[1:]) or what
            return f"{field}: {str(error.get('msg', 'invalid')).lower()}"
    return f"not a JSON-RPC {what} (needs jsonrpc \"2.0\", an id, a method and object params)"


# ---- the transport ------------------------------------------------------------------------------


async def _lines(fd: int, max_bytes: int) -> AsyncIterator[tuple[bytes, int]]:
    """Complete lines of ``fd`` as (line, size); a line over ``max_bytes`` comes as (its first bytes, size)
    with its other bytes dropped as they arrive."""
    buffer = bytearray()
    oversize = 0  # > 0 while dropping a too-long line: its size so far
    head = b""
    while True:
        chunk = await anyio.to_thread.run_sync(os.read, fd, _READ_CHUNK, abandon_on_cancel=True)
        if not chunk:
            if oversize:
                yield head, oversize
            elif buffer.strip():
                yield bytes(buffer), len(buffer)
            return
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            part = chunk[start:] if newline < 0 else chunk[start:newline]
            if oversize:
                oversize += len(part)
            else:
                buffer += part
                if len(buffer) > max_bytes:
                    head, oversize = bytes(buffer[:_ID_PREFIX]), len(buffer)
                    buffer.clear()
            if newline < 0:
                break
            if oversize:
                yield head, oversize
                oversize, head = 0, b""
            else:
                yield bytes(buffer), len(buffer)
                buffer.clear()
            start = newline + 1


@asynccontextmanager
async def stdio_transport(max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES):
    """(read_stream, write_stream) over this process's stdin and stdout.

    While serving, fd 0 reads the null device and fd 1 goes to stderr, so stray prints and child
    processes cannot corrupt the wire; both are restored on exit.
    """
    if max_request_bytes < 1:
        raise ValueError(f"max_request_bytes must be >= 1, got {max_request_bytes}")
    sys.stdout.flush()
    in_fd, out_fd = os.dup(0), os.dup(1)
    saved_in, saved_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    out = os.fdopen(out_fd, "wb")  # buffered: write() puts out every byte, flush() after each message
    read_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
    write_stream, write_reader = create_context_streams[SessionMessage](0)

    async def reader() -> None:
        try:
            async with read_writer:
                async for line, size in _lines(in_fd, max_request_bytes):
                    if size > max_request_bytes:
                        await write_stream.send(too_large(size, max_request_bytes, line))
                        continue
                    message, refusal = screen_line(line)
                    if message is not None:
                        await read_writer.send(message)
                    elif refusal is not None:
                        await write_stream.send(refusal)
        except anyio.ClosedResourceError:
            pass

    async def writer() -> None:
        try:
            async with write_reader:
                async for session_message in write_reader:
                    try:
                        data = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    except Exception:  # noqa: BLE001 - one unserialisable answer must not end the transport
                        log.exception("an answer could not be serialised; sending an internal error instead")
                        request_id = getattr(session_message.message, "id", None)
                        data = error_response(request_id, types.INTERNAL_ERROR, "internal error: the answer "
                                              "could not be serialised").message.model_dump_json(by_alias=True)
                    await anyio.to_thread.run_sync(_write_line, out, data.encode("utf-8"))
        except anyio.ClosedResourceError:
            pass

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            yield read_stream, write_stream
            tg.cancel_scope.cancel()
    finally:
        with suppress(OSError):
            out.flush()
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        for fd in (saved_in, saved_out):  # in_fd stays open: a reader thread may still block on it
            with suppress(OSError):
                os.close(fd)
        with suppress(OSError):
            out.close()


def _write_line(out, data: bytes) -> None:
    out.write(data + b"\n")
    out.flush()


async def run_stdio(server, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> None:
    """Serve ``server`` (an MCPServer) over stdio until stdin closes."""
    lowlevel = server._lowlevel_server  # the SDK's own MCPServer.run_stdio_async does the same
    async with stdio_transport(max_request_bytes) as (read_stream, write_stream):
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())


# ---- HTTP ----------------------------------------------------------------------------------------


def screen_http(app, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES):
    """ASGI middleware: a POSTed body over ``max_request_bytes`` is refused (413) before it is read
    whole, and one that does not decode gets the stdio transport's JSON-RPC error (400); others
    reach ``app`` unchanged."""

    async def reply(send, status: int, message: SessionMessage) -> None:
        body = message.message.model_dump_json(by_alias=True, exclude_unset=True).encode("utf-8")
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def middleware(scope, receive, send) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            return await app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_request_bytes:
            return await reply(send, 413, too_large(int(declared), max_request_bytes, b""))
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > max_request_bytes:
                return await reply(send, 413, too_large(len(body), max_request_bytes, bytes(body[:_ID_PREFIX])))
            if not message.get("more_body", False):
                break
        whole = bytes(body)
        del body
        decoded, refusal = screen_line(whole)
        if refusal is None and decoded is not None:
            refusal = _name_header_mismatch(scope, decoded)
        del decoded  # the SDK decodes the body again; this copy must not live through the call
        if refusal is not None:
            return await reply(send, 400, refusal)
        pending: list[bytes] = [whole]
        del whole

        async def replay():
            if pending:  # handed over once, then no longer held here
                return {"type": "http.request", "body": pending.pop(), "more_body": False}
            return await receive()

        return await app(scope, replay, send)

    return middleware


HEADER_MISMATCH = -32020  # SEP-2243: a routing header disagrees with the body


def _name_header_mismatch(scope, decoded: SessionMessage) -> SessionMessage | None:
    """SEP-2243: an ``Mcp-Name`` header on a tasks/* request must equal its ``params.taskId`` (the SDK checks
    the headers of the methods it knows; the tasks methods are ours)."""
    message = decoded.message
    method = getattr(message, "method", "")
    if not isinstance(message, types.JSONRPCRequest) or not method.startswith("tasks/"):
        return None
    header = dict(scope.get("headers") or []).get(b"mcp-name")
    task_id = (message.params or {}).get("taskId")
    if header is None or header.decode("utf-8", "replace") == task_id:
        return None
    return error_response(message.id, HEADER_MISMATCH,
                          f"Mcp-Name header {header.decode('utf-8', 'replace')!r} does not match params.taskId "
                          f"{task_id!r}")


async def run_http(server, host: str, port: int, max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> None:
    """Serve ``server`` (an MCPServer) over streamable HTTP at http://host:port/mcp behind ``screen_http``."""
    import uvicorn

    app = server.streamable_http_app(max_request_body_size=max_request_bytes, host=host)
    config = uvicorn.Config(screen_http(app, max_request_bytes), host=host, port=port, log_level="warning")
    await uvicorn.Server(config).serve()
