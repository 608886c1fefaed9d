"""`ff-mcp serve` flags: the registry directory and the limits."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import pytest

from ff_mcp.cli import build_parser
from ff_mcp.server.cli import config_from_args


def parse(*argv: str):
    return config_from_args(build_parser().parse_args(["serve", *argv]))


def test_data_dir_flag_wins_over_ff_mcp_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FF_MCP_HOME", str(tmp_path / "env"))
    assert parse("--data-dir", str(tmp_path / "flag")).home == tmp_path / "flag"
    assert parse().home == tmp_path / "env"


def test_the_default_home_is_the_user_data_directory(monkeypatch):
    monkeypatch.delenv("FF_MCP_HOME", raising=False)
    assert parse().home == Path(platformdirs.user_data_dir("ff-mcp"))


def test_limit_flags_reach_the_server_config():
    config = parse("--max-rows", "5", "--max-epochs", "7", "--max-job-seconds", "1.5", "--max-concurrent-jobs", "2")
    assert (config.limits.max_rows, config.limits.max_epochs) == (5, 7)
    assert config.limits.max_job_seconds == 1.5 and config.limits.max_concurrent_jobs == 2


def test_a_non_positive_limit_is_refused_with_its_name():
    with pytest.raises(ValueError, match="max_rows must be a number > 0, got 0"):
        parse("--max-rows", "0")


def test_print_config_starts_the_server_from_any_directory(tmp_path):
    import json
    import os
    import subprocess
    import sys

    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    printed = subprocess.run([sys.executable, "-m", "ff_mcp", "serve", "--print-config", "--data-dir", str(home)],
                             capture_output=True, text=True, timeout=60, check=True)
    entry = json.loads(printed.stdout)["mcpServers"]["ff-mcp"]
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).is_file()
    assert entry["env"] == {"FF_MCP_HOME": str(home)}
    env = {k: v for k, v in os.environ.items() if k != "FF_MCP_HOME"}
    env["PATH"] = "/usr/bin:/bin"  # a client's PATH need not hold the venv
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "c", "version": "0"}}}
    done = subprocess.run([entry["command"], *entry["args"]], input=json.dumps(init) + "\n", capture_output=True,
                          text=True, timeout=60, cwd=elsewhere, env={**env, **entry["env"]})
    answer = json.loads(done.stdout.splitlines()[0])
    assert answer["result"]["serverInfo"]["name"] == "ff-mcp", done.stderr[-2000:]
    assert (home / "models").is_dir()


def test_print_config_for_http_names_the_url():
    import json
    import subprocess
    import sys

    printed = subprocess.run([sys.executable, "-m", "ff_mcp", "serve", "--print-config", "--http", "--port", "9123"],
                             capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(printed.stdout) == {"mcpServers": {"ff-mcp": {"type": "http", "url": "http://127.0.0.1:9123/mcp"}}}
