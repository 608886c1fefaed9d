"""The Clojure bridge through real JVMs: clojure.test under JPype and under the standalone `clojure` command, and the REPLs.

Every JVM runs in its own subprocess (JPype can start one JVM per process, and none stays in pytest's
process). They start together in one fixture, since each spends most of its time starting up.
Both transports, and Python calling the engine directly, must give bit-identical goodness.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_JSON_JAR = Path("/usr/share/java/data.json.jar")  # Debian package libdata-json-clojure
STANDALONE_NAMESPACES = ["music-topos.parallel-color-fork-test", "ff-mcp.bridge-test", "ff-mcp.bridge-stdio-test"]
TIMEOUT = 400  # seconds per subprocess; generous for a loaded 2-core machine (a normal run takes well under 60 s)
REPL_FORMS = '(+ 1 2)\n(:goodness-pos (pcf/ff-color-learning ["#FF0000"] ["#0000FF"] :epochs 2))\n(bridge/in-process?)\n'

try:
    import jpype  # noqa: F401

    HAVE_JPYPE = True
except ImportError:
    HAVE_JPYPE = False

pytestmark = [
    pytest.mark.skipif(shutil.which("java") is None or not DATA_JSON_JAR.exists(),
                       reason="needs: apt-get install default-jre-headless clojure libdata-json-clojure"),
    pytest.mark.skipif(not HAVE_JPYPE, reason="needs jpype1"),
]


def _env(tmp: Path) -> dict[str, str]:
    server = [sys.executable, "-m", "ff_mcp", "serve", "--data-dir", str(tmp / "models")]
    return {
        **os.environ,
        "FF_MCP_COMMAND": json.dumps(server),  # the stdio transport's server: this venv's ff-mcp serve
        "FF_MCP_PYTHON": sys.executable,  # runs the fake servers of ff-mcp.bridge-stdio-test
        "FF_MCP_GOLDEN": str(REPO_ROOT / "tests" / "fixtures" / "gay_colors_golden.json"),
        "PYTHONUNBUFFERED": "1",
    }


def _popen(args, env, **kw) -> subprocess.Popen:
    # SIGINT as a terminal user has it: a test run started as a background job (`make test &` in a
    # script) ignores SIGINT, and its children would inherit that, so Ctrl-C could never stop the REPL
    return subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint, **kw)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _read_port(proc: subprocess.Popen, deadline: float) -> tuple[int, list[str]]:
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"socket REPL listening on 127\.0\.0\.1:(\d+)", line)
        if m:
            return int(m.group(1)), lines
    raise AssertionError("ff-mcp repl --port 0 announced no port:\n" + "".join(lines))


def _socket_session(port: int, forms: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall((forms + ":repl/quit\n").encode())
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Start every JVM at once; return {name: (returncode, stdout, stderr)} plus the recorded goodness."""
    tmp = tmp_path_factory.mktemp("clojure_bridge")
    jpype_env = {**_env(tmp / "a"), "FF_MCP_CLJ_RESULTS": str(tmp / "jpype.jsonl")}
    standalone_env = {**_env(tmp / "b"), "FF_MCP_CLJ_RESULTS": str(tmp / "standalone.jsonl")}
    classpath = f"clj/src:clj/test:{DATA_JSON_JAR}"
    forms = tmp / "forms.clj"
    forms.write_text(REPL_FORMS)
    with forms.open() as stdin:  # end of this file ends the terminal REPL
        procs = {
            "jpype": _popen([sys.executable, str(Path(__file__).with_name("jpype_host_check.py"))], jpype_env),
            "terminal_repl": _popen([sys.executable, "-m", "ff_mcp", "repl"], _env(tmp / "d"), stdin=stdin),
            "socket_repl": _popen([sys.executable, "-m", "ff_mcp", "repl", "--port", "0"], _env(tmp / "e")),
        }
    if shutil.which("clojure"):
        procs["standalone_tests"] = _popen(["clojure", "-cp", classpath, "clj/test/run_tests.clj",
                                            *STANDALONE_NAMESPACES], standalone_env)
    deadline = time.monotonic() + TIMEOUT
    out = {}
    try:
        port, announced = _read_port(procs["socket_repl"], deadline)
        out["socket_session"] = _socket_session(port, REPL_FORMS + "(ff-mcp.bridge.repl/socket-address)\n")
        procs["socket_repl"].send_signal(signal.SIGINT)  # Ctrl-C stops the socket REPL cleanly
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if name == "socket_repl":
                stderr = "".join(announced) + stderr
            out[name] = (proc.returncode, stdout, stderr)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    out["port"] = port
    for name in ("jpype", "standalone"):
        path = tmp / f"{name}.jsonl"
        out[f"{name}_results"] = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return out


