"""The engine's commands work where the MCP SDK is absent (e.g. a GPU image with only torch);
the server's commands then say what is missing instead of breaking the whole CLI."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK_MCP = "import sys; sys.modules['mcp'] = None; from ff_mcp.cli import main; raise SystemExit(main(sys.argv[1:]))"


def cli_without_mcp(*argv):
    return subprocess.run([sys.executable, "-c", BLOCK_MCP, *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_bench_help_works_without_the_mcp_package():
    done = cli_without_mcp("bench", "accuracy", "--help")
    assert done.returncode == 0, done.stderr
    assert "--dataset" in done.stdout and "--record" in done.stdout
    blocked = subprocess.run([sys.executable, "-c", BLOCK_MCP.split("; from")[0] + "; import mcp"],
                             capture_output=True, text=True, timeout=60)
    assert blocked.returncode != 0 and "ModuleNotFoundError" in blocked.stderr  # the harness really hides mcp


def test_serve_without_the_mcp_package_names_the_missing_module():
    done = cli_without_mcp("serve")
    assert done.returncode == 2
    assert "ff-mcp serve needs the Python module 'mcp'" in done.stderr
    assert "Traceback" not in done.stderr


def test_train_runs_without_the_mcp_package(tmp_path):
    done = cli_without_mcp("train", "--dataset", "digits", "--hidden", "16", "--epochs", "1", "--quiet", "--json",
                           "--device", "cpu", "--out", str(tmp_path / "m.safetensors"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    from ff_mcp.engine import load_checkpoint

    saved = load_checkpoint(tmp_path / "m.safetensors")
    assert result["test_accuracy"] == saved.metrics["final"]["test_accuracy"] and result["epochs"] == 1
