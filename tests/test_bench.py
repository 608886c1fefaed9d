"""The benchmark helpers: the roofline reference lists exactly the matmuls the train step runs."""

import torch

from ff_mcp.bench import ff_step_matmuls, flops_of, interleaved_roofline
from ff_mcp.engine import NetworkConfig, OptimizerConfig, Trainer, TrainConfig, build_network


def test_step_matmuls_of_the_shared_first_layer_leave_out_the_gathered_label_columns():
    shared = ff_step_matmuls([784, 1000, 1000, 1000], 100, 10, readout=True, shared_first=True)
    plain = ff_step_matmuls([784, 1000, 1000, 1000], 100, 10, readout=True)
    # first layer: W.x once for the B images, and its weight gradient over B rows
    assert shared[:2] == [(100, 784, 1000, 1), (1000, 100, 784, 1)]
    assert plain[:2] == [(300, 784, 1000, 1), (1000, 200, 784, 1)]
    assert shared[2:] == plain[2:]  # the other layers and the readout are the same
    assert not any(k == 10 and m != 10 for m, k, n, _ in shared)  # no (rows, K, H) label products
    assert flops_of(shared) == flops_of(plain) - 2 * (300 - 100) * 784 * 1000 - 2 * 1000 * (200 - 100) * 784


def test_interleaved_roofline_times_both_sides_on_a_tiny_network():
    net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(16, 16)), seed=0)
    trainer = Trainer(net, TrainConfig(batch_size=8, device="cpu", optimizer=OptimizerConfig("sgd", 0.01)))
    x, y = torch.rand(64, 40), torch.randint(0, 10, (64,))
    mms = ff_step_matmuls([40, 16, 16], 8, 10, readout=True, shared_first=trainer.session.shares_first_layer)
    before = [p.clone() for p in net.parameters()]
    result = interleaved_roofline(trainer, x, y, mms, rounds=3, steps=2, rest=0.0)
    assert len(result["fractions"]) == 3 and result["fraction"] in result["fractions"]
    assert result["step_ms"] > 0 and result["mm_ms"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters()))  # the steps did train


def test_results_table_lists_each_gnn_file_with_its_validation_choice(tmp_path):
    import shutil
    from pathlib import Path

    from ff_mcp.bench import write_table

    source = Path(__file__).resolve().parents[1] / "bench" / "results" / "gnn-accuracy-cora-sf-bp-gcn.json"
    shutil.copy(source, tmp_path / source.name)
    text = write_table(tmp_path).read_text()
    assert "| gnn-accuracy-cora-sf-bp-gcn.json | cora | sf | gcn | 4 | 0.5 | 0.0005 | 1 | 0.0 | 1 | 80.6 % | 80.3 % | 8 |" in text
    assert "| gnn-accuracy-cora-sf-bp-gcn.json | cora | bp | gcn | 2 | 0.5 | 0.0005 | 1 | 0.0 | 1 | 81.4 % | 81.3 % | 8 |" in text


def test_results_table_names_a_rerun_file_and_its_mean_over_seeds(tmp_path):
    """A rerun is recorded as ``...-2.json`` (never overwriting); the table names that file, the chosen
    weight decay and the number of seeds behind the mean."""
    import json

    from ff_mcp.bench import write_table

    runs = [{"dataset": "citeseer", "method": "sf", "layer": "gcn", "depth": 2, "dropout": 0.5, "hide_labels": 0.0,
             "weight_decay": wd, "seed": seed, "val_accuracy": acc, "test_accuracy": acc - 0.01}
            for wd, seed, acc in ((5e-4, 0, 0.70), (5e-4, 1, 0.72), (5e-3, 0, 0.73), (5e-3, 1, 0.73))]
    doc = {"kind": "gnn-accuracy", "tag": "citeseer-sf-gcn", "date": "2026-12-03 16:00 UTC", "commit": "abc",
           "machine": {"device": "cpu"}, "runs": runs,
           "chosen_on_validation": {"citeseer/sf": {"depth": 2, "dropout": 0.5, "weight_decay": 5e-3, "seeds": 2,
                                                    "val_accuracy": 0.73, "test_accuracy": 0.72}}}
    (tmp_path / "gnn-accuracy-citeseer-sf-gcn-2.json").write_text(json.dumps(doc))
    text = write_table(tmp_path).read_text()
    assert "| gnn-accuracy-citeseer-sf-gcn-2.json | citeseer | sf | gcn | 2 | 0.5 | 0.005 | 1 | 0.0 | 2 | 73.0 % | 72.0 % | 4 |" in text


def test_gnn_bench_chooses_the_setting_with_the_best_mean_validation_over_seeds():
    """bench/gnn_accuracy.py averages each setting's seeds before choosing: one lucky seed does not win."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "gnn_accuracy.py"
    spec = importlib.util.spec_from_file_location("gnn_accuracy_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def run(depth, wd, seed, val, test):
        return {"depth": depth, "dropout": 0.5, "weight_decay": wd, "seed": seed, "val_accuracy": val,
                "test_accuracy": test}

    runs = [run(3, 5e-3, 0, 0.72, 0.73), run(3, 5e-3, 1, 0.73, 0.73),   # mean 0.725, deeper, run first: not chosen
            run(2, 5e-4, 0, 0.76, 0.70), run(2, 5e-4, 1, 0.66, 0.64),   # best single seed, mean 0.71
            run(2, 5e-3, 0, 0.73, 0.72), run(2, 5e-3, 1, 0.72, 0.71)]   # mean 0.725, shallower: chosen
    best = module.choose_on_validation(runs)
    assert (best["depth"], best["weight_decay"], best["seeds"]) == (2, 5e-3, 2)
    assert abs(best["val_accuracy"] - 0.725) < 1e-12 and abs(best["test_accuracy"] - 0.715) < 1e-12
    # sf's temperature is part of the setting: its seeds average apart from the other temperature's
    warm = [{**r, "temperature": 2.0, "val_accuracy": r["val_accuracy"] + 0.01} for r in runs[4:]]
    best = module.choose_on_validation(runs + warm)
    assert (best["depth"], best["weight_decay"], best["temperature"], best["seeds"]) == (2, 5e-3, 2.0, 2)
    assert abs(best["val_accuracy"] - 0.735) < 1e-12
