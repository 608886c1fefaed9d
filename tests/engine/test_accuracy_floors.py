"""Real data, small budgets: FF must learn, not just run."""

import json
import subprocess
import sys

from ff_mcp.data import load_dataset
from ff_mcp.engine import load_checkpoint
from ff_mcp.training import TrainOptions, train_model

def test_train_with_no_settings_reaches_96_percent_on_sklearn_digits_and_the_saved_model_agrees(tmp_path):
    # the auto recipe: 2x500, batch 26, 193 epochs (~50 steps an epoch, ~10,000 in all)
    out = tmp_path / "digits.safetensors"
    trained = train_model(load_dataset("digits"), TrainOptions(device="cpu", eval_every=10**6), out=out)
    summary = trained.summary()
    assert (summary["hidden"], summary["batch_size"], summary["epochs"]) == ([500, 500], 26, 193)
    assert summary["test_accuracy"] >= 0.96, summary
    # the saved model, loaded and scored afresh by `ff-mcp eval`, gives the same accuracy
    proc = subprocess.run([sys.executable, "-m", "ff_mcp", "eval", "--model", str(out), "--dataset", "digits",
                           "--json", "--device", "cpu"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads(proc.stdout.strip().splitlines()[-1])
    assert evaluated["predict_method"] == summary["predict_method"] == "goodness"
    assert abs(evaluated["test_accuracy"] - summary["test_accuracy"]) < 1e-6


def test_a_2000_image_mnist_slice_trains_above_a_floor():
    data = load_dataset("mnist", limit_train=2000, limit_test=1000)
    options = TrainOptions(hidden=(500, 500), epochs=15, batch_size=50, lr=1e-3, device="cpu", seed=0, eval_every=15)
    summary = train_model(data, options).summary()
    assert summary["test_accuracy"] >= 0.85, summary


def test_cli_train_json_prints_one_json_object_last(tmp_path):
    out = tmp_path / "m.safetensors"
    proc = subprocess.run(
        [sys.executable, "-m", "ff_mcp", "train", "--dataset", "digits", "--hidden", "64", "--epochs", "2",
         "--batch-size", "100", "--device", "cpu", "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("test_accuracy", "test_error", "train_seconds", "epochs", "samples_per_second", "device", "model_path"):
        assert key in result
    assert result["epochs"] == 2 and result["device"] == "cpu" and out.exists()
    assert abs(result["test_error"] - (1 - result["test_accuracy"])) < 1e-9
    assert "epoch 2" in proc.stderr  # the progress bar went to stderr


def test_cli_reports_a_damaged_data_file_without_a_traceback(tmp_path):
    import shutil

    from ff_mcp.data.mnist import locate

    files = locate("mnist", None).files  # the real MNIST files, wherever they were found
    target = tmp_path / "mnist"
    target.mkdir()
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(files[name], target / name)
    raw = files["train-images-idx3-ubyte.gz"].read_bytes()
    (target / "train-images-idx3-ubyte.gz").write_bytes(raw[: len(raw) // 3])  # cut short
    proc = subprocess.run(
        [sys.executable, "-m", "ff_mcp", "train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "train-images-idx3-ubyte.gz" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_eval_scores_every_method_of_a_saved_model_as_the_model_does(tmp_path):
    import torch

    out = tmp_path / "m.safetensors"
    data = load_dataset("digits")
    train_model(data, TrainOptions(hidden=(64,), epochs=2, device="cpu"), out=out)
    proc = subprocess.run([sys.executable, "-m", "ff_mcp", "eval", "--model", str(out), "--dataset", "digits",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    model = load_checkpoint(out).model
    with torch.no_grad():
        for method in ("goodness", "readout"):
            expected = (model.predict(data.x_test, method) == data.y_test).float().mean().item()
            assert abs(result[f"test_accuracy_{method}"] - expected) < 1e-6
    assert result["test_rows"] == 450
