"""Start one JVM per process with Debian's Clojure, data.json and the repo's clj/src, and convert data both ways.

JPype can start a JVM only once per process (a second start raises "JVM cannot be restarted"), so
`start()` is idempotent and everything else goes through it.

Conversions (Python -> Clojure by `to_clj`, Clojure -> Python by `from_clj`):
    dict <-> persistent map (str keys become keywords; keywords come back as their names)
    list, tuple, numpy array, torch tensor -> persistent vector; vectors, seqs -> list; sets <-> set
    int <-> Long (BigInt beyond 64 bits), float <-> Double, bool <-> Boolean, str <-> String, None <-> nil
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import ff_mcp

log = logging.getLogger(__name__)

INSTALL_HINT = "apt-get install default-jre-headless clojure libdata-json-clojure"
JAVA_DIRS = ("/usr/share/java",)  # Debian's jar directory
DATA_JSON_MAVEN_GLOB = "/usr/share/maven-repo/org/clojure/data.json/*/data.json-*.jar"
BRIDGE_NAMESPACES = ("ff-mcp.bridge", "music-topos.parallel-color-fork")

_lock = threading.RLock()
_started = False


class ClojureUnavailable(RuntimeError):
    """The JVM, JPype, Clojure or data.json is missing; the message says how to install it."""


# ---- finding the pieces --------------------------------------------------------------------------


def _classpath_env() -> list[str]:
    return [p for p in os.environ.get("CLASSPATH", "").split(os.pathsep) if p]


def _first_file(candidates: Iterable[str | Path]) -> Path | None:
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


def find_clojure_jar() -> Path:
    """Return Clojure's jar: $FF_MCP_CLOJURE_JAR, a clojure*.jar on $CLASSPATH, else Debian's /usr/share/java/clojure.jar.

    Debian's jar names spec.alpha and core.specs.alpha in its manifest's Class-Path, so it is enough alone.
    """
    env = os.environ.get("FF_MCP_CLOJURE_JAR")
    if env:
        if not Path(env).is_file():
            raise ClojureUnavailable(f"FF_MCP_CLOJURE_JAR={env} is not a file; unset it or point it at clojure.jar")
        return Path(env)
    on_classpath = [p for p in _classpath_env() if Path(p).name.startswith("clojure") and p.endswith(".jar")]
    debian = [str(Path(d) / "clojure.jar") for d in JAVA_DIRS]
    versioned = [p for d in JAVA_DIRS for p in sorted(glob.glob(str(Path(d) / "clojure-1.*.jar")), reverse=True)]
    found = _first_file([*on_classpath, *debian, *versioned])
    if found is None:
        raise ClojureUnavailable(
            f"Clojure's jar was not found (looked at $FF_MCP_CLOJURE_JAR, $CLASSPATH and {', '.join(JAVA_DIRS)}); "
            f"install it with: {INSTALL_HINT}"
        )
    return found


def find_data_json_jar() -> Path:
    """Return clojure.data.json's jar: $FF_MCP_DATA_JSON_JAR, one on $CLASSPATH, else Debian's data.json.jar."""
    env = os.environ.get("FF_MCP_DATA_JSON_JAR")
    if env:
        if not Path(env).is_file():
            raise ClojureUnavailable(f"FF_MCP_DATA_JSON_JAR={env} is not a file; unset it or point it at data.json.jar")
        return Path(env)
    on_classpath = [p for p in _classpath_env() if "data.json" in Path(p).name and p.endswith(".jar")]
    debian = [str(Path(d) / "data.json.jar") for d in JAVA_DIRS]
    found = _first_file([*on_classpath, *debian, *sorted(glob.glob(DATA_JSON_MAVEN_GLOB), reverse=True)])
    if found is None:
        raise ClojureUnavailable(
            "clojure.data.json's jar was not found (looked at $FF_MCP_DATA_JSON_JAR, $CLASSPATH and "
            f"{', '.join(JAVA_DIRS)}); install it with: {INSTALL_HINT}"
        )
    return found


def find_clj_src() -> Path:
    """Return the folder holding ff_mcp/bridge.clj: $FF_MCP_CLJ_SRC, else clj/src next to the package."""
    candidates = [os.environ.get("FF_MCP_CLJ_SRC"), Path(ff_mcp.__file__).resolve().parents[1] / "clj" / "src"]
    for c in candidates:
        if c and (Path(c) / "ff_mcp" / "bridge.clj").is_file():
            return Path(c)
    raise ClojureUnavailable(
        "the Clojure sources (clj/src with ff_mcp/bridge.clj) were not found next to the ff_mcp package; "
        "set FF_MCP_CLJ_SRC to the repository's clj/src"
    )


def build_classpath(extra: Sequence[str | Path] = ()) -> list[str]:
    """Return the JVM classpath: clojure.jar, data.json.jar, clj/src, `extra`, then the rest of $CLASSPATH."""
    parts = [str(find_clojure_jar()), str(find_data_json_jar()), str(find_clj_src()), *map(str, extra)]
    return parts + [p for p in _classpath_env() if p not in parts]


# ---- the JVM ---------------------------------------------------------------------------------------


def _jpype():
    try:
        import jpype
        import jpype.imports  # noqa: F401  (enables `import java...` style access for users)
    except ImportError as exc:
        raise ClojureUnavailable(f"JPype is not installed ({exc}); pip install jpype1, and {INSTALL_HINT}") from None
    return jpype


def is_started() -> bool:
    """Return True once `start` has brought up the JVM with Clojure loaded."""
    return _started


def start(extra_classpath: Sequence[str | Path] = (), *, register_engine: bool = True) -> None:
    """Start the JVM (once per process), load the bridge namespaces and register the in-process engine.

    extra_classpath: more folders/jars (e.g. clj/test); only honoured by the first call in a process.
    register_engine: make `ff_mcp.clojure.engine` the Clojure side's in-process transport.
    Raises ClojureUnavailable, naming the Debian packages, when a piece is missing.
    """
    global _started
    with _lock:
        if _started:
            if extra_classpath:
                log.debug("JVM already running; extra classpath %s ignored", list(extra_classpath))
            return
        jpype = _jpype()
        if not jpype.isJVMStarted():
            classpath = build_classpath(extra_classpath)
            try:
                jvm_path = jpype.getDefaultJVMPath()
            except Exception as exc:  # JVMNotFoundException and friends
                raise ClojureUnavailable(f"no Java runtime found ({exc}); install it with: {INSTALL_HINT}") from None
            log.debug("starting JVM %s with classpath %s", jvm_path, classpath)
            jpype.startJVM(jvm_path, classpath=classpath, convertStrings=False)
        require(*BRIDGE_NAMESPACES)
        atexit.register(_release)  # runs before JPype's own exit handler, which was registered first
        if register_engine:
            from ff_mcp.clojure.engine import register

            register()
        _started = True


def _release() -> None:
    """Stop the bridge's stdio servers and Clojure's agent pool, whose idle non-daemon threads
    would otherwise hold the JVM's exit (and so the process's) for up to 60 s."""
    try:
        var("ff-mcp.bridge", "close-all!").invoke()
        var("clojure.core", "shutdown-agents").invoke()
    except Exception:  # the process is ending; nothing useful to do with an error here
        log.debug("releasing the JVM failed", exc_info=True)


def _clojure_api():
    from jpype import JClass

    try:
        return JClass("clojure.java.api.Clojure")
    except Exception as exc:
        raise ClojureUnavailable(f"the JVM runs without Clojure on its classpath ({exc}); {INSTALL_HINT}") from None


def var(ns: str, name: str):
    """Return the Clojure var `ns`/`name` (an IFn: call it with .invoke(...))."""
    return _clojure_api().var(ns, name)


def require(*namespaces: str) -> None:
    """Load Clojure namespaces (by name, e.g. "ff-mcp.bridge") from the classpath."""
    api = _clojure_api()
    req = api.var("clojure.core", "require")
    for ns in namespaces:
        req.invoke(api.read(ns))


def eval_string(code: str) -> Any:
    """Return the value of Clojure `code` (one form), read and evaluated in the JVM, converted by `from_clj`."""
    api = _clojure_api()
    form = api.var("clojure.core", "read-string").invoke(to_clj(code))  # full reader: #(...), @, 'x
    return from_clj(api.var("clojure.core", "eval").invoke(form))


def call(ns: str, name: str, *args: Any) -> Any:
    """Return from_clj of Clojure function `ns`/`name` applied to to_clj of each argument."""
    return from_clj(var(ns, name).invoke(*[to_clj(a) for a in args]))


# ---- conversions -----------------------------------------------------------------------------------

_classes: dict[str, Any] = {}


def _j(name: str):
    cls = _classes.get(name)
    if cls is None:
        from jpype import JClass

        cls = _classes[name] = JClass(name)
    return cls


def keyword(name: str):
    """Return the Clojure keyword :name (a "ns/name" string gives a namespaced keyword)."""
    return _j("clojure.lang.Keyword").intern(name)


def to_clj(x: Any) -> Any:
    """Return Clojure data for Python data (see the module docstring); Java objects pass through."""
    if x is None:
        return None
    if isinstance(x, bool):
        return _j("java.lang.Boolean")(x)
    if isinstance(x, int):
        if -(2**63) <= x < 2**63:
            return _j("java.lang.Long")(x)
        return _j("clojure.lang.BigInt").fromBigInteger(_j("java.math.BigInteger")(str(x)))
    if isinstance(x, float):
        return _j("java.lang.Double")(x)
    if isinstance(x, str):
        return _j("java.lang.String")(x)
    if isinstance(x, dict):
        m = _j("java.util.HashMap")()
        for k, v in x.items():
            m.put(keyword(k) if isinstance(k, str) else to_clj(k), to_clj(v))
        return _j("clojure.lang.PersistentHashMap").create(m)
    if isinstance(x, (set, frozenset)):
        return _j("clojure.lang.PersistentHashSet").create(_array_list(x))
    if isinstance(x, (list, tuple)):
        return _j("clojure.lang.PersistentVector").create(_array_list(x))
    if hasattr(x, "tolist") and callable(x.tolist):  # numpy arrays and scalars, torch tensors
        return to_clj(x.tolist())
    if hasattr(x, "__float__") and not hasattr(x, "getClass"):  # e.g. Decimal, Fraction
        return _j("java.lang.Double")(float(x))
    if hasattr(x, "getClass"):  # already a Java object
        return x
    raise TypeError(f"cannot convert {type(x).__name__} to Clojure data: {x!r}")


def _array_list(items: Iterable[Any]):
    a = _j("java.util.ArrayList")()
    for v in items:
        a.add(to_clj(v))
    return a


def from_clj(x: Any) -> Any:
    """Return Python data for Clojure data (see the module docstring); other Java objects pass through."""
    if x is None or not hasattr(x, "getClass"):  # plain Python already (JPype's boxed numbers are Java)
        return x
    if isinstance(x, _j("clojure.lang.Named")):  # keywords and symbols
        ns = x.getNamespace()
        return f"{ns}/{x.getName()}" if ns is not None else str(x.getName())
    if isinstance(x, _j("java.lang.String")) or isinstance(x, _j("java.lang.Character")):
        return str(x)
    if isinstance(x, _j("java.lang.Boolean")):
        return bool(x)
    if isinstance(x, (_j("java.lang.Double"), _j("java.lang.Float"), _j("clojure.lang.Ratio"),
                      _j("java.math.BigDecimal"))):
        return float(x.doubleValue())
    if isinstance(x, (_j("clojure.lang.BigInt"), _j("java.math.BigInteger"))):
        return int(str(x))
    if isinstance(x, _j("java.lang.Number")):
        return int(x.longValue())
    if isinstance(x, _j("java.util.Map")):
        return {from_clj(e.getKey()): from_clj(e.getValue()) for e in x.entrySet()}
    if isinstance(x, _j("java.util.Set")):
        items = [from_clj(v) for v in x]
        try:
            return set(items)
        except TypeError:  # unhashable members (maps, vectors)
            return items
    if isinstance(x, _j("java.util.List")) or isinstance(x, _j("java.util.Collection")):
        return [from_clj(v) for v in x]
    if isinstance(x, _j("clojure.lang.Seqable")):  # lazy seqs that are not Lists
        s = _j("clojure.lang.RT").seq(x)
        out = []
        while s is not None:
            out.append(from_clj(s.first()))
            s = s.next()
        return out
    return x
