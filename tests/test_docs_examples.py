"""Every code block the docs mark runnable (``<!-- runnable: python -->`` on the line before its
fence) runs as a user would run it, so an example cannot rot: a fresh model home, the package's
console scripts on PATH, and exit status 0."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/MCP.md", "docs/CLOJURE.md")
MARK = re.compile(r"^<!-- runnable: (\w+) -->\n```\w*\n(.*?)^```", re.M | re.S)
RUNNERS = {"python": [sys.executable, "-"], "bash": ["bash", "-e", "-"]}


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
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(RUNNERS[language], input=code, text=True, capture_output=True, cwd=tmp_path, env=env,
                          timeout=600)
    assert done.returncode == 0, f"{doc}:{line} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.stdout.strip(), f"{doc}:{line} printed nothing"
