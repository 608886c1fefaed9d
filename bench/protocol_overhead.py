"""What the model protocol adds to each training step, measured in one process.

Investigation. The Trainer now reaches the dense MLP's step through the protocol: it builds a
``Batch`` and calls ``DenseSession.step``, which calls ``train_step`` (whose ``embed_rows`` also asks
``prepare_input``). Before, the trainer called ``train_step`` directly. Cross-process A/B runs on the
2-vCPU machine swing by +-30 % with its phases (bench/step_ab.py), so this times the two call paths
against each other in alternating rounds of the same process, MNIST 3x1000, batch 100, SGD, fp32:

- ``via_protocol``: ``session.step(Batch(x[i], y[i], i), gen, units, stats)`` as ``Trainer._run_epoch`` does;
- ``direct``: ``session.train_step(x[i], y[i], i, gen, units, stats)`` as the trainer did before.

    python bench/protocol_overhead.py [--rounds 9] [--steps 50]
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
from ff_mcp.data import load_dataset  # noqa: E402
from ff_mcp.engine import Batch, Trainer, build_model  # noqa: E402
from ff_mcp.training import TrainOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    data = load_dataset("mnist", limit_train=10_000)
    options = TrainOptions(hidden=(1000, 1000, 1000), batch_size=100, optimizer="sgd", lr=1e-3, momentum=0.9,
                           weight_decay=3e-4, seed=0, device="cpu").resolved(data)
    trainer = Trainer(build_model(options.model_config(data), seed=0), options.train_config())
    session = trainer.session
    x, y = data.x_train, data.y_train
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(x.shape[0], generator=gen)
    units = range(len(trainer.model.layers))
    stats = torch.zeros(len(units) + 1, 3)
    cursor = 0

    def indices():
        nonlocal cursor
        if cursor + 100 > x.shape[0]:
            cursor = 0
        index = order[cursor : cursor + 100]
        cursor += 100
        return index

    def via_protocol(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            index = indices()
            session.step(Batch(x[index], y[index], index), gen, units, stats)
        return time.perf_counter() - started

    def direct(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            index = indices()
            session.train_step(x[index], y[index], index, gen, units, stats)
        return time.perf_counter() - started

    session.begin_fit(x, y)
    direct(10)  # warm-up: SGD's buffers, oneDNN's kernels
    rounds = []
    for r in range(args.rounds):
        pair = (via_protocol, direct) if r % 2 == 0 else (direct, via_protocol)
        times = {f.__name__: f(args.steps) / args.steps for f in pair}
        rounds.append(times)
        print(f"round {r + 1}: protocol {1e3 * times['via_protocol']:.3f} ms, direct {1e3 * times['direct']:.3f} ms",
              file=sys.stderr)
    ratio = statistics.median(r["direct"] / r["via_protocol"] for r in rounds)
    payload = {
        "setup": "MNIST 3x1000, batch 100, SGD lr 1e-3 momentum 0.9 wd 3e-4, fp32, one process, alternating rounds "
                 "of the Trainer's protocol call path and the direct train_step call",
        "steps_per_round": args.steps,
        "rounds": [{k: round(1e3 * v, 4) for k, v in r.items()} for r in rounds],
        "median_ms_via_protocol": round(1e3 * statistics.median(r["via_protocol"] for r in rounds), 4),
        "median_ms_direct": round(1e3 * statistics.median(r["direct"] for r in rounds), 4),
        "speed_ratio_median_round": round(ratio, 4),
    }
    print(record("protocol-overhead", "mnist-3x1000-b100-sgd", payload, torch.device("cpu"), command=script_command()))


if __name__ == "__main__":
    main()
