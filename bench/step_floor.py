"""Where the fp32 FF train step's time goes: the step, its matmuls plus optimizer alone, and torch.mm.

Three things run in alternating rounds on MNIST 3x1000 at batch 100 with SGD (momentum 0.9, weight
decay 3e-4), fp32 on CPU:

- ``step``: ``Trainer.train_step``, the fused step as training runs it;
- ``floor``: only the step's matmul kernels and SGD updates, in the step's order, on tensors of the
  step's shapes (oneDNN linear for the forwards, addmm_/addmv_ into the momentum buffers, torch's
  fused SGD kernel): what the step would cost if every other op were free;
- ``mm``: torch.mm on the step's matmul shapes (``ff_mcp.bench.ff_step_matmuls``), the roofline
  reference of ``ff-mcp bench throughput``.

mm / floor says how close the kernels themselves get to the reference; step - floor is the time the
elementwise work (normalisation, goodness, loss, gradient scaling) and Python dispatch take.

    python bench/step_floor.py [--rounds 9] [--steps 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ff_mcp.bench import ff_step_matmuls, record, script_command  # noqa: E402
from ff_mcp.data import load_dataset  # noqa: E402
from ff_mcp.engine import Trainer  # noqa: E402
from ff_mcp.engine.fused import _onednn_linear_available  # noqa: E402
from ff_mcp.engine.trainer import build_network  # noqa: E402
from ff_mcp.training import TrainOptions  # noqa: E402

HIDDEN, BATCH, IN, K = (1000, 1000, 1000), 100, 784, 10


def floor_step_fn():
    """A closure running the step's matmuls and SGD updates only (shared first layer, readout)."""
    lp = torch.ops.mkldnn._linear_pointwise
    gen = torch.Generator().manual_seed(0)

    def rand(*shape, scale=1.0):
        return torch.rand(*shape, generator=gen) * scale

    rows, train = 3 * BATCH, 2 * BATCH
    widths = [IN, *HIDDEN]
    params = [(rand(o, i, scale=0.03), torch.zeros(o)) for i, o in zip(widths[:-1], widths[1:])]
    buffers = [(torch.zeros_like(w), torch.zeros_like(b)) for w, b in params]
    base, z = rand(BATCH, IN), [rand(rows, w) for w in HIDDEN[:-1]]
    ups = [rand(BATCH, HIDDEN[0], scale=1e-3)] + [rand(train, w, scale=1e-3) for w in HIDDEN[1:]]
    ones = torch.ones(train)
    feat_width = sum(HIDDEN[1:])
    readout, readout_buf = rand(K, feat_width, scale=0.01), torch.zeros(K, feat_width)
    features, dlogits = rand(BATCH, feat_width), rand(BATCH, K, scale=1e-3)

    def sgd(ps, bufs):
        torch._fused_sgd_(ps, bufs, bufs, weight_decay=3e-4, momentum=0.9, lr=1e-3, dampening=0.0,
                          nesterov=False, maximize=False, is_first_step=True)

    def step():
        for i, ((w, b), (wb, bb), up) in enumerate(zip(params, buffers, ups)):
            if i == 0:  # the shared first layer: W.x once for the B images, gradient over B rows
                lp(base, w, None, "none", [], "")
                wb.addmm_(up.t(), base, beta=0.9)
                bb.addmv_(up.t(), ones[:BATCH], beta=0.9)
            else:
                lp(z[i - 1], w, b, "relu", [], "")
                wb.addmm_(up.t(), z[i - 1][:train], beta=0.9)
                bb.addmv_(up.t(), ones, beta=0.9)
            sgd([w, b], [wb, bb])
        lp(features, readout, None, "none", [], "")
        readout_buf.addmm_(dlogits.t(), features, beta=0.9)
        sgd([readout], [readout_buf])

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rest", type=float, default=1.0)
    parser.add_argument("--results-dir", default="bench/results")
    args = parser.parse_args()
    if not _onednn_linear_available(torch.zeros(1, 1)):
        parser.error("this torch build has no oneDNN linear: the fused step runs on torch.mm, so there is no floor to split off")
    data = load_dataset("mnist", limit_train=10_000)
    options = TrainOptions(hidden=HIDDEN, batch_size=BATCH, optimizer="sgd", lr=1e-3, momentum=0.9, weight_decay=3e-4,
                           seed=0, device="cpu")
    trainer = Trainer(build_network(options.network_config(data), seed=0), options.train_config())
    x, y = data.x_train, data.y_train
    gen = torch.Generator().manual_seed(0)
    stats = torch.zeros(len(HIDDEN) + 1, 3)
    cursor = 0

    def train_step():
        nonlocal cursor
        index = torch.arange(cursor, cursor + BATCH)
        cursor = (cursor + BATCH) % (x.shape[0] - BATCH)
        trainer.session.train_step(x[index], y[index], index, gen, stats=stats)

    floor = floor_step_fn()
    mats = [(torch.randn(m, k), torch.randn(k, n), c)
            for m, k, n, c in ff_step_matmuls([IN, *HIDDEN], BATCH, K, readout=True, shared_first=True)]

    def mm():
        for a, b, c in mats:
            for _ in range(c):
                torch.mm(a, b)

    def timed(fn) -> float:
        started = time.perf_counter()
        for _ in range(args.steps):
            fn()
        return (time.perf_counter() - started) / args.steps * 1e3

    for fn in (train_step, floor, mm):  # warm-up
        for _ in range(10):
            fn()
    rounds = []
    for _ in range(args.rounds):
        time.sleep(args.rest)
        rounds.append({"step_ms": timed(train_step), "floor_ms": timed(floor), "mm_ms": timed(mm)})
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    best = {k: min(r[k] for r in rounds) for k in rounds[0]}
    payload = {
        "config": "MNIST 3x1000, batch 100, SGD lr 1e-3 m 0.9 wd 3e-4, fp32, readout, shared first layer",
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "best_ms": {k: round(v, 3) for k, v in best.items()},
        "step_fraction": round(statistics.median(r["mm_ms"] / r["step_ms"] for r in rounds), 3),
        "floor_fraction": round(statistics.median(r["mm_ms"] / r["floor_ms"] for r in rounds), 3),
        "other_work_ms": round(statistics.median(r["step_ms"] - r["floor_ms"] for r in rounds), 3),
        "rounds": [{k: round(v, 3) for k, v in r.items()} for r in rounds],
    }
    path = record("step_floor", "mnist-3x1000-b100-sgd", payload, torch.device("cpu"), Path(args.results_dir),
                  command=script_command())
    print(path)
    print(payload["median_ms"], "step fraction", payload["step_fraction"], "floor fraction", payload["floor_fraction"],
          "other work ms", payload["other_work_ms"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
