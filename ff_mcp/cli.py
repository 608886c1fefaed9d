"""The ``ff-mcp`` command: train, eval, bench, demo (and serve/repl, registered by their modules).

Progress goes to stderr (a bar on a terminal, a line per epoch otherwise). With ``--json``, ``train``
prints one JSON line per epoch on stdout (``"event": "epoch"``, the record of ff_mcp/history.py) and
the last stdout line is one JSON object: the result, with the whole ``history``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from ff_mcp import __version__
from ff_mcp.train_args import (  # noqa: F401  (the training flags live beside the bench that shares them)
    ProgressBar,
    _int_list,
    add_train_arguments,
    options_from_args,
    step_from_args,
    variant_options_from_args,
)

log = logging.getLogger("ff_mcp")


def cmd_train(args: argparse.Namespace) -> int:
    from ff_mcp.data import GraphDataset, load_data
    from ff_mcp.engine.distributed import launch_env
    from ff_mcp.training import train_model

    data = load_data(args.dataset, data_dir=args.data_dir, limit_train=args.limit_train, limit_test=args.limit_test)
    if args.resume:
        return _resume(args, data)
    options = options_from_args(args)
    launch = launch_env() if options.pipeline else None
    reports = launch is None or launch.rank == 0  # under torchrun, rank 0 speaks for the pipeline
    bar = ProgressBar(enabled=not args.quiet and reports, json_lines=args.json and reports)
    try:
        trained = train_model(data, options, out=args.out, callbacks=[bar], stop_after=args.stop_after)
    finally:
        bar.close()
    if not reports:
        return 0
    summary = {"dataset": data.name, **trained.summary()}
    if args.plot:
        import torch

        graph = isinstance(data, GraphDataset)  # no goodness-of-pairs panel for a graph's nodes
        x_test, y_test = (torch.zeros(0), torch.zeros(0)) if graph else (data.x_test, data.y_test)
        summary["plot"] = write_plot(args.plot, bar.history, trained.network, x_test, y_test,
                                     f"{data.name}: {trained.network.kind} {'x'.join(map(str, summary.get('hidden') or []))}")
    if args.json:
        summary["history"] = bar.history
    _emit(args, summary, _train_text(summary))
    return 0


# what --resume takes from the command line; everything else comes from the saved run
RESUME_FLAGS = {"dataset", "data_dir", "epochs", "out", "device", "quiet", "json", "plot", "resume", "stop_after",
                "limit_train", "limit_test", "verbose", "command", "func"}


def _resume(args: argparse.Namespace, data) -> int:
    from ff_mcp.training import resume_model

    parser = build_parser().parse_args(["train", "--dataset", args.dataset])
    changed = sorted(k for k, v in vars(args).items() if k not in RESUME_FLAGS and getattr(parser, k, v) != v)
    if changed:
        raise ValueError(f"--resume goes on with the saved run's own settings; drop {', '.join('--' + c.replace('_', '-') for c in changed)} "
                         f"(only --epochs, --out, --device, --stop-after, --plot, --json, --quiet apply)")
    if args.epochs is None:
        raise ValueError("--resume needs --epochs N: the number of epochs the run should reach in all")
    bar = ProgressBar(enabled=not args.quiet, json_lines=args.json)
    try:
        trained = resume_model(args.resume, data, args.epochs, out=args.out, callbacks=[bar],
                               device=None if args.device == "auto" else args.device, stop_after=args.stop_after)
    finally:
        bar.close()
    summary = {"dataset": data.name, **trained.summary(), "resumed": str(args.resume)}
    history = [dict(h) for h in (trained.result.history or [])]
    if args.plot:
        from ff_mcp.history import history_records

        summary["plot"] = write_plot(args.plot, history_records(history), trained.network, data.x_test, data.y_test,
                                     f"{data.name}: {trained.network.kind} (resumed)")
    if args.json:
        from ff_mcp.history import history_records

        summary["history"] = history_records(history)
    _emit(args, summary, _train_text(summary))
    return 0


def write_plot(path: str, history: list, model, x_test, y_test, title: str) -> str:
    """Draw the run's figure (ff_mcp/plot.py) into ``path``; returns the absolute path."""
    from ff_mcp.plot import goodness_of_pairs, training_figure

    png = training_figure(history, goodness_of_pairs(model, x_test, y_test) if x_test.shape[0] else None, title)
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    return str(out.absolute())


