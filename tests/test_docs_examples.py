"""Every code block the docs mark runnable (``<!-- runnable: python -->`` on the line before its
fence) runs as a user would run it, so an example cannot rot: a fresh model home, the package's
console scripts on PATH, and exit status 0."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/MCP.md", "docs/CLOJURE.md")
MARK = re.compile(r"^<!-- runnable: (\w+) -->\n```\w*\n(.*?)^```", re.M | re.S)
DATA_JSON_JAR = "/usr/share/java/data.json.jar"
RUNNERS = {"python": [sys.executable, "-"], "bash": ["bash", "-e", "-"],
           # a standalone Clojure program, as docs/CLOJURE.md runs it: Debian's clojure, the repository's
           # clj/src and data.json; it starts `ff-mcp serve` itself (FF_MCP_COMMAND)
           "clojure": ["clojure", "-cp", f"{ROOT / 'clj' / 'src'}:{DATA_JSON_JAR}", "program.clj"]}


def runnable_blocks() -> list[tuple[str, int, str, str]]:
    blocks = []
    for doc in DOCS:
        path = ROOT / doc
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for match in MARK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((doc, line, match.group(1), match.group(2)))
    return blocks


BLOCKS = runnable_blocks()


def test_the_docs_mark_their_examples():
    assert any(doc == "docs/MCP.md" for doc, *_ in BLOCKS)
    for doc, line, language, _ in BLOCKS:
        assert language in RUNNERS, f"{doc}:{line}: no runner for {language!r}"


@pytest.mark.parametrize(("doc", "line", "language", "code"), BLOCKS, ids=[f"{d}:{n}" for d, n, *_ in BLOCKS])
def test_runnable_block(doc, line, language, code, tmp_path):
    env = {**os.environ, "FF_MCP_HOME": str(tmp_path / "home"),
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
           "FF_MCP_COMMAND": json.dumps([sys.executable, "-m", "ff_mcp", "serve"])}
    if language == "clojure":
        if shutil.which("clojure") is None or not Path(DATA_JSON_JAR).exists():
            pytest.skip("needs: apt-get install clojure libdata-json-clojure")
        (tmp_path / "program.clj").write_text(code)
    done = subprocess.run(RUNNERS[language], input=code, text=True, capture_output=True, cwd=tmp_path, env=env,
                          timeout=600)
    assert done.returncode == 0, f"{doc}:{line} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.stdout.strip(), f"{doc}:{line} printed nothing"
