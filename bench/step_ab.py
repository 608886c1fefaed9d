"""Same-run A/B of the training step: this checkout against another commit of ff-mcp, MNIST 3x1000.

Repeatable measurement. Each run is a fresh process that trains one epoch of ``--rows`` MNIST images
(3x1000, batch 100, SGD lr 1e-3 momentum 0.9 weight decay 3e-4, the readout, wrong-label negatives)
and reports the trainer's own train_seconds (set-up and evaluation excluded). Rounds alternate the
two code bases (B first in odd rounds) with a rest between runs, so both see the same machine
phases; the result is each variant's median seconds and the median of per-round ratios A/B
(> 1: this checkout is faster).

    git worktree add /tmp/base <commit>
    python bench/step_ab.py --base-dir /tmp/base --variants fp32,native,bf16 --rows 20000 --repeats 5

Variants: fp32 (the default step), native (--step native / --native-step), bf16 (--amp bf16).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))

from ff_mcp.bench import git_commit, record, script_command  # noqa: E402

# One epoch in a fresh process; works with the TrainOptions of either side (step= or native_step=).
RUN = r"""
import dataclasses, json, sys, torch
torch.set_num_threads(int(sys.argv[3]))
from ff_mcp.data import load_dataset
from ff_mcp.training import TrainOptions, train_model
variant, rows = sys.argv[1], int(sys.argv[2])
data = load_dataset("mnist", limit_train=rows)
data = type(data)(data.name, data.x_train, data.y_train, data.x_test[:0], data.y_test[:0], data.num_classes,
                  data.image_shape, data.source)
fields = {f.name for f in dataclasses.fields(TrainOptions)}
kw = dict(hidden=(1000, 1000, 1000), epochs=1, batch_size=100, optimizer="sgd", lr=1e-3, momentum=0.9,
          weight_decay=3e-4, seed=0, device="cpu", eval_every=10**6, cooldown=False,
          amp="bf16" if variant == "bf16" else "none")
if variant == "native":
    kw.update({"step": "native"} if "step" in fields else {"native_step": True})
trained = train_model(data, TrainOptions(**kw))
print(json.dumps({"train_seconds": trained.result.train_seconds}))
"""


def run_once(code_dir: Path, variant: str, rows: int, threads: int) -> float:
    # both sides read the data this checkout finds (a worktree elsewhere has no ../shared beside it)
    env = {**os.environ, "PYTHONPATH": str(code_dir), "FF_MCP_DATA": os.environ.get("FF_MCP_DATA", str(DATA))}
    out = subprocess.run([sys.executable, "-c", RUN, variant, str(rows), str(threads)], env=env, cwd=code_dir,
                         capture_output=True, text=True, timeout=1200)
    if out.returncode != 0:
        raise RuntimeError(f"{code_dir} {variant} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["train_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", required=True, help="a checkout (git worktree) of the commit to compare with")
    parser.add_argument("--variants", default="fp32,native,bf16")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rest", type=float, default=3.0, help="seconds idle between runs")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--tag", default=None)
    args = parser.parse_args()
    base = Path(args.base_dir).resolve()
    sides = {"this": ROOT, "base": base}
    results: dict[str, dict] = {}
    for variant in args.variants.split(","):
        runs: dict[str, list[float]] = {"this": [], "base": []}
        ratios = []
        for round_index in range(args.repeats):
            order = ["base", "this"] if round_index % 2 == 0 else ["this", "base"]
            for side in order:
                runs[side].append(run_once(sides[side], variant, args.rows, args.threads))
                time.sleep(args.rest)
            ratios.append(runs["base"][-1] / runs["this"][-1])
            print(f"{variant} round {round_index + 1}: base {runs['base'][-1]:.3f} s, this {runs['this'][-1]:.3f} s",
                  file=sys.stderr)
        results[variant] = {
            "this_seconds": [round(s, 4) for s in runs["this"]],
            "base_seconds": [round(s, 4) for s in runs["base"]],
            "this_median": round(statistics.median(runs["this"]), 4),
            "base_median": round(statistics.median(runs["base"]), 4),
            "speed_ratio_median_round": round(statistics.median(ratios), 4),
            "speed_ratio_of_medians": round(statistics.median(runs["base"]) / statistics.median(runs["this"]), 4),
        }
    payload = {"rows": args.rows, "threads": args.threads, "repeats": args.repeats,
               "base_commit": git_commit(base), "this_commit": git_commit(ROOT),
               "setup": "MNIST 3x1000, batch 100, SGD lr 1e-3 momentum 0.9 wd 3e-4, no cooldown, 1 epoch, fresh "
                        "process per run, train_seconds of the trainer",
               "variants": results}
    path = record("step-ab", args.tag or f"mnist-3x1000-{args.rows}", payload, torch.device("cpu"),
                  command=script_command())
    print(json.dumps({"result": str(path), **results}, indent=1))


if __name__ == "__main__":
    main()
