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
                     ">>> ff_goodness(", ">>> ff_models()", "<<< digits-demo: hidden [16]"):
        assert expected in out, out
    assert (tmp_path / "models" / "digits-demo.safetensors").is_file()
