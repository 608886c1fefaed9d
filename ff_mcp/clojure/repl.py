"""Clojure REPLs inside this process's JVM: on the terminal, or as a socket REPL on 127.0.0.1.

Both run in the JPype-hosted JVM with the in-process engine registered, so (pcf/ff-color-learning ...)
trains on this process's torch engine. The Clojure side is ff-mcp.bridge.repl.
"""

from __future__ import annotations

import logging
import sys
import threading

from ff_mcp.clojure import jvm

log = logging.getLogger(__name__)

REPL_NS = "ff-mcp.bridge.repl"


def _prepare() -> None:
    jvm.start()
    jvm.require(REPL_NS)


def terminal_repl() -> None:
    """Run an interactive Clojure REPL on stdin/stdout until end of input (Ctrl-D)."""
    _prepare()
    sys.stdout.flush()
    try:
        jvm.var(REPL_NS, "terminal-repl").invoke()
    finally:
        _release()


def start_socket_repl(port: int = 0) -> int:
    """Start a Clojure socket REPL on 127.0.0.1:`port` (0 picks a free port) and return the port."""
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {port}")
    _prepare()
    return int(jvm.var(REPL_NS, "start-socket-repl").invoke(jvm.to_clj(port)))


def stop_socket_repl() -> bool:
    """Stop the socket REPL; return True if one was running."""
    return bool(jvm.var(REPL_NS, "stop-socket-repl").invoke())


def serve_socket_repl(port: int, stop: threading.Event | None = None) -> None:
    """Serve a socket REPL on 127.0.0.1:`port` until `stop` is set or Ctrl-C; announce the port on stderr.

    Ctrl-C (SIGINT) is handled by the hosted JVM itself: it runs its shutdown hooks (which stop any
    stdio servers the bridge started) and ends the process with status 130.
    """
    bound = start_socket_repl(port)
    print(f"ff-mcp: Clojure socket REPL listening on 127.0.0.1:{bound} (Ctrl-C stops it)", file=sys.stderr,
          flush=True)
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stop_socket_repl()
        _release()


def _release() -> None:
    """Stop stdio servers the REPL started and the agent pool, so the JVM can exit."""
    try:
        jvm.var("ff-mcp.bridge", "close-all!").invoke()
        jvm.var("clojure.core", "shutdown-agents").invoke()
    except Exception:  # the JVM is going away anyway
        log.debug("release after REPL failed", exc_info=True)
