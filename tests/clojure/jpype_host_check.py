"""Checks that need a JPype-hosted JVM, run as a subprocess by test_clojure_bridge_jvm.py (a JVM starts once per process).

First the Python-side checks (conversions, the engine, the socket REPL), then every clojure.test
namespace under clj/test (as `python -m ff_mcp.clojure.run_tests` does), in the same JVM.
Prints one JSON object on the last stdout line: {"checks": {name: [ok, detail]}, "clojure_tests": counts}.
"""

from __future__ import annotations

import json
import socket
import sys
import traceback

import numpy as np

from ff_mcp import clojure
from ff_mcp.clojure import repl, run_tests

checks: dict[str, list] = {}


def check(name):
    def run(fn):
        try:
            detail = fn()
            checks[name] = [True, detail]
        except Exception as exc:  # report, do not stop the other checks
            checks[name] = [False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"]
        return fn

    return run


clojure.start(extra_classpath=[run_tests.default_test_root()])  # clj/test too, for the suites at the end
clojure.start()  # a second start is a no-op


@check("python_data_round_trips")
def _():
    data = {"a": [1, 2.5, True, None, "s", {"b": [1, 2]}], "big": 2**70, "neg": -3, "set": {1, 2}, "t": (1, 2)}
    back = clojure.from_clj(clojure.to_clj(data))
    expected = {**data, "t": [1, 2]}
    assert back == expected, back
    assert type(back["a"][1]) is float and type(back["a"][0]) is int and type(back["big"]) is int
    return back


@check("clojure_types_of_python_values")
def _():
    got = [str(clojure.var("clojure.core", "class").invoke(clojure.to_clj(v)).getName())
           for v in (1, 2.5, True, "s", [1], {"k": 1}, 2**70, {3})]
    assert got == ["java.lang.Long", "java.lang.Double", "java.lang.Boolean", "java.lang.String",
                   "clojure.lang.PersistentVector", "clojure.lang.PersistentHashMap", "clojure.lang.BigInt",
                   "clojure.lang.PersistentHashSet"], got
    assert clojure.call("clojure.core", "get", {"k": 7}, clojure.keyword("k")) == 7  # str keys become keywords
    return got


@check("clojure_data_converts_to_python")
def _():
    value = clojure.eval_string('{:a [1 2.5 "x" :kw nil true] :b #{1} :c (range 3) :d 1/2 '
                                ':e 100000000000000000000N :f :ns/kw :g (lazy-seq [1 2])}')
    assert value == {"a": [1, 2.5, "x", "kw", None, True], "b": {1}, "c": [0, 1, 2], "d": 0.5,
                     "e": 10**20, "f": "ns/kw", "g": [1, 2]}, value
    return value


@check("numpy_arrays_become_vectors")
def _():
    out = clojure.call("clojure.core", "mapv", clojure.var("clojure.core", "double"), np.array([0.5, 1.5]))
    assert out == [0.5, 1.5], out
    return out


@check("engine_registered_and_reached_from_a_jvm_thread")
def _():
    assert clojure.call("ff-mcp.bridge", "in-process?") is True
    margin = clojure.eval_string('@(future (:margin (music-topos.parallel-color-fork/ff-color-learning '
                                 '["#FF0000"] ["#0000FF"] :epochs 3)))')
    assert isinstance(margin, float) and margin > 0, margin
    return margin


@check("python_errors_become_ex_info")
def _():
    got = clojure.eval_string('(try (ff-mcp.bridge/call "ff_color_score" {:model "nope" :colors ["#FF0000"]}) '
                              '(catch clojure.lang.ExceptionInfo e [(ex-message e) (:python-type (ex-data e))]))')
    assert got[0].startswith("model 'nope' does not exist") and got[1] == "UnknownModelError", got
    got = clojure.eval_string('(try (ff-mcp.bridge/call "ff_train" {}) '
                              '(catch clojure.lang.ExceptionInfo e (ex-message e)))')
    assert "unknown tool 'ff_train'" in got and ":transport :stdio" in got, got
    return got


@check("socket_repl_serves_loopback_and_reaches_the_engine")
def _():
    port = repl.start_socket_repl(0)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            s.sendall(b'(+ 1 2)\n(pcf/ff-color-learning ["#FF0000"] ["#0000FF"] :epochs 2)\n'
                      b'(ff-mcp.bridge.repl/socket-address)\n'
                      b':repl/quit\n')
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        text = b"".join(chunks).decode()
    finally:
        assert repl.stop_socket_repl()
    assert "user=> 3" in text and ":goodness-pos [" in text, text
    assert f'user=> "127.0.0.1:{port}"' in text, text
    return text


counts = run_tests.run(sys.argv[1:])
sys.stdout.flush()
print(json.dumps({"checks": checks, "clojure_tests": counts}, default=str))
sys.stdout.flush()
