"""Forward-learned GNNs on Cora and CiteSeer (Planetoid split) beside backprop GNNs of the same depth,
with each run's peak memory.

Each (data set, method, layer, depth) point trains in a fresh subprocess: ``ff-mcp``'s "gnn" kind,
full batch, Adam (lr 1e-2; weight decay 5e-4, the recipe's, unless ``--weight-decays`` lists others), up to ``--epochs`` epochs per layer ended by
early stopping on the validation nodes (patience 100 checks, one check every 2 epochs), best-validation
weights kept. Depth counts convolutions: sf / ff with L layers of 128 units; bp with L - 1 hidden layers
of 128 and an output convolution (bp depth 2 is Kipf & Welling's GCN shape). Validation accuracy
chooses the depth, dropout (``--dropouts``) and weight decay of each method, averaged over ``--seeds``
when several are given; every run's test accuracy is computed once, after training, and the chosen
setting's (mean) test accuracy is reported beside it. Memory: the subprocess's peak RSS during training minus its RSS
after loading the graph (the kernel's VmHWM, reset before training), i.e. model, optimizer and working
memory.

    python bench/gnn_accuracy.py --datasets cora,citeseer --methods sf,bp --depths 1,2,3,4 --dropouts 0,0.5 --record
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(dataset: str, method: str, layer: str, depth: int, epochs: int, seed: int, width: int,
          dropout: float, hide_labels: float = 0.0, weight_decay: float = 5e-4, temperature: float = 1.0) -> dict:
    import torch

    from ff_mcp.data.graphs import load_planetoid
    from ff_mcp.engine import DataSpec, OptimizerConfig, Trainer, TrainConfig, build_model
    from ff_mcp.engine.gnn import GnnNet, GnnOptions
    from ff_mcp.engine.trainer import graph_accuracies
    from ff_mcp.recipes import GRAPH_LR

    def rss() -> int:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024

    data = load_planetoid(dataset)
    graph = data.graph
    # choose on validation: the run sees no test nodes until it has finished
    blind = type(graph)(graph.x, graph.edge_index, graph.y, graph.train_mask, graph.val_mask, None)
    hidden = (width,) * (depth - 1 if method == "bp" else depth)
    spec = DataSpec(data.in_features, data.num_classes, None, "graph", graph.num_nodes)
    cfg = GnnNet.build_config(spec, hidden, GnnOptions(method=method, layer=layer, dropout=dropout,
                                                       hide_labels=hide_labels, temperature=temperature))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    before, _ = rss()
    model = build_model(cfg, seed)
    train = TrainConfig(epochs=epochs, optimizer=OptimizerConfig("adam", GRAPH_LR, weight_decay=weight_decay),
                        cooldown=False, seed=seed, eval_every=epochs)
    started = time.perf_counter()
    result = Trainer(model, train).fit(blind, None)
    seconds = time.perf_counter() - started
    _, peak = rss()
    scores = graph_accuracies(model, graph)  # the test nodes, once
    return {"dataset": dataset, "method": method, "layer": layer, "depth": depth, "hidden": list(hidden),
            "dropout": dropout, "hide_labels": hide_labels, "weight_decay": weight_decay, "temperature": temperature,
            "seed": seed,
            "val_accuracy": scores["val_accuracy"], "test_accuracy": scores["test_accuracy"],
            "train_accuracy": scores.get("train_accuracy"), "epochs_run": len(result.history),
            "epochs_per_layer": [sum(1 for h in result.history if h["layers"][0]["layer"] == i)
                                 for i in range(len(model.local_units()))],
            "train_seconds": round(seconds, 2), "peak_memory_mib": round((peak - before) / 2**20, 2),
            "torch_threads": torch.get_num_threads()}


def choose_on_validation(runs: list[dict]) -> dict:
    """The setting (depth, dropout, weight decay, sf's temperature) with the highest validation accuracy
    averaged over its seeds; on a tie the shallower network, then the setting run first. Returns the setting
    with its mean validation and test accuracy and the number of seeds behind them."""
    settings: dict[tuple, list[dict]] = {}
    for run in runs:
        key = (run["depth"], run["dropout"], run["weight_decay"], run.get("temperature", 1.0))
        settings.setdefault(key, []).append(run)
    means = [{"depth": depth, "dropout": dropout, "weight_decay": weight_decay, "temperature": temperature,
              "seeds": len(group),
              "val_accuracy": sum(r["val_accuracy"] for r in group) / len(group),
              "test_accuracy": sum(r["test_accuracy"] for r in group) / len(group)}
             for (depth, dropout, weight_decay, temperature), group in settings.items()]
    # rounded: means of the same accuracies summed in another order must tie, not differ in the last bit
    return max(means, key=lambda m: (round(m["val_accuracy"], 9), -m["depth"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="cora,citeseer")
    parser.add_argument("--methods", default="sf,bp")
    parser.add_argument("--layer", default="gcn", choices=["gcn", "sage"])
    parser.add_argument("--depths", default="1,2,3,4")
    parser.add_argument("--epochs", type=int, default=1000, help="most epochs per layer (early stopping ends sooner)")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--dropouts", default="0,0.5", help="dropout on each layer's input; validation chooses")
    parser.add_argument("--hide-labels", type=float, default=0.0, help="sf's hide_labels option (the label trick)")
    parser.add_argument("--weight-decays", default="5e-4", help="Adam weight decay; validation chooses")
    parser.add_argument("--temperatures", default="1",
                        help="sf's temperature (divides the node x class-node scores); validation chooses")
    parser.add_argument("--seeds", default="0", help="seeds per setting: validation chooses on the mean over them")
    parser.add_argument("--record", action="store_true", help="write bench/results/gnn-accuracy-*.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        dataset, method, depth, dropout, weight_decay, temperature, seed = args.child.split(":")
        print(json.dumps(child(dataset, method, args.layer, int(depth), args.epochs, int(seed), args.width,
                               float(dropout), args.hide_labels if method == "sf" else 0.0, float(weight_decay),
                               float(temperature))))
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    settings = [(int(d), float(p), float(w)) for d in args.depths.split(",") for p in args.dropouts.split(",")
                for w in args.weight_decays.split(",")]
    rows = []
    for dataset in args.datasets.split(","):
        for method in args.methods.split(","):
            # the temperature is sf's only: every other method runs once per setting, at 1
            temperatures = [float(t) for t in args.temperatures.split(",")] if method == "sf" else [1.0]
            for (depth, dropout, weight_decay), temperature in itertools.product(settings, temperatures):
                for seed in seeds:
                    out = subprocess.run([sys.executable, __file__, "--child",
                                          f"{dataset}:{method}:{depth}:{dropout}:{weight_decay}:{temperature}:{seed}",
                                          "--layer", args.layer, "--epochs", str(args.epochs), "--width", str(args.width),
                                          "--hide-labels", str(args.hide_labels)], capture_output=True, text=True, check=True)
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                    rows.append(row)
                    print(f"{dataset:9s} {method:5s} {args.layer} depth {depth} dropout {dropout:g} wd {weight_decay:g} "
                          f"T {temperature:g} seed {seed}: val {100 * row['val_accuracy']:.1f} % test {100 * row['test_accuracy']:.1f} %  "
                          f"epochs {row['epochs_per_layer']}  {row['train_seconds']:.1f} s  "
                          f"peak {row['peak_memory_mib']:.1f} MiB", flush=True)
    chosen = {}
    for dataset in args.datasets.split(","):
        for method in args.methods.split(","):
            best = choose_on_validation([r for r in rows if r["dataset"] == dataset and r["method"] == method])
            chosen[f"{dataset}/{method}"] = best
            print(f"validation chooses {dataset} {method}: depth {best['depth']} dropout {best['dropout']:g} "
                  f"wd {best['weight_decay']:g} T {best['temperature']:g} (mean of {best['seeds']} seeds: val {100 * best['val_accuracy']:.1f} %,"
                  f" test {100 * best['test_accuracy']:.1f} %)")
    if args.record:
        import torch

        from ff_mcp.bench import record

        tag = f"{args.datasets.replace(',', '-')}-{args.methods.replace(',', '-')}-{args.layer}" + (
            f"-hide{args.hide_labels:g}" if args.hide_labels else "")
        path = record("gnn-accuracy", tag, {"runs": rows, "chosen_on_validation": chosen, "settings": {
            "epochs_per_layer_max": args.epochs, "width": args.width, "optimizer": "adam",
            "weight_decays": args.weight_decays, "seeds": args.seeds, "patience_checks": 100, "val_every": 2,
            "dropouts": args.dropouts, "temperatures": args.temperatures,
            "hide_labels": args.hide_labels,
            "memory": "peak RSS during training minus RSS after loading the graph (fresh subprocess per run)"}},
            torch.device("cpu"), command="python bench/gnn_accuracy.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
