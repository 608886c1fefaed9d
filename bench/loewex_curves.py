"""Accuracy per epoch and time to 94/96/98 % validation accuracy: loeweX/Forward-Forward beside ff-mcp.

Both train MNIST 3x1000 with loeweX's config.yaml (SGD 1e-3 momentum 0.9 weight decay 3e-4, peer
normalisation 0.03, ReLU with full gradient, batch 100, the linear classifier on the normalised
activities with lr 1e-2 and weight decay 3e-3, both learning rates cooled down linearly over the
second half) on the first 50,000 training images, and score the last 10,000 (loeweX's "val"
partition) after every epoch with the classifier. The test set is not touched.

loeweX's code is not part of this repository: point --loewex-dir at a checkout of
https://github.com/loeweX/Forward-Forward (commit da516f0). Its `main.train`, model, data pipeline
and optimizer run unchanged; only its MNIST download is replaced by the same rows from
../shared/data/mnist, validation is turned on every epoch (`val_idx` 1), and its validation calls are
timed so that they can be taken out.

Timing is symmetric and excludes set-up on both sides: ff-mcp's clock runs only over its training
steps; loeweX's DataLoader (4 worker processes) is created and its workers started before the clock
starts, and its validation passes are subtracted. Each side runs in its own fresh process, one after
the other, on an otherwise idle machine.

    python bench/loewex_curves.py --loewex-dir /path/to/Forward-Forward --epochs 60 --seeds 0 --record
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.loewex_compare import MnistPairs, loewex_opt, stub_missing_modules  # noqa: E402
from ff_mcp.bench import record, script_command  # noqa: E402
from ff_mcp.data import load_dataset  # noqa: E402
from ff_mcp.data.validation import validation_split  # noqa: E402
from ff_mcp.training import TrainOptions, train_model  # noqa: E402

TARGETS = (0.94, 0.96, 0.98)


def curve_loewex(loewex_dir: Path, epochs: int, seed: int) -> list[dict]:
    """[{epoch, val_accuracy, train_seconds (cumulative)}] of loeweX's own training loop."""
    data, x_val, y_val, _ = validation_split(load_dataset("mnist"))
    stub_missing_modules()
    sys.path.insert(0, str(loewex_dir))
    utils = importlib.import_module("src.utils")
    main = importlib.import_module("main")
    partitions = {"train": MnistPairs(data.x_train, data.y_train), "val": MnistPairs(x_val, y_val)}
    utils.get_MNIST_partition = lambda opt, partition: partitions[partition]
    opt = loewex_opt(epochs)
    opt.seed = seed
    opt.training.val_idx = 1
    torch.manual_seed(seed)
    model, optimizer = utils.get_model_and_optimizer(opt)
    get_data = utils.get_data
    train_loader = get_data(opt, "train")
    iter(train_loader)  # its 4 persistent workers start here, before the clock; main.train reuses them
    utils.get_data = lambda opt, partition: train_loader if partition == "train" else get_data(opt, partition)
    captured: list[dict] = []
    print_results = utils.print_results

    def keep_results(partition, iteration_time, scalar_outputs, epoch=None):
        if partition == "val":
            captured.append(dict(scalar_outputs))
        print_results(partition, iteration_time, scalar_outputs, epoch)

    utils.print_results = keep_results
    validate = main.validate_or_test
    marks: list[tuple[float, float]] = []  # (time the validation pass began, its seconds)

    def timed_validate(opt, model, partition, epoch=None):
        begun = time.perf_counter()
        validate(opt, model, partition, epoch)
        marks.append((begun, time.perf_counter() - begun))

    main.validate_or_test = timed_validate
    begin = time.perf_counter()
    main.train(opt, model, optimizer)
    rows, spent_validating = [], 0.0
    for epoch, ((begun, seconds), scores) in enumerate(zip(marks, captured), start=1):
        rows.append({"epoch": epoch, "val_accuracy": round(float(scores["classification_accuracy"]), 5),
                     "train_seconds": round(begun - begin - spent_validating, 3)})
        spent_validating += seconds
    return rows


