"""clj/test/run_tests.clj: a namespace that cannot load is reported with its ex-info message and data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA_JSON_JAR = Path("/usr/share/java/data.json.jar")


@pytest.mark.skipif(shutil.which("clojure") is None or not DATA_JSON_JAR.exists(),
                    reason="needs: apt-get install clojure libdata-json-clojure")
def test_a_namespace_that_throws_ex_info_prints_its_message_and_data(tmp_path):
    (tmp_path / "broken_test.clj").write_text(
        '(ns broken-test)\n(throw (ex-info "the color engine is gone" {:type :ff-mcp/no-engine :transport :stdio}))\n')
    done = subprocess.run(["clojure", "-cp", f"clj/src:clj/test:{tmp_path}:{DATA_JSON_JAR}", "clj/test/run_tests.clj",
                           "broken-test"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "the color engine is gone" in done.stderr
    assert "{:type :ff-mcp/no-engine, :transport :stdio}" in done.stderr
