"""Cost of all-label goodness prediction (K = 10) against one forward pass and the naive K passes.

For each network the script times, on the same rows:
- one forward pass of B embedded rows (one label each),
- ``goodness_scores``: all K labels batched; the first layer's W.x is computed once and each label
  adds its column of W, later layers run on (B*K, H),
- the naive way: embed every label and run K full forward passes.

With one hidden layer the batched method costs about one forward pass. With L > 1 layers every
layer after the first must see each label's activity, so the floor is about
(first-layer FLOPs + K x later-layer FLOPs) / one-pass FLOPs; the script reports that floor beside
the measured ratio.

    python bench/predict_cost.py [--rows 1000] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ff_mcp.bench import record, script_command  # noqa: E402
from ff_mcp.engine import NetworkConfig, build_network  # noqa: E402


def timed(fn, device, repeats: int) -> float:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best


@torch.no_grad()
def measure(hidden: tuple[int, ...], rows: int, device: torch.device, repeats: int) -> dict:
    net = build_network(NetworkConfig(in_features=784, num_classes=10, hidden=hidden), seed=0, device=device).eval()
    x = torch.rand(rows, 784, device=device)
    y = torch.randint(0, 10, (rows,), device=device)
    embedded = net.labels.embed_labels(x, y)
    one = timed(lambda: net(embedded), device, repeats)
    batched = timed(lambda: net.goodness_scores(x), device, repeats)
    naive = timed(lambda: net.goodness_scores_loop(x), device, repeats)
    widths = [784, *hidden]
    flops = [a * b for a, b in zip(widths[:-1], widths[1:])]
    floor = (flops[0] + 10 * sum(flops[1:])) / sum(flops)
    return {"hidden": list(hidden), "rows": rows, "one_forward_s": round(one, 5), "all_labels_batched_s": round(batched, 5),
            "all_labels_naive_s": round(naive, 5), "batched_over_one_forward": round(batched / one, 3),
            "naive_over_one_forward": round(naive / one, 3), "flop_floor_over_one_forward": round(floor, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description="all-label prediction cost")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results-dir", default="bench/results")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [measure(h, args.rows, device, args.repeats) for h in ((2000,), (1000, 1000, 1000), (2000,) * 4)]
    for r in rows:
        print(json.dumps(r))
    record("predict", f"all-labels-{device.type}", {"k": 10, "results": rows}, device, Path(args.results_dir), command=script_command())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
