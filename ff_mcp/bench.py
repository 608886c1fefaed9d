"""Benchmarks behind ``ff-mcp bench``: throughput against the torch.mm roofline, and accuracy
of FF beside backprop on the same architecture and budget.

Every result is a JSON file under ``bench/results/`` carrying the command, machine, date, torch
version and device; ``ff-mcp bench table`` turns them into ``bench/results/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path("bench/results")  # relative: the bench/ scripts run from the repository root
REPO_RESULTS_DIR = Path(__file__).resolve().parents[1] / "bench" / "results"


def machine_info(device: torch.device) -> dict[str, Any]:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def record(kind: str, tag: str, payload: dict[str, Any], device: torch.device, out_dir: Path = RESULTS_DIR,
           command: str | None = None) -> Path:
    """Write one result file with its provenance; returns its path. ``command`` defaults to this
    process's ``ff-mcp ...`` command line; scripts pass their own."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {
        "kind": kind,
        "tag": tag,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command or "ff-mcp " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "commit": _START_COMMIT,
        "machine": machine_info(device),
        **payload,
    }
    path = out_dir / f"{kind}-{tag}.json"
    n = 2
    while path.exists():  # a result is never overwritten: a rerun gets the next free number
        path = out_dir / f"{kind}-{tag}-{n}.json"
        n += 1
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def git_commit(repo: Path = Path(__file__).resolve().parents[1]) -> str | None:
    """HEAD of the repository this package runs from, with "+dirty" when files differ from it; None
    outside a git checkout."""
    import subprocess

    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ff_step_matmuls(widths: list[int], batch: int, num_classes: int, readout: bool,
                    shared_first: bool = False) -> list[tuple[int, int, int, int]]:
    """The (m, k, n, count) matmuls of one FF training step as the trainer runs them: per layer one
    forward on the positive, negative (and, with a readout, neutral) rows together, and one
    weight-gradient on the positive and negative rows (inputs are detached, so no input-gradient);
    then the readout's forward and weight-gradient on the neutral rows' features.

    ``shared_first``: the fused first layer computes the image part once for the B images
    (engine/fused.py), so its matmuls are (B, D, H) forward and (H, B, D) for the weight gradient.
    Its label columns are gathered and index-added, not multiplied, so they are not in the list:
    torch.mm on (rows, K, H) runs at ~15 GFLOP/s here and would pad the reference with time an
    implementation need not spend."""
    train_rows = 2 * batch
    rows = train_rows + (batch if readout else 0)
    mms = []
    for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        if index == 0 and shared_first:
            mms += [(batch, fan_in, fan_out, 1), (fan_out, batch, fan_in, 1)]
            continue
        mms.append((rows, fan_in, fan_out, 1))  # forward
        mms.append((fan_out, train_rows, fan_in, 1))  # dL/dW = dH^T X
    if readout:
        feat = sum(widths[2:]) if len(widths) > 2 else widths[-1]
        mms.append((batch, feat, num_classes, 1))
        mms.append((num_classes, batch, feat, 1))
    return mms


def flops_of(mms: list[tuple[int, int, int, int]]) -> float:
    return float(sum(2 * m * k * n * c for m, k, n, c in mms))


