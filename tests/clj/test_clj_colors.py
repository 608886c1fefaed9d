"""The Clojure port (clj/src/ff_mcp/colors.clj) passes its tests in a real JVM, golden file included."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_JSON_JAR = Path("/usr/share/java/data.json.jar")  # Debian package libdata-json-clojure
COMMAND = [
    "clojure",
    "-cp",
    f"clj/src:clj/test:{DATA_JSON_JAR}",
    "clj/test/run_tests.clj",
    "ff-mcp.colors-test",
]


@pytest.mark.skipif(shutil.which("clojure") is None, reason="the `clojure` command is not installed (Debian package clojure)")
def test_clojure_colors_tests_pass_against_the_shared_golden_file():
    assert DATA_JSON_JAR.exists(), f"{DATA_JSON_JAR} is missing; install the Debian package libdata-json-clojure"
    env = {**os.environ, "FF_MCP_GOLDEN": str(REPO_ROOT / "tests" / "fixtures" / "gay_colors_golden.json")}
    result = subprocess.run(COMMAND, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert re.search(r"Ran [1-9][0-9]* tests", report) and "0 failures, 0 errors." in report, report
