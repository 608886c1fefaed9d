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
