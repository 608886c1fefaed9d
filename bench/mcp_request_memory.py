"""Server memory while it serves the largest request its limits allow, as a multiple of the request's bytes.

    .venv/bin/python bench/mcp_request_memory.py [--features 784] [--no-record]

For each tool (ff_predict, ff_train) and each way of writing numbers (full-precision floats, the
most bytes per number; two-decimal values, the most numbers per byte) a fresh ``ff-mcp serve``
(stdio, default limits) gets one request as large as ``max_request_bytes`` and ``max_rows`` allow.
The server's resident memory is read from /proc before the request (after a warm-up call) and its
peak (VmHWM) after the answer; the result is the peak's rise over the request's size. Also checked:
a request one byte over the limit is refused without its memory being taken.
Writes bench/results/mcp-request-memory.json (never overwriting an earlier file).
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ff_mcp.bench import record  # noqa: E402
from ff_mcp.engine import NetworkConfig, build_network  # noqa: E402
from ff_mcp.server.limits import Limits  # noqa: E402
from ff_mcp.server.registry import ModelRegistry  # noqa: E402

MIB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Server:
    def __init__(self, home: Path, limits: Limits) -> None:
        flags = ["--max-rows", str(limits.max_rows), "--max-request-bytes", str(limits.max_request_bytes)]
        self.proc = subprocess.Popen([sys.executable, "-m", "ff_mcp", "serve", "--data-dir", str(home), *flags],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.answers: dict = {}
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0

    def _read(self) -> None:
        for line in self.proc.stdout:
            message = json.loads(line)
            with self.cond:
                self.answers[message.get("id")] = message
                self.cond.notify_all()

    def send(self, method: str, params: dict | None = None, raw: bytes | None = None, timeout: float = 600) -> dict:
        """Send a request (``raw``: its bytes, made with id ``self.next_id + 1``) and wait for its answer."""
        self.next_id += 1
        request_id = self.next_id
        if raw is None:
            raw = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}}).encode()
        self.proc.stdin.write(raw + b"\n")
        self.proc.stdin.flush()
        with self.cond:
            if not self.cond.wait_for(lambda: request_id in self.answers, timeout):
                raise TimeoutError(method)
            return self.answers.pop(request_id)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(60)


def request_bytes(request_id: int, tool: str, arguments: dict) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                       "params": {"name": tool, "arguments": arguments}}, separators=(",", ":")).encode()


def largest_rows(tool: str, features: int, number, limits: Limits) -> tuple[list[list[float]], list[int]]:
    """As many rows as fit in max_request_bytes (and max_rows)."""
    rng = random.Random(0)
    row_bytes = len(json.dumps([number(rng) for _ in range(features)], separators=(",", ":"))) + 8
    rows = min(limits.max_rows, int(limits.max_request_bytes * 0.97) // row_bytes)
    x = [[number(rng) for _ in range(features)] for _ in range(rows)]
    y = [i % 10 for i in range(rows)]
    return x, y


def measure(tool: str, numbers: str, features: int, limits: Limits) -> dict:
    number = (lambda r: r.random()) if numbers == "full-precision" else (lambda r: round(r.random(), 2))
    x, y = largest_rows(tool, features, number, limits)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        network = build_network(NetworkConfig(in_features=features, num_classes=10, hidden=(500, 500)))
        ModelRegistry(home).save("m", network, {"predict_method": "goodness"}, {"state": "done"}, {})
        server = Server(home, limits)
        try:
            server.send("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                       "clientInfo": {"name": "bench", "version": "0"}})
            server.proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
            server.proc.stdin.flush()
            warm = server.send("tools/call", {"name": "ff_predict", "arguments": {"model": "m", "x": x[:10]}})
            assert not warm["result"]["isError"], warm
            time.sleep(0.5)
            before = status_kib(server.proc.pid, "VmRSS")
            arguments = ({"model": "m", "x": x} if tool == "ff_predict" else
                         {"name": "t", "x": x, "y": y, "hidden": [500, 500], "epochs": 1, "batch_size": 100,
                          "wait_seconds": 600})
            raw = request_bytes(server.next_id + 1, tool, arguments)
            assert len(raw) <= limits.max_request_bytes, len(raw)
            started = time.perf_counter()
            answer = server.send("tools/call", raw=raw)
            seconds = time.perf_counter() - started
            assert not answer["result"]["isError"], str(answer)[:500]
            peak = status_kib(server.proc.pid, "VmHWM")
            raw = request_bytes(server.next_id + 1, tool, arguments)
            padded = raw[:-1] + b" " * (limits.max_request_bytes - len(raw) + 1) + b"}"  # one byte over the limit
            over = server.send("tools/call", raw=padded)
            refused = over.get("error", {}).get("message", "")
            peak_after_refusal = status_kib(server.proc.pid, "VmHWM")
        finally:
            server.close()
    rise = (peak - before) * 1024
    return {"tool": tool, "numbers": numbers, "rows": len(x), "features": features, "request_bytes": len(raw),
            "rss_before_mib": round(before / 1024, 1), "peak_mib": round(peak / 1024, 1),
            "peak_rise_mib": round(rise / MIB, 1), "rise_over_request": round(rise / len(raw), 2),
            "seconds": round(seconds, 2), "oversize_refused": "request size limit" in refused,
            "peak_rise_from_oversize_mib": round((peak_after_refusal - peak) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    limits = Limits()
    rows = []
    for tool in ("ff_predict", "ff_train"):
        for numbers in ("full-precision", "two-decimal"):
            row = measure(tool, numbers, args.features, limits)
            print(json.dumps(row), flush=True)
            rows.append(row)
    payload = {"max_request_bytes": limits.max_request_bytes, "max_rows": limits.max_rows,
               "worst_rise_over_request": max(r["rise_over_request"] for r in rows), "runs": rows}
    if not args.no_record:
        command = "python bench/mcp_request_memory.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        path = record("mcp-request-memory", f"f{args.features}", payload, torch.device("cpu"), command=command)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
