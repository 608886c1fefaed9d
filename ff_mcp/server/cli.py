"""``ff-mcp serve``: run the MCP server over stdio (default) or streamable HTTP.

Nothing but the protocol is written to stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path

log = logging.getLogger(__name__)

_LIMIT_HELP = {
    "max_rows": "rows of x per call",
    "max_features": "features per row",
    "max_classes": "distinct labels",
    "max_hidden": "width of a hidden layer",
    "max_depth": "number of hidden layers",
    "max_epochs": "epochs per job",
    "max_batch_size": "mini-batch size",
    "max_job_seconds": "wall time of one job (it stops and saves)",
    "max_wait_seconds": "longest ff_train wait_seconds",
    "max_concurrent_jobs": "jobs training at once (others queue)",
    "max_queued_jobs": "queued + running jobs",
    "max_jobs_per_client": "queued + running jobs of one HTTP client",
    "max_request_bytes": "bytes of one request, refused before parsing",
    "max_call_seconds": "wall time of one predict/goodness/color call (it stops)",
    "max_concurrent_calls": "predict/goodness/color calls computing at once",
    "max_queued_calls": "calls waiting for a slot before the server refuses",
}


def add_parser(sub) -> None:
    from ff_mcp.server.limits import Limits

    p = sub.add_parser("serve", help="run the MCP tool server (stdio by default)",
                       description="Run the ff-mcp MCP server. stdio unless --http is given.")
    p.add_argument("--http", action="store_true", help="serve streamable HTTP at http://HOST:PORT/mcp")
    p.add_argument("--print-config", action="store_true",
                   help="print a ready MCP client configuration (Claude Desktop / VS Code style JSON) with this "
                        "installation's absolute command path, and exit")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    p.add_argument("--data-dir", default=None,
                   help="model registry directory (default: $FF_MCP_HOME, else the user data directory)")
    p.add_argument("--dataset-dir", default=None, help="directory searched first for MNIST-style data sets")
    p.add_argument("--conformance-fixtures", action="store_true",
                   help="also serve the fixture tools (greet, slow_compute, failing_job, ...) that the official "
                        "MCP conformance suite's tasks scenarios call; for bench/conformance/run.sh only")
    defaults = Limits()
    for f in fields(Limits):
        kind = float if isinstance(getattr(defaults, f.name), float) else int
        p.add_argument("--" + f.name.replace("_", "-"), type=kind, default=getattr(defaults, f.name),
                       help=f"limit: {_LIMIT_HELP.get(f.name, f.name)} (default {getattr(defaults, f.name)})")
    p.set_defaults(func=cmd_serve)


def config_from_args(args: argparse.Namespace):
    from ff_mcp.server.limits import Limits
    from ff_mcp.server.state import ServerConfig, default_home

    limits = Limits(**{f.name: getattr(args, f.name) for f in fields(Limits)})
    home = Path(args.data_dir).expanduser() if args.data_dir else default_home()
    dataset_dir = Path(args.dataset_dir).expanduser() if args.dataset_dir else None
    return ServerConfig(home=home, dataset_dir=dataset_dir, limits=limits,
                        conformance_fixtures=getattr(args, "conformance_fixtures", False))


def command_path() -> list[str]:
    """How to start this installation's server from any directory: the ff-mcp console script beside
    this interpreter (absolute), else this interpreter with -m ff_mcp."""
    script = Path(sys.executable).parent / ("ff-mcp.exe" if sys.platform == "win32" else "ff-mcp")
    if script.is_file():
        return [str(script.absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "ff_mcp"]


def client_config(args: argparse.Namespace, config) -> dict:
    """The mcpServers block a client needs: stdio with absolute paths, or the HTTP URL with --http."""
    if args.http:
        return {"mcpServers": {"ff-mcp": {"type": "http", "url": f"http://{args.host}:{args.port}/mcp"}}}
    from ff_mcp.server.limits import Limits

    command, *head = command_path()
    extra = ["--dataset-dir", str(Path(args.dataset_dir).expanduser().absolute())] if args.dataset_dir else []
    defaults = Limits()
    for f in fields(Limits):  # the limits given on this command line travel with the configuration
        value = getattr(config.limits, f.name)
        if value != getattr(defaults, f.name):
            extra += ["--" + f.name.replace("_", "-"), str(value)]
    if getattr(args, "conformance_fixtures", False):
        extra.append("--conformance-fixtures")
    return {"mcpServers": {"ff-mcp": {"command": command, "args": [*head, "serve", *extra],
                                      "env": {"FF_MCP_HOME": str(Path(config.home).absolute())}}}}


def cmd_serve(args: argparse.Namespace) -> int:
    import anyio

    from ff_mcp.server.app import build_server
    from ff_mcp.server.wire import run_http, run_stdio

    config = config_from_args(args)
    if args.print_config:
        print(json.dumps(client_config(args, config), indent=2))
        return 0
    server = build_server(config)
    if args.http:
        if not 1 <= args.port <= 65535:
            raise ValueError(f"--port must be in [1, 65535], got {args.port}")
        log.warning("ff-mcp serving streamable HTTP at http://%s:%d/mcp (models in %s)", args.host, args.port,
                    config.home)
        anyio.run(run_http, server, args.host, args.port, config.limits.max_request_bytes)
    else:
        anyio.run(run_stdio, server, config.limits.max_request_bytes)
    return 0
