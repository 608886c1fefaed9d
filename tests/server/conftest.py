"""Shared fixtures for the MCP server tests: a temporary registry, small limits, tiny data."""

from __future__ import annotations

import random

import pytest

from ff_mcp.server import Limits, ServerConfig, build_server


@pytest.fixture
def small_limits():
    return Limits(max_rows=200, max_features=16, max_classes=10, max_hidden=64, max_depth=3, max_epochs=50,
                  max_batch_size=100, max_wait_seconds=60, max_concurrent_jobs=1, max_queued_jobs=4)


@pytest.fixture
def server(home, small_limits):
    return build_server(ServerConfig(home=home, limits=small_limits))


def blobs(rows: int = 40, features: int = 4, classes: int = 2, seed: int = 0) -> tuple[list[list[float]], list[int]]:
    """Separable patterns: class c is high in the features j with j % classes == c, plus noise."""
    rng = random.Random(seed)
    x, y = [], []
    for i in range(rows):
        label = i % classes
        x.append([(1.0 if j % classes == label else 0.0) + rng.uniform(-0.2, 0.2) for j in range(features)])
        y.append(label)
    return x, y


@pytest.fixture
def tiny_data():
    return blobs()


def save_untrained(home, name: str, in_features: int = 4, num_classes: int = 2, hidden=(8, 8)):
    """Put an untrained (but valid) model into the registry at `home`, without a training run."""
    from ff_mcp.engine import NetworkConfig, build_network
    from ff_mcp.server.registry import ModelRegistry

    network = build_network(NetworkConfig(in_features=in_features, num_classes=num_classes, hidden=hidden,
                                          label_mode="concat"))
    return ModelRegistry(home).save(name, network, {"predict_method": "goodness"}, {"state": "done"}, {})


# ---- a raw newline-delimited JSON-RPC client for subprocess tests ---------------------------

import json as _json
import os as _os
import subprocess as _subprocess
import sys as _sys
import threading as _threading
import queue as _queue
import time as _time


def serve_command(home, *extra: str) -> list[str]:
    return [_sys.executable, "-m", "ff_mcp", "serve", "--data-dir", str(home), *extra]


class RawStdioServer:
    """`ff-mcp serve` as a subprocess spoken to line by line; every stdout line must be JSON-RPC."""

    def __init__(self, home, *extra: str) -> None:
        env = {**_os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = _subprocess.Popen(serve_command(home, *extra), stdin=_subprocess.PIPE, stdout=_subprocess.PIPE,
                                      stderr=_subprocess.PIPE, env=env, text=True, bufsize=1)
        self.lines: _queue.Queue = _queue.Queue()
        self.non_json: list[str] = []
        self.stderr: list[str] = []
        _threading.Thread(target=self._read, daemon=True).start()
        _threading.Thread(target=self._read_err, daemon=True).start()
        self._id = 0

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.lines.put(_json.loads(line))
            except ValueError:
                self.non_json.append(line)

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def send(self, message: dict) -> None:
        self.proc.stdin.write(_json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def send_raw(self, line: str) -> None:
        """Write ``line`` (no newline) as it is: for requests json.dumps would not produce."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def answer(self, request_id, timeout: float = 60.0) -> dict:
        """The next message with this id (others are dropped)."""
        deadline = _time.monotonic() + timeout
        while True:
            message = self.lines.get(timeout=max(0.01, deadline - _time.monotonic()))
            if message.get("id") == request_id:
                return message

    def request(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        self._id += 1
        self.send({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}})
        while True:
            message = self.lines.get(timeout=timeout)
            if message.get("id") == self._id:
                return message

    def initialize(self) -> dict:
        out = self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                          "clientInfo": {"name": "raw-test", "version": "0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return out

    def call(self, tool: str, arguments: dict, timeout: float = 60.0) -> dict:
        return self.request("tools/call", {"name": tool, "arguments": arguments}, timeout)["result"]

    def close(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                return self.proc.wait(timeout)
            except _subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()