def _summary(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def test_clojure_test_suites_pass_inside_the_jpype_hosted_jvm(runs):
    rc, stdout, stderr = runs["jpype"]
    assert rc == 0, stdout + stderr
    summary = _summary(stdout)["clojure_tests"]
    assert summary["fail"] == 0 and summary["error"] == 0 and summary["test"] >= 30, summary
    assert {"music-topos.parallel-color-fork-test", "ff-mcp.bridge-test", "ff-mcp.bridge-stdio-test",
            "ff-mcp.colors-test"} <= set(summary["namespaces"])


@pytest.mark.skipif(shutil.which("clojure") is None, reason="the `clojure` command is not installed")
def test_clojure_test_suites_pass_in_a_standalone_clojure_against_a_live_ff_mcp_serve(runs):
    rc, stdout, stderr = runs["standalone_tests"]
    report = stdout + stderr
    assert rc == 0, report
    assert re.search(r"Ran [1-9][0-9]+ tests", report) and "0 failures, 0 errors." in report, report


def test_both_transports_and_python_give_bit_identical_goodness(runs):
    from ff_mcp import colorlearn

    recorded = runs["jpype_results"] + runs["standalone_results"]
    kinds = {(r["suite"], r["transport"]) for r in recorded}
    assert {("bridge-test", "in-process"), ("bridge-test", "stdio"),
            ("parallel-color-fork-test", "in-process")} <= kinds, kinds
    if shutil.which("clojure"):
        assert ("parallel-color-fork-test", "stdio") in kinds, kinds
    # The Clojure tests' fixed case: warm vs cool colors, seed 1069, 16 units, 30 epochs.
    direct = colorlearn.ff_color_learning(["#FF0000", "#E67F86", [250, 30, 20], "D82626"],
                                          ["#0000FF", "#1316BB", [0.1, 0.2, 0.9], "#2626D8"], epochs=30)
    for r in recorded:
        assert r["goodness_pos"] == direct.goodness_pos, r
        assert r["goodness_neg"] == direct.goodness_neg, r
        assert r["margin"] == direct.margin and r["accuracy"] == direct.accuracy, r


def test_python_and_clojure_data_convert_both_ways_in_the_jpype_jvm(runs):
    rc, stdout, stderr = runs["jpype"]
    assert rc == 0, stdout + stderr
    checks = _summary(stdout)["checks"]
    failed = {name: detail for name, (ok, detail) in checks.items() if not ok}
    assert not failed, failed
    assert len(checks) == 7


def test_ff_mcp_repl_evaluates_forms_from_the_terminal_on_the_in_process_engine(runs):
    rc, stdout, stderr = runs["terminal_repl"]
    assert rc == 0, stdout + stderr
    assert "Clojure 1.11" in stdout and "transport :in-process" in stdout, stdout
    assert "user=> 3" in stdout and re.search(r"user=> \[\d+\.\d+\]", stdout) and "user=> true" in stdout, stdout


def test_ff_mcp_repl_port_serves_a_socket_repl_on_loopback_until_ctrl_c(runs):
    session = runs["socket_session"]
    assert "user=> 3" in session and re.search(r"user=> \[\d+\.\d+\]", session), session
    assert "user=> true" in session, session
    assert f'user=> "127.0.0.1:{runs["port"]}"' in session, session
    rc, stdout, stderr = runs["socket_repl"]
    assert rc in (0, 130), stderr  # the hosted JVM handles SIGINT itself: it runs its shutdown hooks, exits 130
    assert stdout == "", "nothing but the REPL's own session text may go to stdout"
