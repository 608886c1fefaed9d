"""MCP latency over stdio: server cold start, and the round trip of ff_goodness on a small model.

    .venv/bin/python bench/mcp_latency.py [--calls 500] [--starts 5]

Goal: ff_goodness p50 <= 5 ms. Two clients are timed: a raw newline-delimited JSON-RPC client
(what a thin client such as the Clojure side pays) and the official SDK's ``Client`` over stdio.
Cold start is the time from spawning ``python -m ff_mcp serve`` to the initialize response, and to
the first tools/list answer. Writes bench/results/mcp-latency.json with command, machine and date.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ff_mcp.bench import record  # noqa: E402
from ff_mcp.engine import NetworkConfig, build_network  # noqa: E402
from ff_mcp.server.registry import ModelRegistry  # noqa: E402

MODEL = "latency"
IN_FEATURES, HIDDEN, CLASSES = 64, (100, 100), 10  # digits-sized


def serve_args(home: Path) -> list[str]:
    return [sys.executable, "-m", "ff_mcp", "serve", "--data-dir", str(home)]


class Raw:
    def __init__(self, home: Path) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(serve_args(home), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1, cwd=ROOT)
        self.next_id = 0

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                          "params": params}) + "\n")
        self.proc.stdin.flush()
        while True:
            message = json.loads(self.proc.stdout.readline())
            if message.get("id") == self.next_id:
                return message

    def initialize(self) -> None:
        self.request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                    "clientInfo": {"name": "bench", "version": "0"}})
        self.proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(1000 * statistics.median(ordered), 3), "p90_ms": round(1000 * pick(0.9), 3),
            "p99_ms": round(1000 * pick(0.99), 3), "mean_ms": round(1000 * statistics.fmean(ordered), 3),
            "calls": len(ordered)}


def cold_start(home: Path, starts: int) -> dict[str, float]:
    to_init, to_list = [], []
    for _ in range(starts):
        raw = Raw(home)
        raw.initialize()
        to_init.append(time.perf_counter() - raw.started)
        raw.request("tools/list", {})
        to_list.append(time.perf_counter() - raw.started)
        raw.close()
    return {"initialize_s_median": round(statistics.median(to_init), 3),
            "first_tools_list_s_median": round(statistics.median(to_list), 3),
            "initialize_s_all": [round(t, 3) for t in to_init], "starts": starts}


def raw_goodness(home: Path, rows: list[list[float]], calls: int) -> dict[str, float]:
    raw = Raw(home)
    raw.initialize()
    params = {"name": "ff_goodness", "arguments": {"model": MODEL, "x": rows}}
    for _ in range(20):  # warm-up: checkpoint load and cache, first torch calls
        assert not raw.request("tools/call", params)["result"]["isError"]
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        raw.request("tools/call", params)
        samples.append(time.perf_counter() - t0)
    raw.close()
    return percentiles(samples)


def sdk_goodness(home: Path, rows: list[list[float]], calls: int, mode: str) -> dict[str, float]:
    import anyio
    from mcp import Client, StdioServerParameters

    async def run() -> list[float]:
        params = StdioServerParameters(command=sys.executable, args=serve_args(home)[1:], cwd=str(ROOT))
        async with Client(params, mode=mode) as client:
            args = {"model": MODEL, "x": rows}
            for _ in range(20):
                await client.call_tool("ff_goodness", args)
            samples = []
            for _ in range(calls):
                t0 = time.perf_counter()
                await client.call_tool("ff_goodness", args)
                samples.append(time.perf_counter() - t0)
            return samples

    return percentiles(anyio.run(run))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1, help="rows of x per ff_goodness call")
    parser.add_argument("--results-dir", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ff-mcp-latency-") as tmp:
        home = Path(tmp)
        net = build_network(NetworkConfig(in_features=IN_FEATURES, num_classes=CLASSES, hidden=HIDDEN,
                                          label_mode="concat"))
        ModelRegistry(home).save(MODEL, net, {"predict_method": "goodness"}, {"state": "done"}, {})
        rows = torch.rand(args.rows, IN_FEATURES, generator=torch.Generator().manual_seed(0)).tolist()
        payload = {
            "model": {"in_features": IN_FEATURES, "hidden": list(HIDDEN), "num_classes": CLASSES},
            "rows_per_call": args.rows,
            "goal": "ff_goodness p50 <= 5 ms over stdio",
            "cold_start": cold_start(home, args.starts),
            "ff_goodness_raw_jsonrpc": raw_goodness(home, rows, args.calls),
            "ff_goodness_sdk_client_legacy": sdk_goodness(home, rows, args.calls, "legacy"),
            "ff_goodness_sdk_client_auto": sdk_goodness(home, rows, args.calls, "auto"),
        }
    payload["goal_met"] = payload["ff_goodness_raw_jsonrpc"]["p50_ms"] <= 5.0
    path = record("mcp", "latency", payload, torch.device("cpu"), Path(args.results_dir))
    doc = json.loads(path.read_text())
    doc["command"] = "python bench/mcp_latency.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({k: v for k, v in payload.items() if k != "model"}, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
