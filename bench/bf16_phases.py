"""Why the bf16 epoch on the 2-vCPU machine has two speeds: one process, many rounds, per-op times.

Runs the bf16 fused train step (MNIST 3x1000, batch 100, SGD, CPU) in ``--rounds`` rounds of
``--steps`` steps with a short rest between them, all in this one process, and after each timed
round profiles a few more steps (torch.profiler, self CPU time per op). A round is ``slow`` when
it takes more than 1.2x the fastest round. The record keeps every round's time and the median
per-op time over the fast and over the slow rounds, so it shows whether the speed belongs to a
process (all rounds alike) or to the machine's phase (a process switches), and which kernels
change.

    python bench/bf16_phases.py [--rounds 25] [--steps 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ff_mcp.bench import record, script_command  # noqa: E402
from ff_mcp.data import load_dataset  # noqa: E402
from ff_mcp.engine import Trainer  # noqa: E402
from ff_mcp.engine.trainer import build_network  # noqa: E402
from ff_mcp.training import TrainOptions  # noqa: E402

HIDDEN, BATCH, SLOW = (1000, 1000, 1000), 100, 1.2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--profiled-steps", type=int, default=10)
    parser.add_argument("--rest", type=float, default=0.5)
    parser.add_argument("--results-dir", default="bench/results")
    args = parser.parse_args()
    data = load_dataset("mnist", limit_train=10_000)
    options = TrainOptions(hidden=HIDDEN, batch_size=BATCH, optimizer="sgd", lr=1e-3, momentum=0.9, weight_decay=3e-4,
                           seed=0, device="cpu", amp="bf16")
    trainer = Trainer(build_network(options.network_config(data), seed=0), options.train_config())
    x, y = data.x_train, data.y_train
    gen = torch.Generator().manual_seed(0)
    stats = torch.zeros(len(HIDDEN) + 1, 3)
    cursor = 0

    def step() -> None:
        nonlocal cursor
        index = torch.arange(cursor, cursor + BATCH)
        cursor = (cursor + BATCH) % (x.shape[0] - BATCH)
        trainer.session.train_step(x[index], y[index], index, gen, stats=stats)

    for _ in range(10):  # warm-up
        step()
    rounds = []
    for _ in range(args.rounds):
        time.sleep(args.rest)
        started = time.perf_counter()
        for _ in range(args.steps):
            step()
        step_ms = (time.perf_counter() - started) / args.steps * 1e3
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.profiled_steps):
                step()
        ops = {e.key: e.self_cpu_time_total / args.profiled_steps / 1e3 for e in prof.key_averages()}
        rounds.append((step_ms, ops))
    fastest = min(ms for ms, _ in rounds)
    fast = [ops for ms, ops in rounds if ms <= SLOW * fastest]
    slow = [ops for ms, ops in rounds if ms > SLOW * fastest]
    top = sorted(rounds[0][1], key=lambda k: -statistics.median(ops.get(k, 0.0) for _, ops in rounds))[:8]

    def per_op(group: list[dict[str, float]]) -> dict[str, float] | None:
        if not group:
            return None
        return {k: round(statistics.median(ops.get(k, 0.0) for ops in group), 3) for k in top}

    payload = {
        "config": "MNIST 3x1000, batch 100, SGD lr 1e-3 m 0.9 wd 3e-4, bf16 autocast, CPU, one process",
        "step_ms_by_round": [round(ms, 2) for ms, _ in rounds],
        "slow_threshold": f"> {SLOW} x fastest round ({fastest:.2f} ms)",
        "fast_rounds": len(fast),
        "slow_rounds": len(slow),
        "switches": sum((a > SLOW * fastest) != (b > SLOW * fastest) for (a, _), (b, _) in zip(rounds, rounds[1:])),
        "op_self_ms_per_step_fast": per_op(fast),
        "op_self_ms_per_step_slow": per_op(slow),
    }
    path = record("bf16_phases", "mnist-3x1000-b100-sgd", payload, torch.device("cpu"), Path(args.results_dir),
                  command=script_command())
    print(path)
    print(f"{len(fast)} fast and {len(slow)} slow rounds, {payload['switches']} switches: {payload['step_ms_by_round']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
