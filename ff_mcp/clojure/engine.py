"""The in-process engine: ff-mcp's color tools called straight from Clojure, with no JSON and no MCP.

`InProcessTools` is plain Python: `call(tool, arguments)` takes the MCP tool name and arguments and
returns the same fields as the MCP tool's structured result (ff_mcp.server.color_tools), so Clojure
code gets identical data over either transport (tests/clojure compares them, tool by tool). `register()`
wraps it in a Java java.util.function.Function (JPype @JImplements) and hands it to
(ff-mcp.bridge/register-engine! f). Models made here are kept in a registry of this process's own
(a temporary directory, gone when the process ends; the stdio server keeps its models in its home).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from typing import Any

from ff_mcp import colorlearn
from ff_mcp import tools as shared_tools  # the tool logic the MCP server calls too
from ff_mcp.gf3 import GAY_SEED

log = logging.getLogger(__name__)



class InProcessTools:
    """ff_color_learn, ff_color_score, color_seed, gf3_triad and ff_models, run in this process.

    Errors a caller can cause raise ValueError (or LookupError for an unknown model) with the text
    the MCP server would send. One lock serialises engine calls from the JVM's threads.
    """

    def __init__(self, home: str | None = None) -> None:
        """``home``: the registry's directory (default: a temporary one, removed at exit)."""
        from ff_mcp.server.registry import ModelRegistry

        if home is None:
            self._home = tempfile.TemporaryDirectory(prefix="ff-mcp-in-process-")
            home = self._home.name
        self.registry = ModelRegistry(home)
        self._lock = threading.Lock()
        self._tools = {
            "ff_color_learn": self.ff_color_learn,
            "ff_color_score": self.ff_color_score,
            "color_seed": self.color_seed,
            "gf3_triad": self.gf3_triad,
            "ff_models": self.ff_models,
        }

    @property
    def tool_names(self) -> list[str]:
        return sorted(self._tools)

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        """Return tool `tool`'s result for `arguments` (a dict of the MCP tool's parameters)."""
        handler = self._tools.get(tool)
        if handler is None:
            raise ValueError(
                f"unknown tool {tool!r}; in process there are {', '.join(self.tool_names)}"
                " (the others need the stdio transport: :transport :stdio)"
            )
        arguments = dict(arguments or {})
        accepted = handler.__code__.co_varnames[1 : handler.__code__.co_argcount]
        unknown = set(arguments) - set(accepted)
        if unknown:
            raise ValueError(shared_tools.unknown_arguments(tool, unknown, accepted))
        with self._lock:
            return handler(**arguments)

    # ---- tools ----------------------------------------------------------------------------------

    def ff_color_learn(self, name: str, positive: Any, negative: Any = None, seed: int = GAY_SEED,
                       hidden: int = 16, epochs: int = colorlearn.DEFAULT_EPOCHS) -> dict[str, Any]:
        shared_tools.validate_name(name, "name")
        shared_tools.refuse_to_replace_other_kind(self.registry, name)
        result = colorlearn.ff_color_learning(positive, negative, seed=seed, hidden=hidden, epochs=epochs)
        metrics = {**result.metrics, "state": "done"}  # as the server saves it
        card = self.registry.save(name, result.network, result.train_config, metrics, result.model_extra())
        return {
            "model": name,
            "uri": card.uri,
            "goodness_pos": result.goodness_pos,
            "goodness_neg": result.goodness_neg,
            "margin": result.margin,
            "accuracy": result.accuracy,
            "negatives": result.negatives_used,
            "negatives_drawn": result.negatives_drawn,
        }

    def ff_color_score(self, model: str, colors: Any, image: bool = False) -> dict[str, Any]:
        shared_tools.validate_name(model, "model")
        if image:
            raise ValueError("image: swatch pictures are only sent by the MCP server; call with image false")
        checkpoint = self.registry.load(model)  # LookupError naming the saved models when unknown
        shared_tools.check_color_model(model, checkpoint.extra)
        scores, goodness = colorlearn.score_colors(checkpoint.network, colors)
        return {"model": model, "scores": scores, "goodness": goodness}

    def color_seed(self, seed: int = GAY_SEED, start: int = 0, count: int = 12) -> dict[str, Any]:
        return shared_tools.color_seed(seed, start, count)

    def gf3_triad(self, trits: list[int] | None = None, statement: str | None = None) -> dict[str, Any]:
        return shared_tools.gf3_triad(trits, statement)

    def ff_models(self) -> dict[str, Any]:
        return {"models": [card.model_dump(mode="json") for card in self.registry.list()]}


# ---- the Java face ---------------------------------------------------------------------------------

_java_engine = None
tools = InProcessTools()  # the process's engine; Clojure's in-process calls land here


def java_engine(engine: InProcessTools | None = None):
    """Return a java.util.function.Function over `engine` (default: this module's `tools`).

    apply({:tool "name" :arguments {...}}) returns {:result {...}} or {:error "message" :python-type "..."}.
    Needs a started JVM (ff_mcp.clojure.jvm.start).
    """
    from jpype import JImplements, JOverride

    from ff_mcp.clojure.jvm import from_clj, to_clj

    @JImplements("java.util.function.Function")
    class ClojureEngine:
        def __init__(self, engine: InProcessTools) -> None:
            self.engine = engine

        @JOverride
        def apply(self, request):
            try:
                req = from_clj(request)
                result = self.engine.call(str(req.get("tool")), req.get("arguments") or {})
                return to_clj({"result": result})
            except (ValueError, LookupError, TypeError) as exc:
                return to_clj({"error": str(exc) or type(exc).__name__, "python-type": type(exc).__name__})
            except Exception as exc:  # a bug: say so without a traceback on the Clojure side
                log.exception("in-process engine failed")
                return to_clj({"error": f"internal error in the in-process engine: {type(exc).__name__}: {exc}",
                               "python-type": type(exc).__name__})

    return ClojureEngine(engine or tools)


def register(engine: InProcessTools | None = None) -> None:
    """Make `engine` (default: `tools`) Clojure's in-process transport: (ff-mcp.bridge/register-engine! f)."""
    global _java_engine
    from ff_mcp.clojure.jvm import var

    _java_engine = java_engine(engine)  # keep a Python reference so the proxy stays alive
    var("ff-mcp.bridge", "register-engine!").invoke(_java_engine)