def cmd_plot(args: argparse.Namespace) -> int:
    from ff_mcp.data import DATASETS, load_dataset
    from ff_mcp.engine import load_checkpoint

    ckpt = load_checkpoint(args.model)
    history = (ckpt.metrics or {}).get("history") or []
    if not history:
        raise ValueError(f"model {args.model} keeps no training history to plot")
    from ff_mcp.plot import trained_on

    dataset = args.dataset or (ckpt.extra.get("dataset") if trained_on(ckpt.extra, ckpt.extra.get("dataset")) else None)
    x_test = y_test = None
    if dataset in DATASETS:
        data = load_dataset(dataset, data_dir=args.data_dir)
        if data.in_features == ckpt.model.in_features and data.num_classes == getattr(ckpt.model, "num_classes", 0):
            x_test, y_test = data.x_test, data.y_test
    elif args.dataset:
        raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, got {args.dataset!r}")
    import torch

    empty = torch.zeros(0)
    path = write_plot(args.out, history, ckpt.model, x_test if x_test is not None else empty,
                      y_test if y_test is not None else empty, f"{Path(args.model).name}: {ckpt.kind}")
    _emit(args, {"plot": path, "epochs": len(history), "goodness": x_test is not None}, path)
    return 0


def _train_text(s: dict[str, Any]) -> str:
    acc = "n/a" if s["test_accuracy"] is None else f"{100 * s['test_accuracy']:.2f} %"
    lines = [
        f"dataset           {s['dataset']}",
        f"test accuracy     {acc}",
        *([f"val accuracy      {100 * s['val_accuracy']:.2f} %"] if s.get("val_accuracy") is not None else []),
        f"epochs            {s['epochs']}",
        f"network           {s.get('variant')} {'x'.join(map(str, s.get('hidden') or []))}, batch {s.get('batch_size')}"
        + (f", recipe {s['recipe']}" if s.get("recipe") else "") + (f", resumed from {s['resumed']}" if s.get("resumed") else "")
        + (f", backend {s['step']}" if str(s.get("step")).startswith("jax") else ""),
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
    if s.get("plot"):
        lines.append(f"plot              {s['plot']}")
    return "\n".join(lines)


def _eval_graph(args: argparse.Namespace, ckpt) -> int:
    """A graph model on a graph data set's validation and test nodes (every method it has)."""
    from ff_mcp.data import GRAPH_DATASETS, load_data
    from ff_mcp.engine.trainer import graph_accuracies

    model = ckpt.model
    if args.dataset not in GRAPH_DATASETS or "graph" not in model.data_kinds:
        raise ValueError(f"--dataset: model {args.model} (kind {ckpt.kind!r}) and data set {args.dataset!r} do not "
                         f"match: graph models evaluate on {', '.join(GRAPH_DATASETS)}, others on rows")
    if args.limit_test is not None:
        raise ValueError("--limit-test: a graph's test nodes are fixed by its split")
    data = load_data(args.dataset, data_dir=args.data_dir)
    if data.in_features != model.in_features:
        raise ValueError(f"model {args.model} expects {model.in_features} features, {data.name} has {data.in_features}")
    methods = [model.check_method(args.method)] if args.method else list(model.prediction_methods())
    result: dict[str, Any] = {"dataset": data.name, "model_path": str(args.model), "variant": ckpt.kind,
                              "test_nodes": int(data.graph.test_mask.sum())}
    for method in methods:
        scores = graph_accuracies(model, data.graph, method)
        result[f"val_accuracy_{method}"] = scores.get("val_accuracy")
        result[f"test_accuracy_{method}"] = scores.get("test_accuracy")
    result["predict_method"] = methods[0]
    result["val_accuracy"] = result[f"val_accuracy_{methods[0]}"]
    result["test_accuracy"] = result[f"test_accuracy_{methods[0]}"]
    result["test_error"] = 1.0 - result["test_accuracy"]
    _emit(args, result, "\n".join(f"{k:<24}{v}" for k, v in result.items()))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ff_mcp.data import GRAPH_DATASETS, load_dataset
    from ff_mcp.engine import accuracy, load_checkpoint, resolve_device

    ckpt = load_checkpoint(args.model, device=resolve_device(args.device))
    model = ckpt.model
    if args.dataset in GRAPH_DATASETS or "graph" in model.data_kinds:
        return _eval_graph(args, ckpt)
    data = load_dataset(args.dataset, data_dir=args.data_dir, limit_test=args.limit_test)
    if data.in_features != model.in_features:
        raise SystemExit(
            f"error: model {args.model} expects {model.in_features} features, "
            f"data set {data.name} has {data.in_features}"
        )
    methods = list(model.prediction_methods())
    if args.method is not None:
        methods = [model.check_method(args.method)]
    if not methods:
        raise SystemExit(f"error: model {args.model} (kind {ckpt.kind!r}) has no prediction method")
    result: dict[str, Any] = {"dataset": data.name, "model_path": str(args.model), "variant": ckpt.kind,
                              "test_rows": data.x_test.shape[0]}
    for method in methods:
        result[f"test_accuracy_{method}"] = accuracy(model, data.x_test, data.y_test, method)
    primary = args.method or ckpt.train_config.get("predict_method") or methods[0]
    result["predict_method"] = primary if primary in methods else methods[0]
    result["test_accuracy"] = result[f"test_accuracy_{result['predict_method']}"]
    result["test_error"] = 1.0 - result["test_accuracy"]
    text = "\n".join(f"{k:<24}{v}" for k, v in result.items())
    _emit(args, result, text)
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    from ff_mcp.engine import variant_catalog

    catalog = variant_catalog()
    lines = []
    for v in catalog:
        lines.append(f"{v['name']}: {v['description']} (data: {', '.join(v['data_kinds'])})")
        for o in v["options"]:
            lines.append(f"  --opt {o['name']}=...  {o['type']}, default {o['default']!r}. {o['help']}")
    _emit(args, {"variants": catalog}, "\n".join(lines))
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
    train.add_argument("--json", action="store_true",
                       help="one JSON line per epoch on stdout, then the result with its history as the last line")
    train.add_argument("--quiet", action="store_true", help="no progress on stderr (bar or per-epoch lines)")
    train.add_argument("--plot", metavar="FILE.png", help="draw loss, accuracy and goodness per layer into a PNG")
    train.add_argument("--resume", metavar="FILE", help="go on with the run saved in FILE (by --out) until --epochs "
                                                         "epochs in all; saves back to FILE unless --out is given")
    train.add_argument("--stop-after", type=int, default=None, metavar="K",
                       help="stop after K of the planned epochs (the schedule stays planned for --epochs); "
                            "--resume goes on from there")
    train.set_defaults(func=cmd_train)

    pl = sub.add_parser("plot", help="draw a saved model's training history (and its goodness on test data)")
    pl.add_argument("model", help="a .safetensors checkpoint written by ff-mcp")
    pl.add_argument("--out", required=True, metavar="FILE.png")
    pl.add_argument("--dataset", default=None, help="test data for the goodness panel (default: the model's own)")
    pl.add_argument("--data-dir")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_plot)

    ev = sub.add_parser("eval", help="evaluate a saved model on a data set's test split")
    ev.add_argument("--model", required=True, help="a .safetensors checkpoint written by ff-mcp")
    ev.add_argument("--dataset", required=True)
    ev.add_argument("--data-dir")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--limit-test", type=int, default=None)
    ev.add_argument("--method", default=None, help="one prediction method (default: every method the model has)")
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_eval)

    va = sub.add_parser("variants", help="list the FF variants (model kinds) with their options")
    va.add_argument("--json", action="store_true")
    va.set_defaults(func=cmd_variants)

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
_OPTIONAL_COMMANDS = {"ff_mcp.demo": ("demo",), "ff_mcp.server.cli": ("serve",), "ff_mcp.clojure.cli": ("repl",),
                      "ff_mcp.nca.cli": ("nca",)}


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