def curve_ff_mcp(epochs: int, seed: int, amp: str) -> list[dict]:
    data, x_val, y_val, _ = validation_split(load_dataset("mnist"))
    scored = dataclasses.replace(data, x_test=x_val, y_test=y_val)  # scored every epoch: the validation rows
    options = TrainOptions(recipe="loewex", epochs=epochs, readout_cooldown=True, predict_method="readout",
                           eval_every=1, seed=seed, device="cpu", amp=amp)
    history = train_model(scored, options).result.history
    return [{"epoch": h["epoch"], "val_accuracy": round(float(h["test_accuracy"]), 5),
             "train_seconds": round(float(h["train_seconds"]), 3)} for h in history]


def time_to(curve: list[dict], target: float) -> dict | None:
    """The first epoch whose validation accuracy reaches ``target``, and the training seconds until then."""
    for row in curve:
        if row["val_accuracy"] >= target:
            return {"epoch": row["epoch"], "seconds": row["train_seconds"]}
    return None


def main_cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loewex-dir", required=True, type=Path)
    parser.add_argument("--epochs", type=int, default=60, help="both sides cool down over the second half of these")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; each seed runs both sides")
    parser.add_argument("--amp", default="none", choices=("none", "bf16"), help="ff-mcp's matmul precision")
    parser.add_argument("--record", action="store_true", help="write bench/results/loewex-curves-....json")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: "loewex:SEED" or "ff-mcp:SEED"
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs: must be >= 1, got {args.epochs}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: comma-separated integers, got {args.seeds!r}")
    if args.one:
        side, seed = args.one.split(":")
        curve = (curve_loewex(args.loewex_dir, args.epochs, int(seed)) if side == "loewex"
                 else curve_ff_mcp(args.epochs, int(seed), args.amp))
        print("CURVE " + json.dumps(curve))
        return 0
    runs = []
    for seed in seeds:
        for side in ("loewex", "ff-mcp"):
            out = subprocess.run([sys.executable, __file__, "--one", f"{side}:{seed}", "--loewex-dir",
                                  str(args.loewex_dir), "--epochs", str(args.epochs), "--amp", args.amp],
                                 check=True, capture_output=True, text=True).stdout
            curve = json.loads(next(line for line in out.splitlines() if line.startswith("CURVE "))[6:])
            reached = {f"{t:.0%}": time_to(curve, t) for t in TARGETS}
            runs.append({"side": side, "seed": seed, "curve": curve, "time_to": reached})
            print(json.dumps({"side": side, "seed": seed, "final": curve[-1], "time_to": reached}), flush=True)
    ratios = {}
    for target in TARGETS:
        key = f"{target:.0%}"
        pairs = [(a["time_to"][key], b["time_to"][key]) for a, b in zip(runs[::2], runs[1::2])]
        if pairs and all(p[0] and p[1] for p in pairs):
            ratios[key] = round(sum(p[0]["seconds"] for p in pairs) / sum(p[1]["seconds"] for p in pairs), 2)
        else:
            ratios[key] = None  # a side never reached it within the epochs
    payload = {
        "config": "MNIST 3x1000, loeweX's config.yaml (SGD 1e-3 m 0.9 wd 3e-4, peer norm 0.03, classifier lr 1e-2 "
                  "wd 3e-3, linear cooldown of both over the second half), batch 100, 50,000 training rows, "
                  "validation = the last 10,000 training rows, scored every epoch with the classifier",
        "epochs": args.epochs, "seeds": seeds, "ff_mcp_amp": args.amp,
        "timing": "training steps only on both sides: loeweX's DataLoader workers started before its clock, its "
                  "validation passes subtracted; ff-mcp's train_seconds; each side in a fresh process",
        "loewex_commit": "da516f0",
        "speedup_time_to": ratios,
        "runs": runs,
    }
    print(json.dumps({"speedup_time_to": ratios}))
    if args.record:
        tag = f"mnist-3x1000-e{args.epochs}-s{'-'.join(map(str, seeds))}" + ("" if args.amp == "none" else f"-{args.amp}")
        path = record("loewex-curves", tag, payload, torch.device("cpu"), command=script_command())
        print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_cli())
