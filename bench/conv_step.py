"""Convolutional FF's training step against plain torch training the same layers (issue 17, item 4).

One process, MNIST images, CwComp's layers (20-80-240-480 channels, pools after layers 1 and 3, batch
norm), batch 128, Adam 0.01, fp32, alternating rounds of:

- ``ff_cwc``: the conv session's step with every layer in its window (CwComp's channel-wise competitive
  loss per layer, each layer's input detached) and the linear classifier beside them;
- ``ff_label``: the same layers with ``--opt loss=ff`` and ``cfse=false`` (Hinton's FF: a positive and a
  negative pass of the batch, then a neutral pass for the classifier);
- ``plain_torch``: the same ``ConvLayer`` stack and linear head as a plain ``nn.Sequential``, forward,
  cross-entropy, backward and Adam step: what one backprop training step of those layers costs;
- ``plain_torch_full``: the same with ``cfse=false`` (full convolutions), the layers ``ff_label`` trains
  (without its label channel, with batch norm: both cost little beside the convolutions).

``ff_cwc`` is compared with ``plain_torch``, ``ff_label`` with ``plain_torch_full``: the median over rounds; each round times ``--steps`` steps of each (order
alternating). Set-up and warm-up steps are excluded.

    python bench/conv_step.py [--rounds 7] [--steps 20] [--record]
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
from ff_mcp.engine import Batch, OptimizerConfig, TrainConfig, Trainer, build_model  # noqa: E402
from ff_mcp.engine.conv import ConvNet, ConvOptions  # noqa: E402
from ff_mcp.engine.protocol import DataSpec  # noqa: E402

CHANNELS = (20, 80, 240, 480)
BATCH = 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--record", action="store_true", help="write bench/results/conv-step-*.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = load_dataset("mnist", limit_train=BATCH * 40)
    x, y = data.x_train, data.y_train
    spec = DataSpec(data.in_features, data.num_classes, data.image_shape)
    train = TrainConfig(epochs=1, batch_size=BATCH, seed=0, device="cpu", optimizer=OptimizerConfig("adam", 1e-2))

    def session_for(options: ConvOptions):
        model = build_model(ConvNet.build_config(spec, CHANNELS, options), seed=0)
        trainer = Trainer(model, train)
        trainer.session.begin_fit(x, y)
        trainer.session.begin_epoch(0, range(len(model.layers)), x, y)
        model.train()
        return trainer.session, len(model.layers)

    cwc, layers = session_for(ConvOptions())
    label, _ = session_for(ConvOptions(loss="ff", cfse=False))

    def plain_for(options: ConvOptions):
        model = session_for(options)[0].model
        net = torch.nn.Sequential(*model.layers, torch.nn.Flatten(), model.readout)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)

        def run(n: int) -> float:
            started = time.perf_counter()
            for _ in range(n):
                i = index()
                # standardised inside the step, as the FF sessions do
                loss = torch.nn.functional.cross_entropy(net(model.images(x[i])), y[i])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            return time.perf_counter() - started
        return run
    gen = torch.Generator().manual_seed(0)
    stats = torch.zeros(layers + 1, 3)
    batches = x.shape[0] // BATCH
    cursor = 0

    def index() -> torch.Tensor:
        nonlocal cursor
        cursor = (cursor + 1) % batches
        return torch.arange(cursor * BATCH, (cursor + 1) * BATCH)

    def ff_step(session):
        def run(n: int) -> float:
            started = time.perf_counter()
            for _ in range(n):
                i = index()
                session.step(Batch(x[i], y[i], i), gen, range(layers), stats)
            return time.perf_counter() - started
        return run

    runs = {"ff_cwc": ff_step(cwc), "plain_torch": plain_for(ConvOptions(method="bp")),
            "ff_label": ff_step(label), "plain_torch_full": plain_for(ConvOptions(method="bp", cfse=False))}
    for run in runs.values():
        run(3)  # warm-up: Adam's state, oneDNN's kernels
    rounds = []
    names = list(runs)
    for r in range(args.rounds):
        order = names if r % 2 == 0 else names[::-1]
        times = {name: runs[name](args.steps) / args.steps for name in order}
        rounds.append(times)
        print(f"round {r + 1}: " + ", ".join(f"{n} {1e3 * times[n]:.1f} ms" for n in names), file=sys.stderr)
    median = {n: statistics.median(r[n] for r in rounds) for n in names}
    payload = {
        "setup": f"MNIST images, conv layers {'-'.join(map(str, CHANNELS))} (CwComp's), batch {BATCH}, Adam 0.01, "
                 "fp32, one process, alternating rounds; plain_torch = the same ConvLayer stack and linear head "
                 "trained end to end (forward, cross-entropy, backward, Adam step); ff_cwc against plain_torch "
                 "(grouped odd layers, cfse), ff_label (loss ff, cfse=false) against plain_torch_full (full "
                 "convolutions, batch norm, no label channel)",
        "steps_per_round": args.steps,
        "torch_threads": torch.get_num_threads(),
        "rounds_ms": [{k: round(1e3 * v, 3) for k, v in r.items()} for r in rounds],
        "median_ms": {k: round(1e3 * v, 3) for k, v in median.items()},
        "images_per_second": {k: round(BATCH / v, 1) for k, v in median.items()},
        "ratio_to_plain_torch_median_round": {
            "ff_cwc": round(statistics.median(r["ff_cwc"] / r["plain_torch"] for r in rounds), 4),
            "ff_label": round(statistics.median(r["ff_label"] / r["plain_torch_full"] for r in rounds), 4)},
    }
    print(payload["median_ms"], payload["ratio_to_plain_torch_median_round"])
    if args.record:
        print(record("conv-step", f"mnist-{'x'.join(map(str, CHANNELS))}-b{BATCH}", payload, torch.device("cpu"),
                     command=script_command()))


if __name__ == "__main__":
    main()
