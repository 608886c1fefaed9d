"""The JPype bridge: Clojure inside this Python process, calling the engine directly, and its REPLs.

    from ff_mcp import clojure
    clojure.start()                                   # once per process; loads clj/src, registers the engine
    clojure.call("music-topos.parallel-color-fork", "ff-color-learning", ["#FF0000"], ["#0000FF"])

See docs/CLOJURE.md.
"""

from ff_mcp.clojure.jvm import (
    INSTALL_HINT,
    ClojureUnavailable,
    build_classpath,
    call,
    eval_string,
    find_clj_src,
    find_clojure_jar,
    find_data_json_jar,
    from_clj,
    is_started,
    keyword,
    require,
    start,
    to_clj,
    var,
)

__all__ = [
    "INSTALL_HINT",
    "ClojureUnavailable",
    "build_classpath",
    "call",
    "eval_string",
    "find_clj_src",
    "find_clojure_jar",
    "find_data_json_jar",
    "from_clj",
    "is_started",
    "keyword",
    "require",
    "start",
    "to_clj",
    "var",
]
