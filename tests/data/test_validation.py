"""Validation splits: MNIST-style data holds out its last 10,000 training rows, the rest a fixed
stratified 15 %; the test split is never touched; `ff-mcp bench accuracy` chooses on validation."""

from __future__ import annotations

import json

import torch

from ff_mcp.cli import main as cli_main
from ff_mcp.data import Dataset, load_dataset
from ff_mcp.data.validation import validation_split


def synthetic(name: str, rows: int) -> Dataset:
    return Dataset(name=name, x_train=torch.arange(rows, dtype=torch.float32)[:, None],
                   y_train=torch.arange(rows) % 10, x_test=torch.zeros(5, 1), y_test=torch.zeros(5, dtype=torch.long),
                   num_classes=10, image_shape=None, source="synthetic")


def test_mnist_holds_out_its_last_10000_training_rows():
    train, x_val, y_val, how = validation_split(synthetic("mnist", 60_000))
    assert how == "the last 10000 training rows" and train.train_size == 50_000
    assert x_val[:, 0].tolist() == list(range(50_000, 60_000)) and train.x_train[-1, 0] == 49_999
    assert train.test_size == 5


def test_other_data_hold_out_the_same_stratified_15_percent_every_time():
    digits = load_dataset("digits")
    first, x_val, y_val, how = validation_split(digits)
    second, x_again, _, _ = validation_split(digits)
    assert torch.equal(x_val, x_again) and "stratified 15 %" in how
    assert first.train_size + y_val.shape[0] == digits.train_size
    for label in range(10):  # every class in proportion
        share = (y_val == label).sum() / (digits.y_train == label).sum()
        assert abs(float(share) - 0.15) < 0.02
    held = {tuple(row) for row in x_val.tolist()}
    assert not any(tuple(row) in held for row in first.x_train.tolist())  # no row on both sides
    assert torch.equal(first.x_test, digits.x_test)


def test_bench_accuracy_chooses_the_method_on_validation_and_reports_test_beside_it(tmp_path, capsys):
    assert cli_main(["bench", "accuracy", "--dataset", "digits", "--hidden", "32", "--epochs", "3", "--quiet",
                     "--device", "cpu", "--results-dir", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    ff = out["ff"]
    assert out["rows"] == {"train": 1146, "validation": 201, "test": 450}
    assert ff["chosen_on"] == "validation"
    assert ff["chosen_method"] == max(ff["validation_accuracy_by_method"], key=ff["validation_accuracy_by_method"].get)
    assert ff["test_accuracy"] == ff["test_accuracy_by_method"][ff["chosen_method"]]
    assert out["bp"]["validation_accuracy"] is not None and out["bp"]["test_accuracy"] > 0.5
    assert "| FF validation error |" in (tmp_path / "RESULTS.md").read_text()


def test_a_final_run_retrains_on_every_row_with_the_validation_runs_settings(tmp_path, capsys):
    common = ["bench", "accuracy", "--dataset", "digits", "--hidden", "32", "--epochs", "3", "--quiet",
              "--device", "cpu", "--no-baseline", "--results-dir", str(tmp_path)]
    assert cli_main([*common, "--tag", "chosen"]) == 0
    chosen = json.loads(capsys.readouterr().out)
    source = tmp_path / "accuracy-chosen.json"
    model = tmp_path / "final.pt"
    assert cli_main([*common, "--final-from", str(source), "--out", str(model)]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["protocol"] == "final" and final["rows"] == {"train": 1347, "validation": 0, "test": 450}
    assert final["settings_from"]["file"] == "accuracy-chosen.json"
    assert final["ff"]["chosen_method"] == chosen["ff"]["chosen_method"]
    # the recipe sized the batch from 1,146 rows; the final run keeps it although it has 1,347
    assert final["ff"]["batch_size"] == chosen["ff"]["batch_size"]
    history = json.loads((tmp_path / "accuracy-digits-32-e3-final.json").read_text())["ff"]["history"]
    assert len(history) == 3 and not any("test_accuracy" in h for h in history)  # nothing evaluated while training
    from ff_mcp.engine import accuracy, load_checkpoint

    digits = load_dataset("digits")
    network = load_checkpoint(model).model
    assert final["ff"]["test_accuracy"] == accuracy(network, digits.x_test, digits.y_test, final["ff"]["chosen_method"])
    table = (tmp_path / "RESULTS.md").read_text()
    assert "final run, settings of accuracy-chosen.json" in table
    # a setting the validation run did not have is refused, naming it
    assert cli_main([*common[:-2], "--results-dir", str(tmp_path), "--final-from", str(source), "--lr", "0.5"]) == 2
    assert "lr is 0.5" in capsys.readouterr().err
    assert len(list(tmp_path.glob("accuracy-*.json"))) == 2  # the refused run wrote nothing
