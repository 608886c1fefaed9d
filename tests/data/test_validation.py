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
