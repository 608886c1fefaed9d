"""One MNIST epoch of loeweX/Forward-Forward beside one epoch of ff-mcp, same machine, same run.

loeweX's code is not part of this repository: point --loewex-dir at a checkout of
https://github.com/loeweX/Forward-Forward (commit da516f0 was used for the recorded result).
Its own training loop (`main.train`), model (`src/ff_model.py`), data pipeline
(`src/ff_mnist.py`: per-sample Dataset + DataLoader with 4 workers) and optimizer set-up
(`utils.get_model_and_optimizer`) run unchanged with its config.yaml values on CPU. Only the
MNIST download is replaced: `utils.get_MNIST_partition` returns the same 50,000 training images
from ../shared/data/mnist as (1x28x28 float tensor in [0,1], int label) pairs, exactly what
torchvision's ToTensor gives. hydra/torchvision/omegaconf are stubbed when not installed, since
the timed path does not use them.

ff-mcp runs the same configuration: 3x1000 ReLU with full gradient, RMS norm, peer
normalisation 0.03, SGD lr 1e-3 momentum 0.9 weight decay 3e-4, batch 100, wrong-label
negatives, the neutral-label linear readout, 50,000 images.

    python bench/loewex_compare.py --loewex-dir /path/to/Forward-Forward [--epochs 1]
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ff_mcp.bench import record, script_command  # noqa: E402
from ff_mcp.data import load_dataset  # noqa: E402
from ff_mcp.training import TrainOptions, train_model  # noqa: E402


class Opt(types.SimpleNamespace):
    """Attribute access like OmegaConf's DictConfig, for loeweX's `opt`."""


def loewex_opt(epochs: int) -> Opt:
    return Opt(
        seed=42,
        device="cpu",
        input=Opt(path="datasets", batch_size=100),
        model=Opt(peer_normalization=0.03, momentum=0.9, hidden_dim=1000, num_layers=3),
        training=Opt(epochs=epochs, learning_rate=1e-3, weight_decay=3e-4, momentum=0.9,
                     downstream_learning_rate=1e-2, downstream_weight_decay=3e-3, val_idx=-1, final_test=False),
    )


def stub_missing_modules() -> None:
    for name in ("hydra", "hydra.utils", "torchvision", "omegaconf"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    hydra = sys.modules["hydra"]
    if not hasattr(hydra, "main"):
        hydra.main = lambda **kw: (lambda fn: fn)
    hydra_utils = sys.modules["hydra.utils"]
    if not hasattr(hydra_utils, "get_original_cwd"):
        hydra_utils.get_original_cwd = lambda: "."
    omegaconf = sys.modules["omegaconf"]
    if not hasattr(omegaconf, "DictConfig"):
        omegaconf.DictConfig = dict
        omegaconf.OmegaConf = types.SimpleNamespace(to_yaml=str)


class MnistPairs(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x.view(-1, 1, 28, 28), y

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i):
        return self.x[i].clone(), int(self.y[i])


def _refuse(partition: str):
    raise RuntimeError(f"loeweX asked for its {partition!r} partition; this harness times training only "
                       "(its validation must stay off, or it would score the training rows)")


def time_loewex(loewex_dir: Path, x: torch.Tensor, y: torch.Tensor, epochs: int) -> float:
    stub_missing_modules()
    sys.path.insert(0, str(loewex_dir))
    utils = importlib.import_module("src.utils")
    main = importlib.import_module("main")
    # every partition loeweX asks for is the timed training rows: its validation is off (val_idx -1) and
    # nothing else reads them; a run that turns validation on must pass the held-out rows instead
    utils.get_MNIST_partition = lambda opt, partition: MnistPairs(x, y) if partition == "train" else _refuse(partition)
    opt = loewex_opt(epochs)
    torch.manual_seed(opt.seed)
    model, optimizer = utils.get_model_and_optimizer(opt)
    started = time.perf_counter()
    main.train(opt, model, optimizer)
    return time.perf_counter() - started


def time_ff_mcp(x: torch.Tensor, y: torch.Tensor, epochs: int, variant: str = "none") -> float:
    """variant: "none" (fp32), "bf16" (bf16 matmuls), "native" (fp32, the compiled step, --native-step)
    or "bf16-native" (both)."""
    amp = "bf16" if variant.startswith("bf16") else "none"
    data = load_dataset("mnist", limit_train=x.shape[0])
    data = type(data)(data.name, x, y, data.x_test[:0], data.y_test[:0], 10, (28, 28), data.source)
    options = TrainOptions(hidden=(1000, 1000, 1000), epochs=epochs, batch_size=100, optimizer="sgd", lr=1e-3,
                           momentum=0.9, weight_decay=3e-4, peer_norm=0.03, activation="relu_full_grad",
                           device="cpu", eval_every=10**6, amp=amp, step="native" if variant.endswith("native") else "auto")
    trained = train_model(data, options)  # the compiled step is built (or loaded) before the timed loop
    return trained.result.train_seconds


def main_cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loewex-dir", required=True, type=Path)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--amp", default="none",
                        help="comma-separated ff-mcp variants to time: none (fp32), bf16 (bf16 matmuls), native (fp32, "
                             "the compiled step), bf16-native; loeweX always runs fp32")
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds; medians are compared")
    parser.add_argument("--rest", type=float, default=20.0,
                        help="idle seconds before every timed run, so each starts in the same CPU power state")
    parser.add_argument("--results-dir", default="bench/results")
    parser.add_argument("--in-process", action="store_true",
                        help="time every run in this process (default: each run in a fresh subprocess)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: time one run ("loewex" or an amp), print seconds
    args = parser.parse_args()
    if args.one:
        data = load_dataset("mnist", limit_train=args.rows)
        if args.one == "loewex":
            seconds = time_loewex(args.loewex_dir, data.x_train, data.y_train, args.epochs)
        else:
            seconds = time_ff_mcp(data.x_train, data.y_train, args.epochs, args.one)
        print(f"SECONDS {seconds!r}")
        return 0
    amps = args.amp.split(",")
    if not set(amps) <= {"none", "bf16", "native", "bf16-native"}:
        parser.error(f"--amp: each entry must be none, bf16, native or bf16-native, got {args.amp!r}")
    data = load_dataset("mnist", limit_train=args.rows)
    x, y = data.x_train, data.y_train

    def timed(which: str) -> float:
        if args.in_process:
            if which == "loewex":
                return time_loewex(args.loewex_dir, x, y, args.epochs)
            return time_ff_mcp(x, y, args.epochs, which)
        # a fresh process per run: neither side inherits the other's heap, threads or loaded modules
        out = subprocess.run([sys.executable, __file__, "--one", which, "--loewex-dir", str(args.loewex_dir),
                              "--rows", str(args.rows), "--epochs", str(args.epochs)],
                             check=True, capture_output=True, text=True).stdout
        return float(next(line for line in out.splitlines() if line.startswith("SECONDS ")).split()[1])

    # A shared cloud CPU slows down under sustained load, so the runs alternate
    # (loeweX, ff-mcp, loeweX, ff-mcp, ...) after the same rest, and medians are compared.
    theirs: list[float] = []
    ours: dict[str, list[float]] = {amp: [] for amp in amps}
    for _ in range(args.repeats):
        time.sleep(args.rest)
        theirs.append(timed("loewex"))
        for amp in amps:
            time.sleep(args.rest)
            ours[amp].append(timed(amp))
    loewex_median = statistics.median(theirs)
    for amp in amps:
        ours_median = statistics.median(ours[amp])
        payload = {
            "rows": args.rows,
            "epochs": args.epochs,
            "config": "3x1000, batch 100, SGD lr 1e-3 m 0.9 wd 3e-4, peer norm 0.03, readout",
            "ff_mcp_amp": "bf16" if amp.startswith("bf16") else "none",
            "ff_mcp_native_step": amp.endswith("native"),
            "ff_mcp_seconds": round(ours_median, 2),
            "loewex_seconds": round(loewex_median, 2),
            "speedup": round(loewex_median / ours_median, 2),
            "ff_mcp_runs": [round(t, 2) for t in ours[amp]],
            "loewex_runs": [round(t, 2) for t in theirs],
            "method": (f"{args.repeats} alternating rounds, {args.rest:g} s rest before each run, medians; "
                       + ("one process" if args.in_process else "each run in a fresh process")),
            "loewex_commit": "da516f0",
        }
        tag = f"mnist-3x1000-e{args.epochs}" + ("" if amp == "none" else f"-{amp}")
        path = record("loewex", tag, payload, torch.device("cpu"), Path(args.results_dir), command=script_command())
        print(json.dumps({"result": str(path), **payload}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main_cli())
