"""Recurrent FF: the choices the paper leaves open, measured on MNIST validation rows.

Hinton (2022) gives the damping (0.3), the iterations (8), the prediction window (3-5) and hard
negatives, but not how strongly the clamped label drives the top layer, which iterations are trained,
or whether hard negatives help from the start. Each setting here trains the same short run (the first
10,000 training images, 2 x 500, 4 epochs, batch 100, Adam 1e-3, one seed) and is scored after every
epoch on 5,000 validation images (training rows 50,000-54,999, inside the split every accuracy run holds
out); no test image is read. The defaults of ``--variant recurrent`` come from this table
(docs/VARIANTS.md)::

    python bench/recurrent_choices.py --record
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

# each setting: a name and the variant's options; "baseline" is the defaults
SETTINGS = [
    ("defaults (label length auto = 4 sqrt(500) = 89.4, hard negatives, train from 1, damping 0.3)", {}),
    ("label length sqrt(10) = 3.16 (the one-hot normalised like a hidden state)", {"label_length": 10 ** 0.5}),
    ("label length sqrt(500) = 22.4 (the top hidden state's length)", {"label_length": 500 ** 0.5}),
    ("label length 300", {"label_length": 300}),
    ("uniform wrong labels", {"negatives": "wrong_label"}),
    ("train from iteration 3", {"train_from": 3}),
    ("no damping", {"damping": 0.0}),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--hidden", default="500,500")
    parser.add_argument("--train-rows", type=int, default=10_000)
    parser.add_argument("--only", type=int, default=None, help="run only setting number N (0-based)")
    parser.add_argument("--record", action="store_true", help="write bench/results/recurrent-choices-*.json")
    args = parser.parse_args()

    import torch

    from ff_mcp.data import load_dataset
    from ff_mcp.training import TrainOptions, train_model

    full = load_dataset("mnist")
    data = dataclasses.replace(full, x_train=full.x_train[: args.train_rows], y_train=full.y_train[: args.train_rows],
                               x_test=full.x_train[50_000:55_000], y_test=full.y_train[50_000:55_000])
    hidden = tuple(int(h) for h in args.hidden.split(","))
    rows = []
    for number, (name, options) in enumerate(SETTINGS):
        if args.only is not None and number != args.only:
            continue
        started = time.perf_counter()
        trained = train_model(data, TrainOptions(variant="recurrent", hidden=hidden, epochs=args.epochs,
                                                 batch_size=100, optimizer="adam", lr=1e-3, options=options))
        history = [{"epoch": h["epoch"], "validation_goodness": round(h["test_accuracy"], 4),
                    "validation_readout": round(h["test_accuracy_readout"], 4)} for h in trained.result.history]
        rows.append({"setting": name, "options": options, "history": history,
                     "train_seconds": round(trained.result.train_seconds, 1),
                     "wall_seconds": round(time.perf_counter() - started, 1)})
        last = history[-1]
        print(f"{name}: validation goodness {100 * last['validation_goodness']:.2f} %, readout "
              f"{100 * last['validation_readout']:.2f} % after {args.epochs} epochs "
              f"({rows[-1]['train_seconds']} s)", flush=True)
    if args.record:
        from ff_mcp.bench import record, script_command

        path = record("recurrent-choices", f"mnist-{args.hidden.replace(',', 'x')}-e{args.epochs}", {
            "settings": rows, "data": f"MNIST: first {args.train_rows} training images; validation: training rows "
                                      "50,000-54,999 (held out of every accuracy run's training rows); no test rows",
            "hidden": list(hidden), "epochs": args.epochs, "batch_size": 100, "optimizer": "adam 1e-3, cooldown",
            "seed": 0}, torch.device("cpu"), command=script_command())
        print(f"recorded {path}")
    else:
        print(json.dumps(rows)[:2000], file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
