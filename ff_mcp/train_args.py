"""The flags of `ff-mcp train` and `ff-mcp bench accuracy`, and the progress bar both show.

Shared by ff_mcp/cli.py and ff_mcp/bench.py, so neither imports the other's module for them (the
CLI registers the bench command; the bench only needs these).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ff_mcp.engine.layers import OPTIMIZERS


def _int_list(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--hidden must be comma-separated integers like 1000,1000, got {text!r}")
    if not sizes or any(s < 1 or s > 100_000 for s in sizes):
        raise argparse.ArgumentTypeError(f"--hidden sizes must be in [1, 100000], got {text!r}")
    return sizes


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--opt must be key=value, got {text!r}")
    return key.strip(), value.strip()


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from ff_mcp.data import DATASETS, GRAPH_DATASETS
    from ff_mcp.engine import STEPS, goodness_names, loss_names, model_kind_names, negative_names
    from ff_mcp.recipes import recipe_names

    p.add_argument("--dataset", required=True, choices=DATASETS + GRAPH_DATASETS,
                   help="data set to train on (cora, citeseer: graphs, for --variant gnn)")
    p.add_argument("--variant", choices=model_kind_names(), default=None,
                   help="the FF method (a registered model kind; `ff-mcp variants` lists them with their options); "
                        "default: ff, or gnn for a graph")
    p.add_argument("--opt", type=_option, action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the variant, repeatable (e.g. --opt peer_norm=0.03)")
    p.add_argument("--step", choices=STEPS, default=None,
                   help="training step: auto (default), autograd, fused, native (CPU, SGD: compiled C++), "
                        "cuda_graph (CUDA)")
    p.add_argument("--backend", choices=["torch", "jax", "jax-parallel"], default="torch",
                   help="torch (default); jax: the same step in JAX; jax-parallel: every layer's step in one vmapped "
                        "call, layers one batch apart (variant ff, equal widths; needs pip install 'ff-mcp[jax]')")
    p.add_argument("--data-dir", help="directory holding the data set (else FF_MCP_DATA, ../shared/data, ...)")
    p.add_argument("--recipe", choices=recipe_names(), default="auto",
                   help="defaults for every setting not given: auto (from the data set's size), "
                        + ", ".join(f"{r}" for r in recipe_names() if r != "auto") + " (ff_mcp/recipes.py)")
    p.add_argument("--hidden", type=_int_list, default=None, help="hidden sizes, e.g. 1000,1000,1000 (default: recipe)")
    p.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    p.add_argument("--schedule", choices=["simultaneous", "greedy"], default="simultaneous")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), default=None,
                   help="default: the recipe's (adamw: Adam with decoupled weight decay, --weight-decay)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: the recipe's; 1e-3 Adam, 0.05 SGD for another optimizer)")
    p.add_argument("--momentum", type=float, default=None, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, default=None, help="default: the recipe's (0)")
    p.add_argument("--goodness", choices=goodness_names(), default="sum_squares")
    p.add_argument("--threshold", type=float, default=None, help="goodness threshold (default: width for sums, 2 for means)")
    p.add_argument("--loss", choices=loss_names(), default="softplus")
    p.add_argument("--negatives", choices=negative_names(), default="wrong_label")
    p.add_argument("--label-mode", choices=["overlay", "concat", "none"], default=None)
    p.add_argument("--label-strength", type=float, default=1.0, help="value of the label's one-hot slot")
    p.add_argument("--norm", choices=["rms", "l2", "none"], default="rms")
    p.add_argument("--activation", default=None, help="default: the recipe's (relu)")
    p.add_argument("--peer-norm", type=float, default=None, help="peer normalisation weight (Hinton: 0.03; default 0)")
    p.add_argument("--no-readout", action="store_true", help="skip the linear softmax readout")
    p.add_argument("--readout-lr", type=float, default=None,
                   help="readout learning rate (default: 10x --lr with SGD, --lr with Adam)")
    p.add_argument("--no-cooldown", action="store_true",
                   help="keep the learning rate constant (default: the recipe's linear decay over the second half)")
    p.add_argument("--no-readout-cooldown", action="store_true",
                   help="keep the readout's learning rate constant (before this option existed it was)")
    p.add_argument("--readout-weight-decay", type=float, default=None,
                   help="readout weight decay (loeweX: 3e-3; default: the recipe's)")
    p.add_argument("--include-first-layer", action="store_true", help="count the first hidden layer when predicting")
    p.add_argument("--predict-method", default=None,
                   help="prediction method for test accuracy (the 'ff' variant: goodness or readout; "
                        "default: the model's preferred one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    p.add_argument("--cuda-graph", action="store_true", help="the same as --step cuda_graph")
    p.add_argument("--native-step", action="store_true",
                   help="the same as --step native (needs g++ and ninja; built once, ~30 s)")
    p.add_argument("--eval-every", type=int, default=1, help="epochs between test evaluations")
    p.add_argument("--limit-train", "--train-rows", dest="limit_train", type=int, default=None,
                   help="use only the first N training rows (--train-rows 50000: loeweX's MNIST split, the last "
                        "10,000 being its validation rows)")
    p.add_argument("--limit-test", type=int, default=None, help="use only the first N test rows")
    p.add_argument("--pipeline", action="store_true",
                   help="pipelined training: one thread per stage, or one process per stage under torchrun")
    p.add_argument("--stages", type=int, default=None,
                   help="pipeline stages (default: the torchrun world size, else 2)")


def step_from_args(args: argparse.Namespace) -> str:
    """--step, or the step its alias flags (--native-step, --cuda-graph) name; two different ones are refused."""
    from ff_mcp.engine.trainer import legacy_step

    aliased = legacy_step(cuda_graph=getattr(args, "cuda_graph", False), native_step=getattr(args, "native_step", False))
    step = getattr(args, "step", None)
    if step is not None and aliased != "auto" and step != aliased:
        raise ValueError(f"--step {step} disagrees with --native-step/--cuda-graph (step {aliased}); give one of them")
    return step or aliased


def variant_options_from_args(args: argparse.Namespace) -> dict[str, str]:
    options: dict[str, str] = {}
    for key, value in getattr(args, "opt", []):
        if key in options:
            raise ValueError(f"--opt {key} is given twice")
        options[key] = value
    return options


def options_from_args(args: argparse.Namespace):
    from ff_mcp.data import GRAPH_DATASETS
    from ff_mcp.training import TrainOptions

    return TrainOptions(
        hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule, goodness=args.goodness,
        threshold=args.threshold, loss=args.loss, negatives=args.negatives, label_mode=args.label_mode,
        label_strength=args.label_strength,
        norm=args.norm, activation=args.activation, peer_norm=args.peer_norm, readout=not args.no_readout,
        skip_first_layer=not args.include_first_layer, predict_method=args.predict_method, seed=args.seed,
        device=args.device, amp=args.amp, step=step_from_args(args), eval_every=args.eval_every,
        variant=args.variant or ("gnn" if args.dataset in GRAPH_DATASETS else "ff"), options=variant_options_from_args(args), recipe=args.recipe,
        readout_lr=args.readout_lr, readout_weight_decay=args.readout_weight_decay,
        readout_cooldown=False if args.no_readout_cooldown else None,
        cooldown=False if args.no_cooldown else None,
        pipeline=args.pipeline or args.stages is not None, pipeline_stages=args.stages, backend=args.backend,
    )


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """Progress on stderr: a tqdm bar per epoch on a terminal; one line per epoch when stderr is a file
    or a pipe (CI, an MCP client's log), where a bar's every refresh would be a new line; nothing when
    disabled. ``json_lines``: also print each epoch's history record as one JSON line on stdout.
    ``held_out``: what the trainer's evaluation rows are called ("test", or "val" for a validation split)."""

    def __init__(self, enabled: bool = True, json_lines: bool = False, stream=None, held_out: str = "test") -> None:
        self.enabled = enabled
        self.held_out = held_out
        self.json_lines = json_lines
        self.stream = stream or sys.stderr
        self.terminal = enabled and _is_terminal(self.stream)
        self.bar = None
        self.epoch = 0
        self.history: list[dict[str, Any]] = []

    def on_batch_end(self, epoch: int, step: int, steps: int) -> None:
        if not self.terminal:
            return
        if self.bar is None or epoch != self.epoch:
            from tqdm import tqdm

            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=steps, desc=f"epoch {epoch}", file=self.stream, leave=True, dynamic_ncols=True)
            self.epoch = epoch
        self.bar.update(1)

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        from ff_mcp.history import epoch_line, epoch_record

        record = epoch_record(metrics)
        self.history.append(record)
        if self.json_lines:
            print(json.dumps({"event": "epoch", **record}), flush=True)
        if not self.enabled:
            return
        if self.bar is None:  # not a terminal: one line an epoch
            print(epoch_line(record, self.held_out), file=self.stream, flush=True)
            return
        post = {"loss": f"{metrics['loss']:.4f}"}
        for key in ("train_accuracy", "test_accuracy"):
            if metrics.get(key) is not None:
                post[key.replace("test", self.held_out).replace("_accuracy", "_acc")] = f"{metrics[key]:.4f}"
        self.bar.set_postfix(post)
        self.bar.close()
        self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
