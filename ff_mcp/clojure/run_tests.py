"""Run clojure.test namespaces inside this process's JPype-hosted JVM, with the in-process engine registered.

    python -m ff_mcp.clojure.run_tests [NS ...]

With no namespaces, runs every *_test.clj under the repository's clj/test. clojure.test's report goes
to stdout; the last stdout line is one JSON object {"test", "pass", "fail", "error", "namespaces"}.
Exit status 0 when at least one test ran and none failed or erred, else 1 (2 when Clojure is missing).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ff_mcp.clojure import jvm


def default_test_root() -> Path:
    """Return the repository's clj/test (next to clj/src)."""
    return jvm.find_clj_src().parent / "test"


def discover_namespaces(test_root: Path) -> list[str]:
    """Return the namespace of every *_test.clj under `test_root`, sorted."""
    names = []
    for path in sorted(test_root.rglob("*_test.clj")):
        rel = path.relative_to(test_root).with_suffix("")
        names.append(".".join(rel.parts).replace("_", "-"))
    return sorted(names)


def run(namespaces: list[str], test_root: Path | None = None) -> dict:
    """Return clojure.test's counts after running `namespaces` (all under clj/test when empty)."""
    test_root = test_root or default_test_root()
    jvm.start(extra_classpath=[test_root])
    namespaces = namespaces or discover_namespaces(test_root)
    jvm.require("clojure.test", *namespaces)
    symbols = [jvm.var("clojure.core", "symbol").invoke(jvm.to_clj(ns)) for ns in namespaces]
    summary = jvm.from_clj(jvm.var("clojure.test", "run-tests").invoke(*symbols))
    jvm.var("clojure.core", "flush").invoke()
    jvm.var("ff-mcp.bridge", "close-all!").invoke()
    return {key: int(summary.get(key, 0)) for key in ("test", "pass", "fail", "error")} | {"namespaces": namespaces}


def release() -> None:
    """Stop the agent pool (futures, pmap): its idle non-daemon threads would hold the JVM's exit for 60 s."""
    if jvm.is_started():
        jvm.var("clojure.core", "shutdown-agents").invoke()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ff_mcp.clojure.run_tests", description=__doc__.splitlines()[0])
    parser.add_argument("namespaces", nargs="*", help="clojure.test namespaces, e.g. ff-mcp.bridge-test")
    args = parser.parse_args(argv)
    try:
        counts = run(args.namespaces)
    except jvm.ClojureUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        release()
    sys.stdout.flush()
    print(json.dumps(counts), flush=True)
    return 0 if counts["test"] > 0 and counts["fail"] + counts["error"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
