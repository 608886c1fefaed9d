"""Fixtures shared by the MCP server tests (tests/server and the tests that start a server)."""

import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(params=["legacy", "auto"])
def mode(request):
    """legacy: initialize handshake over JSON-RPC streams; auto: the 2026-07-28 stateless protocol."""
    return request.param


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def small_server(tmp_path):
    """An MCP server over a fresh model home (tmp_path/home) with limits sized for digits-scale tests."""
    from ff_mcp.server import Limits, ServerConfig, build_server

    limits = Limits(max_rows=2000, max_features=64, max_classes=10, max_hidden=64, max_depth=3, max_epochs=10,
                    max_batch_size=100, max_wait_seconds=120, max_concurrent_jobs=1, max_queued_jobs=4)
    return build_server(ServerConfig(home=tmp_path / "home", limits=limits))
