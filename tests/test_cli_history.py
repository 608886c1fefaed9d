"""`ff-mcp train`: per-epoch history as JSON lines, progress as one line per epoch off a terminal,
nothing with --quiet; `ff-mcp bench` writes a result file only when asked."""

from __future__ import annotations

import io
import json

import pytest

from ff_mcp.cli import main as cli_main
from ff_mcp.train_args import ProgressBar

ARGS = ["train", "--dataset", "digits", "--hidden", "32", "--epochs", "3", "--batch-size", "100", "--device", "cpu"]


def test_json_prints_one_record_per_epoch_then_the_result_with_its_history(capsys):
    assert cli_main([*ARGS, "--json", "--quiet"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.strip().splitlines()]
    epochs, final = lines[:-1], lines[-1]
    assert [e["event"] for e in epochs] == ["epoch"] * 3 and [e["epoch"] for e in epochs] == [1, 2, 3]
    for record in epochs:
        assert set(record) >= {"epoch", "epochs", "loss", "layer_loss", "goodness_pos", "goodness_neg",
                               "train_accuracy", "test_accuracy", "seconds", "samples_per_second"}
        assert len(record["layer_loss"]) == 1 and record["seconds"] > 0 and record["samples_per_second"] > 0
    assert [h["epoch"] for h in final["history"]] == [1, 2, 3]
    assert final["history"][-1]["test_accuracy"] == pytest.approx(final["test_accuracy"], abs=1e-6)
    assert captured.err == ""  # --quiet


def test_off_a_terminal_progress_is_one_line_per_epoch(capsys):
    assert cli_main(ARGS) == 0
    err = capsys.readouterr().err.strip().splitlines()
    epoch_lines = [line for line in err if line.startswith("epoch ")]
    assert len(epoch_lines) == 3 and "\r" not in "".join(err)
    assert epoch_lines[0].startswith("epoch 1/3  loss ") and " rows/s" in epoch_lines[0]


def test_on_a_terminal_progress_is_a_bar():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    bar = ProgressBar(stream=stream)
    for step in (1, 2):
        bar.on_batch_end(1, step, 2)
    bar.on_epoch_end({"epoch": 1, "epochs": 1, "loss": 0.5, "layers": [], "test_accuracy": 0.9})
    bar.close()
    assert "epoch 1" in stream.getvalue() and "2/2" in stream.getvalue()


def test_bench_accuracy_names_its_per_epoch_evaluation_validation(capsys):
    """bench accuracy evaluates each epoch on the validation split, never the test set: its lines say val."""
    assert cli_main(["bench", "accuracy", "--dataset", "digits", "--hidden", "16", "--epochs", "2",
                     "--no-baseline", "--device", "cpu"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2 and all(" val " in line and " test " not in line for line in lines)


def test_bench_writes_a_result_file_only_when_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["bench", "accuracy", "--dataset", "digits", "--hidden", "16", "--epochs", "1", "--no-baseline",
            "--quiet", "--device", "cpu"]
    assert cli_main(args) == 0
    assert "not written" in capsys.readouterr().out and not any(tmp_path.rglob("*.json"))
    assert cli_main([*args, "--results-dir", str(tmp_path / "results")]) == 0
    assert len(list((tmp_path / "results").glob("accuracy-*.json"))) == 1
