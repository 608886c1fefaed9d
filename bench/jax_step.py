"""Training-step time of the JAX backends beside the torch engine, same shapes, same run.

Each backend trains the same MNIST net (same initial weights, batches and negatives, the engine's
Trainer) for two epochs on the first --rows training images; the second epoch's training time is the
measurement (the first holds JAX's compilation and torch's warm-up). Backends alternate round by round
and medians are compared:

- torch:        the engine's default step (the fused closed-form step on these layers)
- torch-autograd: the engine's autograd step
- jax:          ff_mcp/jax_backend.JaxSession, one jitted call per mini-batch, layers in sequence
- jax-parallel: ParallelJaxSession, every layer's step in one vmapped call on the previous step's
                outputs (layers one batch apart)

    python bench/jax_step.py --hidden 1000,1000,1000 --rows 10000 --repeats 3 --record
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ff_mcp.bench import record, script_command  # noqa: E402
from ff_mcp.data import load_dataset  # noqa: E402
from ff_mcp.engine import NetworkConfig, OptimizerConfig, TrainConfig, Trainer, build_model  # noqa: E402

BACKENDS = ("torch", "torch-autograd", "jax", "jax-parallel")


def epoch_seconds(backend: str, hidden: tuple[int, ...], x: torch.Tensor, y: torch.Tensor, batch: int,
                  optimizer: str) -> tuple[float, float]:
    """(the second epoch's training seconds, its mean loss)."""
    from ff_mcp import jax_backend

    config = NetworkConfig(784, 10, hidden)
    lr = 1e-3
    train = TrainConfig(epochs=2, batch_size=batch, device="cpu", cooldown=False, train_eval_rows=0,
                        step="autograd" if backend == "torch-autograd" else "auto",
                        optimizer=OptimizerConfig(optimizer, lr, 0.9,
                                                  3e-4 if optimizer == "sgd" else 0.0))
    session = {"jax": jax_backend.JaxSession, "jax-parallel": jax_backend.ParallelJaxSession}.get(backend)
    result = Trainer(build_model(config, seed=0), train, session=session).fit(x, y)
    second = result.history[-1]
    return second["epoch_seconds"], second["loss"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", default="1000,1000,1000")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rest", type=float, default=5.0, help="idle seconds before each timed run")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    try:
        hidden = tuple(int(h) for h in args.hidden.split(","))
    except ValueError:
        parser.error(f"--hidden: comma-separated integers, got {args.hidden!r}")
    import jax

    data = load_dataset("mnist", limit_train=args.rows)
    times: dict[str, list[float]] = {b: [] for b in BACKENDS}
    losses: dict[str, float] = {}
    for _ in range(args.repeats):
        for backend in BACKENDS:
            time.sleep(args.rest)
            seconds, loss = epoch_seconds(backend, hidden, data.x_train, data.y_train, args.batch_size, args.optimizer)
            times[backend].append(round(seconds, 3))
            losses[backend] = round(loss, 4)
            print(json.dumps({"backend": backend, "epoch_seconds": round(seconds, 3), "loss": round(loss, 4)}), flush=True)
    medians = {b: statistics.median(t) for b, t in times.items()}
    steps = args.rows // args.batch_size
    payload = {
        "config": f"MNIST {'x'.join(map(str, hidden))}, batch {args.batch_size}, {args.optimizer}, readout on, "
                  f"{args.rows} rows an epoch; the second epoch timed (the first compiles)",
        "jax_version": jax.__version__, "jax_device": str(jax.devices()[0]),
        "epoch_seconds_median": {b: round(m, 3) for b, m in medians.items()},
        "ms_per_step": {b: round(1000 * m / steps, 3) for b, m in medians.items()},
        "ratio_to_torch_fused": {b: round(m / medians["torch"], 3) for b, m in medians.items()},
        "second_epoch_loss": losses,
        "runs": times,
        "method": f"{args.repeats} alternating rounds, {args.rest:g} s rest before each run, medians; one process",
    }
    print(json.dumps(payload, indent=1))
    if args.record:
        tag = f"mnist-{'x'.join(map(str, hidden))}-b{args.batch_size}-{args.optimizer}"
        print("recorded", record("jax-step", tag, payload, torch.device("cpu"), command=script_command()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
