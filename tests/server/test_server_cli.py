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
