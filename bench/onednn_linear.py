"""oneDNN's fused linear against torch.mm (MKL) on the FF train step's fp32 matmul shapes.

The fused step (ff_mcp/engine/fused.py) runs layer forwards through
``torch.ops.mkldnn._linear_pointwise`` (bias and ReLU fused) when this torch build has it. This
script records why: both kernels on the same shapes, alternated in rounds, medians.

    python bench/onednn_linear.py [--rounds 9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ff_mcp.bench import record, script_command  # noqa: E402

# (rows, in, out): MNIST 3x1000 at batch 100 with positive, negative and neutral rows (300),
# the readout (100 rows of 2000 features, 10 classes), and a 4x2000 layer.
SHAPES = [(300, 1000, 1000), (300, 2000, 2000), (100, 2000, 10)]


def timed(fn, reps: int) -> float:
    fn()
    started = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - started) / reps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--results-dir", default="bench/results")
    args = parser.parse_args()
    linear = torch.ops.mkldnn._linear_pointwise
    rows = []
    for m, k, n in SHAPES:
        x, w, b = torch.randn(m, k), torch.randn(n, k) / k**0.5, torch.zeros(n)
        mm_s, dnn_s = [], []
        for _ in range(args.rounds):
            mm_s.append(timed(lambda: torch.relu_(torch.addmm(b, x, w.t())), args.reps))
            dnn_s.append(timed(lambda: linear(x, w, b, "relu", [], ""), args.reps))
        flops = 2 * m * k * n
        mm_med, dnn_med = statistics.median(mm_s), statistics.median(dnn_s)
        rows.append({"shape": [m, k, n], "torch_addmm_relu_gflops": round(flops / mm_med / 1e9, 1),
                     "onednn_linear_relu_gflops": round(flops / dnn_med / 1e9, 1),
                     "speedup": round(mm_med / dnn_med, 3)})
        print(rows[-1])
    path = record("onednn", "linear-relu-cpu", {"rounds": args.rounds, "reps": args.reps, "shapes": rows},
                  torch.device("cpu"), Path(args.results_dir), command=script_command())
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