def mm_gflops(mms: list[tuple[int, int, int, int]], device: torch.device, seconds: float = 2.0,
              dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of torch.mm running exactly these shapes back to back (the roofline we compare to),
    in the dtype the training matmuls run in."""
    mats = [(torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype), c)
            for m, k, n, c in mms]
    for a, b, _ in mats:  # warm-up
        torch.mm(a, b)
    _sync(device)
    flops, reps, started = flops_of(mms), 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for a, b, c in mats:
            for _ in range(c):
                torch.mm(a, b)
        reps += 1
    _sync(device)
    return flops * reps / (time.perf_counter() - started) / 1e9


def interleaved_roofline(trainer, x: torch.Tensor, y: torch.Tensor, mms: list[tuple[int, int, int, int]],
                         rounds: int = 9, steps: int = 40, rest: float = 2.0,
                         dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Train steps against torch.mm on the same shapes, alternated: ``rounds`` times, ``steps``
    training steps then ``steps`` repetitions of the step's matmuls, then ``rest`` seconds idle.

    A shared 2-vCPU cloud machine changes speed under sustained load (torch.mm alone drops from
    ~182 to ~160 GFLOP/s after ~8 s, and memory-bound kernels slow 3-5x in some phases), so one
    long run of each side compares different machines. Short alternating rounds with a rest in
    between put both sides in the same state; the median round's ratio is ``fraction``, every
    round is kept, and ``fraction_best`` compares each side's fastest round.
    fraction = mm seconds / train seconds (the FLOPs are the same by construction)."""
    device = trainer.device
    session = trainer.session
    x, y = x.to(device), y.to(device)
    bs = trainer.config.batch_size
    gen = torch.Generator(device=device).manual_seed(0)
    order = torch.randperm(x.shape[0], device=device)
    mats = [(torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype), c)
            for m, k, n, c in mms]
    cursor = 0
    session.begin_fit(x, y)
    graphed = session.graphed_step()  # the step as training runs it

    def train(n: int) -> float:
        nonlocal cursor
        _sync(device)
        started = time.perf_counter()
        for _ in range(n):
            if cursor + bs > x.shape[0]:
                cursor = 0
            index = order[cursor : cursor + bs]
            cursor += bs
            if graphed is not None:
                graphed.step(index, gen)
            else:
                session.train_step(x[index], y[index], index, gen)
        _sync(device)
        return time.perf_counter() - started

    def matmuls(n: int) -> float:
        _sync(device)
        started = time.perf_counter()
        for _ in range(n):
            for a, b, c in mats:
                for _ in range(c):
                    torch.mm(a, b)
        _sync(device)
        return time.perf_counter() - started

    train(10), matmuls(10)  # warm-up
    rows = []
    for _ in range(rounds):
        time.sleep(rest)
        t_train = train(steps)
        t_mm = matmuls(steps)
        rows.append((t_mm / t_train, t_train / steps, t_mm / steps))
    best_step, best_mm = min(r[1] for r in rows), min(r[2] for r in rows)
    rows.sort()
    fraction, step_s, mm_s = rows[len(rows) // 2]
    return {
        "fraction": round(fraction, 3),
        "fractions": [round(r[0], 3) for r in rows],
        # best round of each side (timeit's estimator: interference only ever adds time)
        "fraction_best": round(best_mm / best_step, 3),
        "best_step_ms": round(1e3 * best_step, 3),
        "best_mm_ms": round(1e3 * best_mm, 3),
        "step_ms": round(1e3 * step_s, 3),
        "mm_ms": round(1e3 * mm_s, 3),
        "rounds": rounds,
        "steps_per_round": steps,
        "rest_seconds": rest,
        "gflops_train": round(flops_of(mms) / step_s / 1e9, 2),
        "gflops_mm": round(flops_of(mms) / mm_s / 1e9, 2),
    }


def run_throughput(args: argparse.Namespace) -> dict[str, Any]:
    from ff_mcp.train_args import step_from_args
    from ff_mcp.data import load_dataset
    from ff_mcp.engine import Trainer
    from ff_mcp.training import TrainOptions, train_model

    data = load_dataset(args.dataset, data_dir=args.data_dir, limit_train=args.limit_train)
    data = type(data)(data.name, data.x_train, data.y_train, data.x_test[:0], data.y_test[:0],
                      data.num_classes, data.image_shape, data.source)
    options = TrainOptions(hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                           lr=args.lr, device=args.device, seed=0, eval_every=10**6, fused=args.fused, amp=args.amp,
                           weight_decay=3e-4 if args.optimizer == "sgd" else 0.0,
                           step="autograd" if args.no_fused_step else step_from_args(args))
    options = TrainOptions(**{**options.__dict__, "extra": {}})
    trained = train_model(data, options)
    device = torch.device(trained.result.device)
    net = trained.network
    widths = [net.layers[0].in_features, *net.config.hidden]
    shared = Trainer(net, trained.train_config).session.shares_first_layer  # the path the steps took
    mms = ff_step_matmuls(widths, args.batch_size, data.num_classes, net.config.readout, shared_first=shared)
    steps = -(-data.x_train.shape[0] // args.batch_size) * args.epochs
    achieved = flops_of(mms) * steps / trained.result.train_seconds / 1e9
    mm_dtype = torch.bfloat16 if args.amp == "bf16" else torch.float16 if args.amp == "fp16" else torch.float32
    roofline = mm_gflops(mms, device, dtype=mm_dtype)
    step_roofline = interleaved_roofline(Trainer(net, trained.train_config), data.x_train, data.y_train, mms,
                                         dtype=mm_dtype)
    epoch_seconds = trained.result.train_seconds / args.epochs
    from ff_mcp.engine import train_backprop

    _, bp = train_backprop(trained.network_config, trained.train_config, data.x_train, data.y_train)
    bp_epoch_seconds = bp.train_seconds / args.epochs
    return {
        "dataset": data.name,
        "hidden": list(args.hidden),
        "batch_size": args.batch_size,
        "optimizer": args.optimizer,
        "amp": args.amp,
        "epochs": args.epochs,
        "epoch_seconds": round(epoch_seconds, 3),
        "samples_per_second": round(trained.result.samples_per_second, 1),
        "achieved_gflops": round(achieved, 2),
        "mm_gflops_same_shapes": round(roofline, 2),
        "roofline_fraction": step_roofline["fraction"],
        "roofline_fraction_best": step_roofline["fraction_best"],
        "epoch_roofline_fraction": round(achieved / roofline, 3),
        "step_roofline": step_roofline,
        "step": trained.result.step,
        "fused_step": trained.result.step != "autograd",
        "cuda_graph": trained.train_config.step == "cuda_graph",
        "native_step": trained.train_config.step == "native",
        "shared_first_layer": shared,
        "step_matmuls": [list(m) for m in mms],
        "bp_epoch_seconds": round(bp_epoch_seconds, 3),
        "ff_over_bp_epoch_time": round(epoch_seconds / bp_epoch_seconds, 3),
    }


# options that do not change what is trained: a final run may differ from its validation run in these
FINAL_RUN_FREE = ("eval_every", "device", "predict_method")


def _summary_without_test(trained: Any) -> dict[str, Any]:
    """The trained run's summary less what the trainer's own evaluation put there: the bench scores the
    test split itself, once."""
    summary = trained.summary()
    for key in ("test_accuracy", "test_error", "predict_method"):
        summary.pop(key, None)
    return summary


def run_final(args: argparse.Namespace) -> dict[str, Any]:
    """The final run of item 1 of the validation protocol: retrain on every training row (the validation rows
    included) with the settings of a recorded validation run (``--final-from FILE``), then evaluate the test
    split once with the prediction method validation chose there. Nothing is evaluated while training."""
    from ff_mcp.data import load_dataset
    from ff_mcp.engine import accuracy
    from ff_mcp.recipes import RECIPE_FIELDS
    from ff_mcp.train_args import ProgressBar, options_from_args
    from ff_mcp.training import train_model

    source = Path(args.final_from)
    try:
        chosen_run = json.loads(source.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--final-from: cannot read {source} as a result file ({exc})") from None
    chosen_run = chosen_run if isinstance(chosen_run, dict) else {}
    base = chosen_run.get("ff")
    if chosen_run.get("kind") != "accuracy" or not isinstance(base, dict) or base.get("chosen_on") != "validation":
        raise ValueError(f"--final-from: {source.name} is not an accuracy run that chose its method on a "
                         f"validation split (its ff.chosen_on is not 'validation')")
    if chosen_run.get("dataset") != args.dataset:
        raise ValueError(f"--final-from: {source.name} ran on {chosen_run.get('dataset')!r}, this command on "
                         f"{args.dataset!r}")
    if not args.no_baseline:
        raise ValueError("--final-from: a final run retrains FF only (the validation run holds its baseline); "
                         "pass --no-baseline")
    method = base["chosen_method"]
    if args.predict_method is not None and args.predict_method != method:
        raise ValueError(f"--predict-method: {args.predict_method!r}, but validation chose {method!r} in "
                         f"{source.name}; leave it out")
    if args.limit_train is not None:
        raise ValueError("--train-rows/--limit-train: a final run trains on every training row; leave it out")
    full = load_dataset(args.dataset, data_dir=args.data_dir, limit_test=args.limit_test)
    options = options_from_args(args)
    # what the command leaves to the recipe takes the validation run's value: the recipe sizes some settings
    # (batch, epochs) from the row count, which a final run changes
    theirs = chosen_run.get("options") or {}
    left = {k: tuple(theirs[k]) if k == "hidden" else theirs[k]
            for k in RECIPE_FIELDS if getattr(options, k, 0) is None and theirs.get(k) is not None}
    options = dataclasses.replace(options, **left)
    mine = json.loads(json.dumps({k: v for k, v in options.resolved(full).__dict__.items() if k != "extra"},
                                 default=str))
    differ = [k for k in sorted(set(mine) & set(theirs)) if k not in FINAL_RUN_FREE and mine[k] != theirs[k]]
    if differ:
        k = differ[0]
        raise ValueError(f"--final-from: this command's {k} is {mine[k]!r}, the validation run's ({source.name}) "
                         f"is {theirs[k]!r}: give the same settings ({len(differ)} differ: {', '.join(differ)})")
    bar = ProgressBar(enabled=not args.quiet, held_out="none")
    started = time.perf_counter()
    no_evaluation = dataclasses.replace(full, x_test=full.x_test[:0], y_test=full.y_test[:0])
    ff = train_model(no_evaluation, options, out=args.out, callbacks=[bar],
                     extra={"evaluated_on": "nothing while training: a final run on every training row"})
    bar.close()
    ff_wall = time.perf_counter() - started
    if method not in ff.network.prediction_methods():
        raise ValueError(f"--final-from: validation chose {method!r}, which this model does not have")
    test = accuracy(ff.network, full.x_test, full.y_test, method)  # once, the only look at the test split
    summary = _summary_without_test(ff)
    return {
        "dataset": full.name,
        "protocol": "final",
        "validation_split": None,
        "settings_from": {"file": source.name, "commit": chosen_run.get("commit"), "date": chosen_run.get("date"),
                          "validation_accuracy": base.get("validation_accuracy"), "chosen_method": method,
                          "rows": chosen_run.get("rows")},
        "rows": {"train": full.train_size, "validation": 0, "test": int(full.y_test.shape[0])},
        "options": {k: v for k, v in (ff.options or options).__dict__.items() if k != "extra"},
        "ff": {**summary, "wall_seconds": round(ff_wall, 1), "chosen_method": method,
               "chosen_on": f"validation, in {source.name}", "validation_accuracy": None,
               "test_accuracy": test, "test_error": 1.0 - test,
               "history": [{k: v for k, v in h.items() if k != "layers"} for h in ff.result.history]},
    }


def run_accuracy(args: argparse.Namespace) -> dict[str, Any]:
    """FF (and the backprop baseline) trained on the training rows less a validation split; the prediction
    method is chosen on validation; the test split is evaluated once, at the end, and reported beside it.
    With ``--final-from FILE``: the final run of ``run_final`` instead."""
    if getattr(args, "final_from", None):
        return run_final(args)
    from ff_mcp.data import load_dataset
    from ff_mcp.data.validation import validation_split
    from ff_mcp.engine import accuracy, train_backprop
    from ff_mcp.train_args import ProgressBar, options_from_args
    from ff_mcp.training import train_model

    full = load_dataset(args.dataset, data_dir=args.data_dir, limit_train=args.limit_train, limit_test=args.limit_test)
    data, x_val, y_val, how = validation_split(full)
    x_test, y_test = data.x_test, data.y_test
    options = options_from_args(args)
    if options.variant not in ("ff", "conv") and not args.no_baseline:
        raise ValueError(f"the backprop baseline is built for variants 'ff' and 'conv'; pass --no-baseline for "
                         f"{options.variant!r}")
    bar = ProgressBar(enabled=not args.quiet, held_out="val")
    started = time.perf_counter()
    # the trainer's per-epoch evaluation runs on validation: the test rows are not seen until the end
    on_validation = dataclasses.replace(data, x_test=x_val, y_test=y_val)
    ff = train_model(on_validation, options, out=args.out, callbacks=[bar],
                     extra={"evaluated_on": f"validation ({how}); its metrics' test_accuracy is validation accuracy"})
    bar.close()
    ff_wall = time.perf_counter() - started
    methods = list(ff.network.prediction_methods())
    validation = {m: accuracy(ff.network, x_val, y_val, m) for m in methods}
    chosen = max(methods, key=lambda m: (validation[m], -methods.index(m)))  # ties: the preferred method
    test = {m: accuracy(ff.network, x_test, y_test, m) for m in methods}  # once, after every choice is made
    summary = _summary_without_test(ff)
    payload: dict[str, Any] = {
        "dataset": data.name,
        "validation_split": how,
        "rows": {"train": data.train_size, "validation": int(y_val.shape[0]), "test": int(y_test.shape[0])},
        "options": {k: v for k, v in (ff.options or options).__dict__.items() if k != "extra"},
        "ff": {**summary, "wall_seconds": round(ff_wall, 1),
               "chosen_method": chosen, "chosen_on": "validation",
               "validation_accuracy": validation[chosen], "test_accuracy": test[chosen],
               "test_error": 1.0 - test[chosen],
               "validation_accuracy_by_method": validation, "test_accuracy_by_method": test,
               # the trainer's per-epoch evaluation ran on the validation rows: named so here
               "history": [{("validation_accuracy" if k == "test_accuracy" else
                             f"validation_accuracy_{k[len('test_accuracy_'):]}" if k.startswith("test_accuracy_")
                             else k): v for k, v in h.items() if k != "layers"} for h in ff.result.history]},
    }
    if not args.no_baseline and options.variant == "conv":  # the same layers and head, trained end to end
        started = time.perf_counter()
        ff_only = ("layer_epochs", "readout_from", "loss", "scale", "margin", "momentum", "collaborate")
        same = {k: v for k, v in options.options.items() if k not in ff_only}
        bp_options = dataclasses.replace(options, options={**same, "method": "bp"}, predict_method=None)
        bp_run = train_model(on_validation, bp_options)
        bp_test = accuracy(bp_run.network, x_test, y_test)
        payload["bp"] = {
            "model": "the conv model's layers and head trained end to end by backprop (--opt method=bp), same "
                     "optimizer, batch size, epochs and data",
            "validation_accuracy": bp_run.result.final.get("test_accuracy"),  # its evaluation ran on validation
            "test_accuracy": bp_test,
            "test_error": 1.0 - bp_test,
            "train_seconds": round(bp_run.result.train_seconds, 2),
            "epochs": bp_run.result.final["epoch"],
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
    elif not args.no_baseline:
        started = time.perf_counter()
        bp_model, bp = train_backprop(ff.network_config, ff.train_config, data.x_train, data.y_train, x_val, y_val)
        bp_test = accuracy(bp_model, x_test, y_test)
        payload["bp"] = {
            "validation_accuracy": bp.final.get("test_accuracy"),  # its per-epoch evaluation ran on validation
            "test_accuracy": bp_test,
            "test_error": 1.0 - bp_test,
            "train_seconds": round(bp.train_seconds, 2),
            "epochs": bp.final["epoch"],
            "wall_seconds": round(time.perf_counter() - started, 1),
        }
    return payload


def script_command() -> str:
    """The command line of a bench/ script, for ``record(command=...)``."""
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def write_table(out_dir: Path = RESULTS_DIR) -> Path:
    """Collect every result JSON into RESULTS.md (one table per kind)."""
    docs = [{**json.loads(p.read_text()), "_file": p.name} for p in sorted(out_dir.glob("*.json"))]
    lines = ["# Recorded benchmark results", "", "Generated by `ff-mcp bench table` from the JSON files beside it.", ""]
    thr = [d for d in docs if d.get("kind") == "throughput"]
    if thr:
        lines += ["## Throughput (one FF training epoch)", "",
                  "`step fraction`: train-step time against torch.mm on the step's shapes, alternated in short "
                  "rounds with rests (`interleaved_roofline`): the median round, and each side's best round. "
                  "`epoch fraction`: the whole epoch's GFLOP/s against 2 s of torch.mm after it.", "",
                  "| tag | data | hidden | batch | opt | amp | epoch s | samples/s | GFLOP/s | torch.mm GFLOP/s | step fraction (median / best) | epoch fraction | BP epoch s | FF/BP | device | date | command |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for d in thr:
            lines.append(f"| {d['tag']} | {d['dataset']} | {'x'.join(map(str, d['hidden']))} | {d['batch_size']} | "
                         f"{d['optimizer']} | {d.get('amp', 'none')}{', CUDA graph' if d.get('cuda_graph') else ''}{', native step' if d.get('native_step') else ''} | {d['epoch_seconds']} | {d['samples_per_second']} | "
                         f"{d['achieved_gflops']} | {d['mm_gflops_same_shapes']} | {d['roofline_fraction']}"
                         f"{' / ' + str(d['roofline_fraction_best']) if 'roofline_fraction_best' in d else ''} | "
                         f"{d.get('epoch_roofline_fraction', '')} | "
                         f"{d.get('bp_epoch_seconds', '')} | {d.get('ff_over_bp_epoch_time', '')} | {_dev(d)} | {d['date']} | "
                         f"`{d['command']}` |")
        lines.append("")
    acc = [d for d in docs if d.get("kind") == "accuracy"]
    if acc:
        lines += ["## Accuracy: FF beside backprop (same architecture, optimizer, batch, epochs)", "",
                  "Runs with a validation split chose the prediction method on it and evaluated the test split "
                  "once; older runs (validation `-`) report the method their command chose, on test.", "",
                  "| tag | data | hidden | epochs | FF validation error | FF test error (method) | BP test error | FF train s | FF epochs/s | BP train s | device | date | commit | command |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for d in sorted(acc, key=lambda d: d.get("date", ""), reverse=True):  # newest first
            ff, bp = d["ff"], d.get("bp") or {}
            bp_err = f"{100 * bp['test_error']:.2f} %" if bp else "not run"
            bp_s = bp.get("train_seconds", "")
            val = (f"{100 * (1 - ff['validation_accuracy']):.2f} %" if ff.get("validation_accuracy") is not None
                   else f"final run, settings of {d['settings_from']['file']}" if d.get("protocol") == "final" else "-")
            method = ff.get("chosen_method") or ff.get("predict_method") or ""
            lines.append(f"| {d['tag']} | {d['dataset']} | {'x'.join(map(str, d['options']['hidden']))} | {ff['epochs']} | "
                         f"{val} | {100 * ff['test_error']:.2f} % ({method}) | {bp_err} | {ff['train_seconds']} | "
                         f"{ff['epochs'] / ff['train_seconds']:.3g} | {bp_s} | {_dev(d)} | "
                         f"{d['date']} | {str(d.get('commit') or '')[:12]} | `{d['command']}` |")
        lines.append("")
    gnn = [d for d in docs if d.get("kind") == "gnn-accuracy"]
    if gnn:
        lines += ["## Forward-learned GNNs (node classification, Planetoid splits)", "",
                  "Each row: one method on one data set, with the depth, dropout, weight decay and (sf) temperature its validation nodes "
                  "chose among the runs of that file (every run is in the file); with several seeds, accuracies are the "
                  "mean over them.", "",
                  "| file | data | method | layer | depth | dropout | weight decay | temperature | hide_labels | seeds | val acc "
                  "| test acc | runs | device | date | commit |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for d in sorted(gnn, key=lambda d: d.get("date", ""), reverse=True):
            for key, chosen in d["chosen_on_validation"].items():
                dataset, method = key.split("/")
                run = next(r for r in d["runs"] if r["dataset"] == dataset and r["method"] == method
                           and r["depth"] == chosen["depth"] and r["dropout"] == chosen.get("dropout", r["dropout"])
                           and r.get("weight_decay") == chosen.get("weight_decay", r.get("weight_decay"))
                           and r.get("temperature", 1.0) == chosen.get("temperature", r.get("temperature", 1.0)))
                runs = sum(1 for r in d["runs"] if r["dataset"] == dataset and r["method"] == method)
                weight_decay = chosen.get("weight_decay", d.get("settings", {}).get("weight_decay", 5e-4))
                lines.append(f"| {d['_file']} | {dataset} | {method} | {run['layer']} | {run['depth']} | "
                             f"{run['dropout']} | {weight_decay:g} | {run.get('temperature', 1.0):g} | {run.get('hide_labels', 0.0)} | {chosen.get('seeds', 1)} | "
                             f"{100 * chosen['val_accuracy']:.1f} % | "
                             f"{100 * chosen['test_accuracy']:.1f} % | {runs} | {_dev(d)} | {d['date']} | "
                             f"{str(d.get('commit') or '')[:12]} |")
        lines.append("")
    other = sorted({d.get("kind") for d in docs} - {"throughput", "accuracy", "gnn-accuracy"})
    for kind in other:
        lines += [f"## {kind}", ""]
        for d in docs:
            if d.get("kind") == kind:
                lines.append(f"- `{d['tag']}` ({d['date']}, {_dev(d)}): see `{d['_file']}`")
        lines.append("")
    path = out_dir / "RESULTS.md"
    path.write_text("\n".join(lines))
    return path


def _dev(d: dict[str, Any]) -> str:
    m = d.get("machine", {})
    if m.get("gpu"):
        return f"{m['gpu']}"
    return f"CPU {m.get('cpu_model', m.get('processor', '?'))} x{m.get('torch_threads', '?')} threads"


def add_parser(sub) -> None:
    from ff_mcp.train_args import _int_list, add_train_arguments
    from ff_mcp.engine import STEPS

    bench = sub.add_parser("bench", help="benchmarks; results go to bench/results")
    kinds = bench.add_subparsers(dest="bench_kind", required=True)

    thr = kinds.add_parser("throughput", help="one FF epoch: samples/s and the fraction of torch.mm GFLOP/s")
    thr.add_argument("--dataset", default="mnist")
    thr.add_argument("--data-dir")
    thr.add_argument("--hidden", type=_int_list, default=(1000, 1000, 1000))
    thr.add_argument("--batch-size", type=int, default=100)
    thr.add_argument("--optimizer", choices=["adam", "sgd"], default="sgd")
    thr.add_argument("--lr", type=float, default=1e-3)
    thr.add_argument("--epochs", type=int, default=1)
    thr.add_argument("--fused", action="store_true", default=None)
    thr.add_argument("--no-fused-step", action="store_true", help="autograd step on every layer (ablation)")
    thr.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    thr.add_argument("--step", choices=STEPS, default=None, help="training step (default auto)")
    thr.add_argument("--cuda-graph", action="store_true", help="the same as --step cuda_graph")
    thr.add_argument("--native-step", action="store_true", help="the same as --step native (engine/native.py)")
    thr.add_argument("--device", default="auto")
    thr.add_argument("--limit-train", type=int, default=None)
    thr.add_argument("--tag", default=None)
    _add_record_arguments(thr)

    acc = kinds.add_parser("accuracy", help="train FF and the backprop baseline, record test error")
    add_train_arguments(acc)
    acc.add_argument("--out", default=None)
    acc.add_argument("--no-baseline", action="store_true")
    acc.add_argument("--quiet", action="store_true")
    acc.add_argument("--tag", default=None)
    acc.add_argument("--final-from", metavar="FILE", default=None,
                     help="a final run: retrain on every training row (validation rows included) with the settings "
                          "of the recorded validation run FILE (the command must give the same settings), then "
                          "evaluate the test split once with the method validation chose there")
    _add_record_arguments(acc)

    table = kinds.add_parser("table", help="rewrite bench/results/RESULTS.md from the JSON results")
    table.add_argument("--results-dir", default=str(REPO_RESULTS_DIR))
    bench.set_defaults(func=run_from_args)


def _add_record_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--record", action="store_true",
                       help=f"write the result file into the repository's bench/results ({REPO_RESULTS_DIR})")
    where.add_argument("--results-dir", default=None, help="write the result file into this directory")


def results_dir_from_args(args: argparse.Namespace) -> Path | None:
    """Where a bench run writes its result file: only where asked (--record or --results-dir)."""
    if getattr(args, "results_dir", None):
        return Path(args.results_dir)
    if getattr(args, "record", False):
        if not REPO_RESULTS_DIR.parent.is_dir():
            raise ValueError(f"--record: {REPO_RESULTS_DIR.parent} is not here (an installed package has no "
                             f"repository); give --results-dir DIR")
        return REPO_RESULTS_DIR
    return None


def run_from_args(args: argparse.Namespace) -> int:
    if args.bench_kind == "table":
        print(write_table(Path(args.results_dir)))
        return 0
    out_dir = results_dir_from_args(args)
    if args.bench_kind == "throughput":
        payload = run_throughput(args)
        tag = args.tag or f"{payload['dataset']}-{'x'.join(map(str, args.hidden))}-b{args.batch_size}-{args.optimizer}"
    else:
        payload = run_accuracy(args)
        hidden = payload["options"]["hidden"]
        tag = args.tag or (f"{payload['dataset']}-{'x'.join(map(str, hidden))}-e{payload['options']['epochs']}"
                           + ("-final" if payload.get("protocol") == "final" else ""))
    from ff_mcp.engine import resolve_device

    path = None
    if out_dir is not None:
        path = record(args.bench_kind, tag, payload, resolve_device(args.device), out_dir)
        write_table(out_dir)
    brief = {k: ({kk: vv for kk, vv in v.items() if kk != "history"} if isinstance(v, dict) else v)
             for k, v in payload.items() if k != "options"}
    print(json.dumps({"result": str(path) if path else "not written (give --record or --results-dir)", **brief},
                     default=str))
    return 0


# the code a measurement runs is the code when it starts: taken once, at import, so an edit made while
# a long run goes on does not mark its result "+dirty" (or clean)
_START_COMMIT = git_commit()
