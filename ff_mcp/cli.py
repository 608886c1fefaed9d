"""The ``ff-mcp`` command: train, eval, bench, demo (and serve/repl, registered by their modules).

Progress goes to stderr; with ``--json`` the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from ff_mcp import __version__

log = logging.getLogger("ff_mcp")


def _int_list(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden must be comma-separated integers like 1000,1000, got {text!r}")
    if not sizes or any(s < 1 or s > 100_000 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be in [1, 100000], got {text!r}")
    return sizes


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from ff_mcp.data import DATASETS
    from ff_mcp.engine import goodness_names, loss_names, negative_names

    p.add_argument("--dataset", required=True, choices=DATASETS, help="data set to train on")
    p.add_argument("--data-dir", help="directory holding the data set (else FF_MCP_DATA, ../shared/data, ...)")
    p.add_argument("--hidden", type=_int_list, default=(1000, 1000, 1000), help="hidden sizes, e.g. 1000,1000,1000")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--schedule", choices=["simultaneous", "greedy"], default="simultaneous")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3 Adam, 0.05 SGD)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--goodness", choices=goodness_names(), default="sum_squares")
    p.add_argument("--threshold", type=float, default=None, help="goodness threshold (default: width for sums, 2 for means)")
    p.add_argument("--loss", choices=loss_names(), default="softplus")
    p.add_argument("--negatives", choices=negative_names(), default="wrong_label")
    p.add_argument("--label-mode", choices=["overlay", "concat", "none"], default=None)
    p.add_argument("--label-strength", type=float, default=1.0, help="value of the label's one-hot slot")
    p.add_argument("--norm", choices=["rms", "l2", "none"], default="rms")
    p.add_argument("--activation", default="relu")
    p.add_argument("--peer-norm", type=float, default=0.0, help="peer normalisation weight (Hinton: 0.03)")
    p.add_argument("--no-readout", action="store_true", help="skip the linear softmax readout")
    p.add_argument("--readout-lr", type=float, default=None,
                   help="readout learning rate (default: 10x --lr with SGD, --lr with Adam)")
    p.add_argument("--readout-weight-decay", type=float, default=0.0, help="readout weight decay (loeweX: 3e-3)")
    p.add_argument("--include-first-layer", action="store_true", help="count the first hidden layer when predicting")
    p.add_argument("--predict-method", choices=["goodness", "readout"], default="goodness")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    p.add_argument("--cuda-graph", action="store_true",
                   help="CUDA: capture each full mini-batch's training step as a CUDA graph and replay it")
    p.add_argument("--native-step", action="store_true",
                   help="CPU with SGD (fp32 or bf16): run each mini-batch through the compiled C++ step "
                        "(needs g++ and ninja; built once, ~30 s)")
    p.add_argument("--eval-every", type=int, default=1, help="epochs between test evaluations")
    p.add_argument("--limit-train", type=int, default=None, help="use only the first N training rows")
    p.add_argument("--limit-test", type=int, default=None, help="use only the first N test rows")
    p.add_argument("--pipeline", action="store_true",
                   help="pipelined training: one thread per stage, or one process per stage under torchrun")
    p.add_argument("--stages", type=int, default=None,
                   help="pipeline stages (default: the torchrun world size, else 2)")


def options_from_args(args: argparse.Namespace):
    from ff_mcp.training import TrainOptions

    return TrainOptions(
        hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule, goodness=args.goodness,
        threshold=args.threshold, loss=args.loss, negatives=args.negatives, label_mode=args.label_mode,
        label_strength=args.label_strength,
        norm=args.norm, activation=args.activation, peer_norm=args.peer_norm, readout=not args.no_readout,
        skip_first_layer=not args.include_first_layer, predict_method=args.predict_method, seed=args.seed,
        device=args.device, amp=args.amp, cuda_graph=args.cuda_graph, native_step=args.native_step, eval_every=args.eval_every,
        readout_lr=args.readout_lr, readout_weight_decay=args.readout_weight_decay,
        pipeline=args.pipeline or args.stages is not None, pipeline_stages=args.stages,
    )


class ProgressBar:
    """A tqdm bar on stderr: one tick per mini-batch, loss and accuracy after each epoch."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.bar = None
        self.epoch = 0

    def on_batch_end(self, epoch: int, step: int, steps: int) -> None:
        if not self.enabled:
            return
        if self.bar is None or epoch != self.epoch:
            from tqdm import tqdm

            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=steps, desc=f"epoch {epoch}", file=sys.stderr, leave=True, dynamic_ncols=True)
            self.epoch = epoch
        self.bar.update(1)

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        if not self.enabled or self.bar is None:
            return
        post = {"loss": f"{metrics['loss']:.4f}"}
        for key in ("train_accuracy", "test_accuracy"):
            if key in metrics:
                post[key.replace("_accuracy", "_acc")] = f"{metrics[key]:.4f}"
        self.bar.set_postfix(post)
        self.bar.close()
        self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_train(args: argparse.Namespace) -> int:
    from ff_mcp.data import load_dataset
    from ff_mcp.engine.distributed import launch_env
    from ff_mcp.training import train_model

    data = load_dataset(args.dataset, data_dir=args.data_dir, limit_train=args.limit_train, limit_test=args.limit_test)
    options = options_from_args(args)
    launch = launch_env() if options.pipeline else None
    reports = launch is None or launch.rank == 0  # under torchrun, rank 0 speaks for the pipeline
    bar = ProgressBar(enabled=not args.quiet and reports)
    try:
        trained = train_model(data, options, out=args.out, callbacks=[bar])
    finally:
        bar.close()
    if not reports:
        return 0
    summary = {"dataset": data.name, **trained.summary()}
    _emit(args, summary, _train_text(summary))
    return 0


