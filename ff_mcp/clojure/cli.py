"""``ff-mcp repl``: a Clojure REPL inside ff-mcp's JVM, on the terminal or (with --port) as a loopback socket REPL."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "repl",
        help="Clojure REPL with music-topos ff-color-learning on this process's engine",
        description="Start a Clojure REPL in a JVM hosted by this process (JPype). The namespaces "
        "music-topos.parallel-color-fork (alias pcf), ff-mcp.bridge and ff-mcp.colors are loaded and "
        "their calls reach the torch engine directly. Needs: " "apt-get install default-jre-headless "
        "clojure libdata-json-clojure.",
    )
    p.add_argument("--port", type=int, default=None,
                   help="serve a Clojure socket REPL on 127.0.0.1:PORT instead (0 picks a free port)")
    p.set_defaults(func=cmd_repl)


def cmd_repl(args: argparse.Namespace) -> int:
    from ff_mcp.clojure.jvm import ClojureUnavailable
    from ff_mcp.clojure.repl import serve_socket_repl, terminal_repl

    try:
        if args.port is not None:
            if not 0 <= args.port <= 65535:
                raise ValueError(f"--port must be in [0, 65535], got {args.port}")
            serve_socket_repl(args.port)
        else:
            terminal_repl()
    except ClojureUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
