"""The `auto` recipe on small data: validation splits first, the test split once, beside backprop.

Repeatable measurement. What a user gets with no settings at all (``TrainOptions()``: the auto
recipe of ff_mcp/recipes.py, the default of `ff-mcp train` and of the MCP tool ff_train) on:

- digits: sklearn digits through the project's loader (1,347 train / 450 test rows, 8x8 images);
- wine: sklearn load_wine, raw features (178 x 13), through ``from_arrays`` as ff_train(x, y) gets it
  (a seeded 20 % held out as test);
- blobs12: sklearn make_classification(400 rows, 12 features, 8 informative, 3 classes,
  random_state=0), through ``from_arrays`` the same way.

For each: the recipe on ``--val-splits`` seeded 20 % validation splits of the training rows (seed 0),
then on the real train/test split with seeds 0..``--seeds``-1. Backprop: the same layers, input
standardisation, optimizer, batch, epochs, cooldown and seed (engine/backprop.py).

    python bench/recipe_auto.py [--data digits,wine,blobs12] [--val-splits 3] [--seeds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ff_mcp.bench import record, script_command  # noqa: E402
from ff_mcp.data import load_dataset  # noqa: E402
from ff_mcp.data.arrays import from_arrays, split_rows  # noqa: E402
from ff_mcp.data.base import Dataset  # noqa: E402
from ff_mcp.engine import train_backprop  # noqa: E402
from ff_mcp.training import TrainOptions, train_model  # noqa: E402


def dataset(name: str) -> Dataset:
    if name == "digits":
        return load_dataset("digits")
    if name == "wine":
        from sklearn.datasets import load_wine

        bunch = load_wine()
        return from_arrays(bunch.data.astype(np.float32), bunch.target.astype(np.int64), name="wine")
    if name == "blobs12":
        from sklearn.datasets import make_classification

        x, y = make_classification(n_samples=400, n_features=12, n_informative=8, n_classes=3, random_state=0)
        return from_arrays(x.astype(np.float32), y.astype(np.int64), name="blobs12")
    raise ValueError(f"data must be digits, wine or blobs12, got {name!r}")


def validation(data: Dataset, split: int) -> Dataset:
    """Training rows only: a seeded 20 % of them is the evaluated side; the test split is not touched."""
    train, held = split_rows(data.x_train.shape[0], 0.2, 1000 + split)
    return dataclasses.replace(data, name=f"{data.name}-val{split}", x_train=data.x_train[train].contiguous(),
                               y_train=data.y_train[train].contiguous(), x_test=data.x_train[held].contiguous(),
                               y_test=data.y_train[held].contiguous())


def run(data: Dataset, seed: int) -> dict:
    options = TrainOptions(seed=seed, device="cpu", eval_every=10**6)
    started = time.perf_counter()
    trained = train_model(data, options)
    ff_seconds = time.perf_counter() - started
    final = trained.result.final
    resolved = trained.options
    started = time.perf_counter()
    _, bp = train_backprop(trained.network_config, trained.train_config, data.x_train, data.y_train, data.x_test,
                           data.y_test)
    return {
        "rows": int(data.x_train.shape[0]), "evaluated_rows": int(data.x_test.shape[0]), "seed": seed,
        "recipe": {"hidden": list(resolved.hidden), "epochs": resolved.epochs, "batch_size": resolved.batch_size,
                   "optimizer": resolved.optimizer, "lr": trained.train_config.optimizer.lr,
                   "standardize": trained.network_config.standardize,
                   "label_mode": trained.network_config.label_mode},
        "predict_method": final["predict_method"],
        "ff_accuracy": final["test_accuracy"],
        "ff_goodness": final.get("test_accuracy_goodness", final["test_accuracy"]),
        "ff_readout": final.get("test_accuracy_readout", final["test_accuracy"]),
        "bp_accuracy": bp.final["test_accuracy"],
        "ff_seconds": round(ff_seconds, 2), "bp_seconds": round(time.perf_counter() - started, 2),
    }


def summary(rows: list[dict]) -> dict:
    out = {}
    for key in ("ff_accuracy", "ff_goodness", "ff_readout", "bp_accuracy"):
        values = [r[key] for r in rows]
        out[key] = {"mean": round(statistics.fmean(values), 4), "min": round(min(values), 4),
                    "max": round(max(values), 4)}
    out["ff_minus_bp_points"] = round(100 * (out["ff_accuracy"]["mean"] - out["bp_accuracy"]["mean"]), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits,wine,blobs12")
    parser.add_argument("--val-splits", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--tag", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.data.split(","):
        data = dataset(name)
        val = [run(validation(data, split), 0) for split in range(args.val_splits)]
        test = [run(data, seed) for seed in range(args.seeds)]
        results[name] = {"validation": summary(val), "test": summary(test), "validation_runs": val, "test_runs": test}
        print(json.dumps({name: {"validation": results[name]["validation"], "test": results[name]["test"]}}),
              file=sys.stderr, flush=True)
    payload = {"setup": "TrainOptions() defaults (recipe auto), CPU, validation = seeded 20 % of the training rows "
                        "(split seeds 1000+i, model seed 0); test = the data set's test split, model seeds 0..n-1; "
                        "backprop of the same size and budget", "threads": args.threads, "results": results}
    path = record("recipe-auto", args.tag or "small-data", payload, torch.device("cpu"), command=script_command())
    print(path)


if __name__ == "__main__":
    main()