def _train_text(s: dict[str, Any]) -> str:
    acc = "n/a" if s["test_accuracy"] is None else f"{100 * s['test_accuracy']:.2f} %"
    lines = [
        f"dataset           {s['dataset']}",
        f"test accuracy     {acc}",
        f"epochs            {s['epochs']}",
        f"train seconds     {s['train_seconds']:.1f}",
        f"samples/second    {s['samples_per_second']:.0f}",
        f"device            {s['device']}",
    ]
    if s.get("native_steps") is not None:
        lines.append(f"compiled steps    {s['native_steps']} mini-batches (--native-step)")
    if s.get("cuda_graph") is not None:
        graph = s["cuda_graph"]
        lines.append(f"CUDA graph        {graph['captures']} captures"
                     + (f", eager after: {graph['error']}" if graph.get("error") else ""))
    if s.get("model_path"):
        lines.append(f"model             {s['model_path']}")
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from ff_mcp.data import load_dataset
    from ff_mcp.engine import accuracy, load_checkpoint, resolve_device

    ckpt = load_checkpoint(args.model, device=resolve_device(args.device))
    data = load_dataset(args.dataset, data_dir=args.data_dir, limit_test=args.limit_test)
    if data.in_features != ckpt.network.config.in_features:
        raise SystemExit(
            f"error: model {args.model} expects {ckpt.network.config.in_features} features, "
            f"data set {data.name} has {data.in_features}"
        )
    methods = ["goodness"] if ckpt.network.labels.mode != "none" else []
    if ckpt.network.config.readout:
        methods.append("readout")
    result: dict[str, Any] = {"dataset": data.name, "model_path": str(args.model), "test_rows": data.x_test.shape[0]}
    for method in methods:
        result[f"test_accuracy_{method}"] = accuracy(ckpt.network, data.x_test, data.y_test, method)
    primary = ckpt.train_config.get("predict_method", methods[0])
    result["test_accuracy"] = result.get(f"test_accuracy_{primary}", result[f"test_accuracy_{methods[0]}"])
    result["test_error"] = 1.0 - result["test_accuracy"]
    text = "\n".join(f"{k:<24}{v}" for k, v in result.items())
    _emit(args, result, text)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from ff_mcp import bench

    return bench.run_from_args(args)


def _emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(result), flush=True)
    else:
        print(text, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ff-mcp", description="Forward-Forward learning: engine, MCP server, colors.")
    parser.add_argument("--version", action="version", version=f"ff-mcp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train an FF network on a data set")
    add_train_arguments(train)
    train.add_argument("--out", help="where to save the model (.safetensors)")
    train.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate a saved model on a data set's test split")
    ev.add_argument("--model", required=True, help="a .safetensors checkpoint written by ff-mcp")
    ev.add_argument("--dataset", required=True)
    ev.add_argument("--data-dir")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--limit-test", type=int, default=None)
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval)

    from ff_mcp import bench

    bench.add_parser(sub)

    for module, commands in _OPTIONAL_COMMANDS.items():
        try:
            mod = __import__(module, fromlist=["add_parser"])
            mod.add_parser(sub)
        except ModuleNotFoundError as exc:
            if not exc.name or exc.name.split(".")[0] == "ff_mcp" and not module.startswith(exc.name):
                raise  # a broken ff-mcp, not a missing part or package
            # That part of ff-mcp, or a package it needs (mcp for the server), is not installed:
            # the engine, training and bench commands still work, and its commands say what is missing.
            for name in commands:
                if name not in sub.choices:
                    p = sub.add_parser(name, help=f"(unavailable: needs the {exc.name.split('.')[0]!r} module)")
                    p.set_defaults(func=_missing(name, exc.name.split(".")[0]))
    return parser


# subcommands whose modules need more than the engine (the MCP SDK, the JVM bridge)
_OPTIONAL_COMMANDS = {"ff_mcp.demo": ("demo",), "ff_mcp.server.cli": ("serve",), "ff_mcp.clojure.cli": ("repl",)}


def _missing(command: str, module: str):
    def fail(args: argparse.Namespace) -> int:
        print(f"ff-mcp {command} needs the Python module {module!r}, which is not installed here "
              f"(pip install 'ff-mcp' installs it with its dependencies)", file=sys.stderr)
        return 2

    return fail


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
