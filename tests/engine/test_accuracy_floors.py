"""Real data, small budgets: FF must learn, not just run."""

import json
import subprocess
import sys

from ff_mcp.data import load_dataset
from ff_mcp.engine import load_checkpoint
from ff_mcp.training import TrainOptions, train_model

DIGITS_OPTIONS = TrainOptions(hidden=(500, 500), epochs=60, batch_size=50, lr=1e-3, device="cpu", seed=0, eval_every=60)


def test_ff_reaches_95_percent_on_sklearn_digits(tmp_path):
    trained = train_model(load_dataset("digits"), DIGITS_OPTIONS, out=tmp_path / "digits.safetensors")
    assert trained.summary()["test_accuracy"] >= 0.95
    # the saved model predicts the same as the trained one
    ckpt = load_checkpoint(tmp_path / "digits.safetensors")
    assert ckpt.metrics["final"]["test_accuracy"] == trained.summary()["test_accuracy"]


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


def test_cli_eval_scores_a_saved_model(tmp_path):
    out = tmp_path / "m.safetensors"
    train_model(load_dataset("digits"), TrainOptions(hidden=(64,), epochs=2, device="cpu"), out=out)
    proc = subprocess.run([sys.executable, "-m", "ff_mcp", "eval", "--model", str(out), "--dataset", "digits",
                           "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["test_rows"] == 450 and 0.0 <= result["test_accuracy"] <= 1.0
