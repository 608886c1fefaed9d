"""Pipelined FF training: scaling efficiency across ranks, and accuracy beside simultaneous training.

    python bench/pipeline_scaling.py throughput [--ranks 2] [--steps 100] [--hidden 2000,2000,2000,2000]
    python bench/pipeline_scaling.py accuracy [--epochs 10] [--hidden 2000,2000,2000,2000]

throughput: efficiency = throughput(N ranks x 1 thread) / (N x throughput(1 rank x 1 thread)) on MNIST,
``--steps`` mini-batches of ``--batch-size`` rows per epoch, two epochs, the second one timed (the first
warms up allocators and optimizer state); 1-rank and N-rank runs alternate for ``--repeats`` rounds and
the median round's pair is reported. Every rank is a gloo process on 127.0.0.1 running
``DistributedPipelineTrainer`` with one intra-op thread; the 1-rank run is the same code with one stage.
Beside the wall-clock numbers it records each rank's compute CPU seconds: balance = sum / (N x max) is
the bound the stage split puts on efficiency (stable under load: 0.857 and 0.856 in two loaded runs),
and cpu_efficiency = compute(1 rank) / (N x slowest rank's compute) also charges the extra CPU time
the split costs (which contention for caches and memory inflates on a busy machine). On idle cores,
the wall-clock efficiency should approach cpu_efficiency less communication. The in-process
threaded pipeline (``PipelineTrainer``, N stages x 1 thread) is timed too.

accuracy: trains the same network with the same seed by simultaneous training (``Trainer``) and by the
pipeline for equal epochs, and records both test accuracies, their difference, and whether the
weights are bit-identical (they are when both use the same intra-op thread count, the default here).

Results are JSON files under bench/results/ (``ff_mcp.bench.record``), with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from ff_mcp.bench import RESULTS_DIR, record, write_table
from ff_mcp.train_args import _int_list
from ff_mcp.data import load_dataset
from ff_mcp.engine import NetworkConfig, OptimizerConfig, Trainer, TrainConfig, build_network
from ff_mcp.engine.distributed import train_local_processes
from ff_mcp.engine.pipeline import PipelineTrainer, layer_widths, split_layers


def network_config(data, hidden: tuple[int, ...]) -> NetworkConfig:
    return NetworkConfig(in_features=data.in_features, num_classes=data.num_classes, hidden=hidden,
                         label_mode="overlay", image_shape=data.image_shape)


def train_config(args: argparse.Namespace, epochs: int, eval_every: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=args.batch_size, seed=args.seed, device="cpu",
                       optimizer=OptimizerConfig(args.optimizer, args.lr), eval_every=eval_every,
                       train_eval_rows=0, cooldown=False)


def last_epoch_rate(history: list[dict], rows: int) -> tuple[float, float]:
    """(seconds, rows/s) of the last epoch from the cumulative train_seconds of a TrainResult history."""
    seconds = history[-1]["train_seconds"] - (history[-2]["train_seconds"] if len(history) > 1 else 0.0)
    return seconds, rows / seconds


def run_throughput(args: argparse.Namespace) -> dict:
    rows = args.steps * args.batch_size
    data = load_dataset(args.dataset, data_dir=args.data_dir, limit_train=rows, limit_test=1)
    net_cfg = network_config(data, args.hidden)
    cfg = train_config(args, epochs=2, eval_every=10**6)
    load_before = os.getloadavg()
    # 1 rank and N ranks alternate, round after round: a shared machine's speed drifts, so each
    # round's pair is compared and the median round is reported (every round is kept).
    rounds = []
    for _ in range(args.repeats):
        runs = {}
        for ranks in sorted({1, args.ranks}):
            _, result, timings = train_local_processes(net_cfg, cfg, data.x_train, data.y_train, nprocs=ranks)
            seconds, rate = last_epoch_rate(result.history, rows)
            runs[f"{ranks}_ranks"] = {"ranks": ranks, "epoch_seconds": round(seconds, 3),
                                      "samples_per_second": round(rate, 1),
                                      "per_rank": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in t.items()}
                                                   for t in timings]}
        runs["efficiency"] = round(runs[f"{args.ranks}_ranks"]["samples_per_second"]
                                   / (args.ranks * runs["1_ranks"]["samples_per_second"]), 3)
        rounds.append(runs)
    runs = sorted(rounds, key=lambda r: r["efficiency"])[len(rounds) // 2]
    one, many = runs["1_ranks"], runs[f"{args.ranks}_ranks"]
    payload = {
        "dataset": data.name, "hidden": list(args.hidden), "batch_size": args.batch_size, "steps_timed": args.steps,
        "optimizer": args.optimizer, "ranks": args.ranks,
        "stages": [[r.start, r.stop] for r in split_layers(layer_widths(build_network(net_cfg)), args.ranks)],
        "runs": runs,
        "efficiency": runs["efficiency"],
        "efficiency_rounds": [r["efficiency"] for r in rounds],
        "rounds": rounds,
    }
    compute_one = one["per_rank"][0]["stage_seconds"]
    compute = [r["stage_seconds"] for r in many["per_rank"]]
    payload["cpu_efficiency"] = round(compute_one / (args.ranks * max(compute)), 3)
    payload["balance"] = round(sum(compute) / (args.ranks * max(compute)), 3)
    if not args.no_threads:
        previous = torch.get_num_threads()
        net = build_network(net_cfg, seed=args.seed)
        trainer = PipelineTrainer(net, cfg, stages=args.ranks, threads_per_stage=1)
        result = trainer.fit(data.x_train, data.y_train)
        torch.set_num_threads(previous)
        seconds, rate = last_epoch_rate(result.history, rows)
        payload["threaded"] = {"stages": args.ranks, "epoch_seconds": round(seconds, 3),
                               "samples_per_second": round(rate, 1),
                               "stage_cpu_seconds": [round(s, 3) for s in trainer.stage_seconds],
                               "efficiency": round(rate / (args.ranks * one["samples_per_second"]), 3)}
    payload["load_average_1m"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    return payload


def run_accuracy(args: argparse.Namespace) -> dict:
    data = load_dataset(args.dataset, data_dir=args.data_dir, limit_train=args.limit_train, limit_test=args.limit_test)
    net_cfg = network_config(data, args.hidden)
    cfg = train_config(args, epochs=args.epochs, eval_every=args.epochs)
    cfg = TrainConfig.from_dict({**cfg.to_dict(), "cooldown": True, "train_eval_rows": 2000})
    torch.set_num_threads(args.threads)
    plain = build_network(net_cfg, seed=args.seed)
    started = time.perf_counter()
    simultaneous = Trainer(plain, cfg).fit(data.x_train, data.y_train, data.x_test, data.y_test)
    plain_wall = time.perf_counter() - started
    piped = build_network(net_cfg, seed=args.seed)
    started = time.perf_counter()
    pipelined = PipelineTrainer(piped, cfg, stages=args.ranks, threads_per_stage=args.threads).fit(
        data.x_train, data.y_train, data.x_test, data.y_test)
    piped_wall = time.perf_counter() - started
    a, b = plain.state_dict(), piped.state_dict()
    acc_plain, acc_piped = simultaneous.final["test_accuracy"], pipelined.final["test_accuracy"]
    return {
        "dataset": data.name, "hidden": list(args.hidden), "epochs": args.epochs, "batch_size": args.batch_size,
        "optimizer": args.optimizer, "lr": args.lr, "seed": args.seed, "stages": args.ranks,
        "threads_per_op": args.threads,
        "simultaneous": {"test_accuracy": acc_plain, "train_seconds": round(simultaneous.train_seconds, 1),
                         "wall_seconds": round(plain_wall, 1)},
        "pipelined": {"test_accuracy": acc_piped, "train_seconds": round(pipelined.train_seconds, 1),
                      "wall_seconds": round(piped_wall, 1)},
        "difference_points": round(100 * (acc_piped - acc_plain), 3),
        "weights_identical": all(torch.equal(a[k], b[k]) for k in a),
        "max_weight_difference": max(float((a[k] - b[k]).abs().max()) for k in a if a[k].is_floating_point()),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["throughput", "accuracy"])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir")
    parser.add_argument("--hidden", type=_int_list, default=(2000, 2000, 2000, 2000))
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ranks", type=int, default=2, help="ranks (throughput) or stages (accuracy)")
    parser.add_argument("--steps", type=int, default=100, help="throughput: mini-batches in the timed epoch")
    parser.add_argument("--no-threads", action="store_true", help="throughput: skip the threaded pipeline")
    parser.add_argument("--repeats", type=int, default=3,
                        help="throughput: alternating rounds of 1 rank and N ranks; the median round is reported")
    parser.add_argument("--epochs", type=int, default=10, help="accuracy: epochs for both trainings")
    parser.add_argument("--threads", type=int, default=1, help="accuracy: intra-op threads (both trainings)")
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--limit-test", type=int, default=None)
    parser.add_argument("--tag", default=None)
    parser.add_argument("--results-dir", default=str(RESULTS_DIR))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    payload = run_throughput(args) if args.mode == "throughput" else run_accuracy(args)
    hidden = "x".join(map(str, args.hidden))
    if args.mode == "throughput":
        tag = args.tag or f"{args.dataset}-{hidden}-b{args.batch_size}-n{args.ranks}-s{args.steps}"
    else:
        tag = args.tag or f"{args.dataset}-{hidden}-e{args.epochs}-stages{args.ranks}"
    payload["bench_command"] = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    out_dir = Path(args.results_dir)
    path = record(f"pipeline_{args.mode}", tag, payload, torch.device("cpu"), out_dir)
    write_table(out_dir)
    print(json.dumps({"result": str(path), **{k: v for k, v in payload.items() if k != "runs"}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
