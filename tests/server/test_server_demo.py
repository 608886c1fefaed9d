"""`ff-mcp demo`: the README's main command runs a real stdio MCP session and prints a transcript."""

from __future__ import annotations

import subprocess
import sys


def test_demo_trains_predicts_and_prints_a_readable_transcript(tmp_path):
    run = subprocess.run([sys.executable, "-m", "ff_mcp", "demo", "--home", str(tmp_path), "--epochs", "1",
                          "--hidden", "16", "--batch-size", "300"], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    for expected in (">>> ff_train(", "... progress", ">>> ff_predict(", "accuracy on the 450 held-out digits",
                     ">>> ff_goodness(", ">>> ff_models()", "<<< digits-demo: hidden [16]",
                     "FF predicts by trying every label", "goodness: a layer's sum of squared activities",
                     ">>> ff_plot(", f"plot: {tmp_path / 'digits-demo.png'}", "The model stays in"):
        assert expected in out, out
    assert (tmp_path / "models" / "digits-demo.safetensors").is_file()
    assert (tmp_path / "digits-demo.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
