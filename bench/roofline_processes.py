"""The train step against torch.mm across fresh processes: the Python fused step and --native-step.

On the 2-vCPU cloud machine a process can land in a slow mode for its whole life: its
memory-bound kernels run several times slower (torch's fused SGD kernel took 3.4-3.6 ms a step
instead of 0.5 ms in 2 of 8 processes, with the Python step and with the compiled one alike).
``ff-mcp bench throughput`` measures in one process, so its fraction says which mode that process
was in. This bench starts ``--processes`` fresh processes per variant, alternating the variants,
and in each runs ``ff_mcp.bench.interleaved_roofline`` (the throughput bench's measure: rounds of
train steps against torch.mm on the step's shapes, with rests) on MNIST 3x1000, batch 100, SGD,
fp32. It records every process's median-round fraction and the median over processes.

    python bench/roofline_processes.py [--processes 7] [--rounds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ff_mcp.bench import ff_step_matmuls, interleaved_roofline, record, script_command  # noqa: E402

HIDDEN, BATCH = (1000, 1000, 1000), 100
VARIANTS = {"python": "auto", "native": "native"}  # the step each variant runs


def one(variant: str, rounds: int) -> dict:
    from ff_mcp.data import load_dataset
    from ff_mcp.engine import Trainer
    from ff_mcp.engine.trainer import build_network
    from ff_mcp.training import TrainOptions

    data = load_dataset("mnist", limit_train=10_000)
    options = TrainOptions(hidden=HIDDEN, batch_size=BATCH, optimizer="sgd", lr=1e-3, momentum=0.9, weight_decay=3e-4,
                           seed=0, device="cpu")
    config = dataclasses.replace(options.train_config(), step=VARIANTS[variant])
    trainer = Trainer(build_network(options.network_config(data), seed=0), config)
    mms = ff_step_matmuls([data.x_train.shape[1], *HIDDEN], BATCH, data.num_classes, readout=True,
                          shared_first=trainer.session.shares_first_layer)
    return interleaved_roofline(trainer, data.x_train, data.y_train, mms, rounds=rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=7, help="fresh processes per variant")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds in each process")
    parser.add_argument("--results-dir", default="bench/results")
    parser.add_argument("--one", choices=list(VARIANTS), help=argparse.SUPPRESS)  # internal: one process
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.rounds)))
        return 0
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for _ in range(args.processes):
        for variant in VARIANTS:
            time.sleep(2.0)
            out = subprocess.run([sys.executable, __file__, "--one", variant, "--rounds", str(args.rounds)],
                                 check=True, capture_output=True, text=True).stdout
            runs[variant].append(json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:]))
    payload = {
        "config": "MNIST 3x1000, batch 100, SGD lr 1e-3 m 0.9 wd 3e-4, fp32, readout, shared first layer",
        "method": (f"{args.processes} fresh processes per variant, alternating; in each, interleaved_roofline with "
                   f"{args.rounds} rounds of 40 steps against 40 repetitions of the step's matmuls"),
    }
    for variant, results in runs.items():
        fractions = [r["fraction"] for r in results]
        payload[variant] = {
            "median_fraction": round(statistics.median(fractions), 3),
            "process_fractions": fractions,
            "process_step_ms": [r["step_ms"] for r in results],
            "process_mm_ms": [r["mm_ms"] for r in results],
        }
        print(f"{variant}: median over processes {statistics.median(fractions):.3f}, per process {fractions}")
    path = record("roofline_processes", "mnist-3x1000-b100-sgd", payload, torch.device("cpu"), Path(args.results_dir),
                  command=script_command())
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
