"""Color learning on held-out stream colors: warm versus cool, trained on 100 of each, tested on the
next 200 of each (colorlearn.held_out_evaluation), for seed 1069 and a sweep of seeds.

    .venv/bin/python bench/colorlearn_accuracy.py [--seeds 10] [--no-record]

Writes bench/results/colorlearn-held-out.json (never overwriting an earlier file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ff_mcp.bench import record, script_command  # noqa: E402
from ff_mcp.colorlearn import held_out_evaluation  # noqa: E402
from ff_mcp.gf3 import GAY_SEED  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds GAY_SEED, GAY_SEED + 1, ...")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    runs = []
    for seed in range(GAY_SEED, GAY_SEED + args.seeds):
        result = held_out_evaluation(seed, train_per_class=100, test_per_class=200)
        runs.append({"seed": seed, "accuracy": result["accuracy"]})
        print(json.dumps(runs[-1]), flush=True)
    payload = {"setup": "warm vs cool stream colors: 100 of each to train on, the next 200 of each to test on",
               "seed_1069_accuracy": runs[0]["accuracy"], "min_accuracy": min(r["accuracy"] for r in runs),
               "runs": runs}
    if not args.no_record:
        print(record("colorlearn", "held-out", payload, torch.device("cpu"), command=script_command()))


if __name__ == "__main__":
    main()
