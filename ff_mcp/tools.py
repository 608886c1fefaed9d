"""Tool logic with no MCP in it: plain functions that check their arguments (ValueError naming the
field and what is allowed) and return plain dicts. The MCP server (ff_mcp/server) and the Clojure
in-process bridge (ff_mcp/clojure/engine.py) both call these, so a tool answers the same fields
with the same error texts over either transport.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from ff_mcp.gf3 import GAY_SEED, MASK64, MAX_COUNT, balancing_trit, check_trit, colors, parse_triad_statement, sum_mod3

# Model names: also file names in the registry, so no path separators, and never "." or ".."
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_NAME_RE = re.compile(NAME_PATTERN)
# file names Windows keeps for devices, with or without an extension ("nul", "CON.json")
WINDOWS_RESERVED = frozenset(["CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                              *(f"LPT{i}" for i in range(1, 10))])


def validate_name(name: object, field: str = "model") -> str:
    """Return name if it is a valid model name; ValueError naming `field` and the rule otherwise."""
    if not is_valid_name(name):
        if isinstance(name, str) and _NAME_RE.fullmatch(name) and name not in (".", ".."):
            raise ValueError(f"{field}: {name!r} is a device name Windows reserves (CON, PRN, AUX, NUL, "
                             f"COM1-COM9, LPT1-LPT9, with or without an extension); choose another name")
        raise ValueError(
            f"{field} must be 1-64 characters from A-Z a-z 0-9 _ . - (and not '.' or '..'), got {name!r}"
        )
    return name


def is_valid_name(name: object) -> bool:
    return (isinstance(name, str) and bool(_NAME_RE.fullmatch(name)) and name not in (".", "..")
            and name.split(".", 1)[0].upper() not in WINDOWS_RESERVED)


def unknown_arguments(tool: str, unknown: Iterable[str], accepted: Iterable[str]) -> str:
    """The one-line refusal of arguments a tool does not have: names them, suggests the closest
    accepted name, and lists what the tool accepts."""
    accepted = sorted(accepted)
    unknown = sorted(unknown)
    names = ", ".join(repr(u) for u in unknown)
    hints = [f"{u!r} -> {close[0]!r}" for u in unknown
             if (close := difflib.get_close_matches(u, accepted, n=1, cutoff=0.75))]
    hint = f" (did you mean {'; '.join(hints)}?)" if hints else ""
    plural = "s" if len(unknown) > 1 else ""
    return f"unknown argument{plural} {names}{hint}; {tool} accepts: {', '.join(accepted) or 'no arguments'}"


def color_seed(seed: int = GAY_SEED, start: int = 0, count: int = 12) -> dict[str, Any]:
    """Colors start .. start+count-1 of Gay.jl's hash_color stream: {seed, start, colors: [{index, hex, hue, trit}]}."""
    for field, value, high in (("seed", seed, MASK64), ("start", start, MASK64), ("count", count, MAX_COUNT)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise ValueError(f"{field} must be an integer in [0, {high}], got {value!r}")
    stream = colors(seed, start, count)
    return {"seed": seed, "start": start,
            "colors": [{"index": c.index, "hex": c.hex, "hue": c.hue, "trit": c.trit} for c in stream]}


def gf3_triad(trits: list[int] | None = None, statement: str | None = None) -> dict[str, Any]:
    """GF(3) balance of 2-3 trits or of a triad statement, with the trit that completes it."""
    if trits is not None and statement is not None:
        raise ValueError("give trits or statement, not both")
    if trits is None and statement is None:
        raise ValueError("give trits (2 or 3 of -1, 0, 1) or statement ('a (-1) ⊗ b (0) ⊗ c (+1)'); got neither")
    if statement is not None:
        if not isinstance(statement, str):
            raise ValueError(f"statement must be a string like 'a (-1) ⊗ b (0) ⊗ c (+1)', got {statement!r}")
        parsed = parse_triad_statement(statement)
        return {"balanced": parsed.balanced, "sum_mod3": parsed.sum_mod3,
                "completing_trit": balancing_trit(parsed.trits), "trits": list(parsed.trits),
                "names": list(parsed.names), "claim_correct": parsed.claim_correct, "canonical": str(parsed)}
    if not isinstance(trits, (list, tuple)) or not 2 <= len(trits) <= 3:
        raise ValueError(f"trits must be a list of 2 or 3 trits (-1, 0, 1), got {trits!r}")
    checked = [check_trit(t, f"trits[{i}]") for i, t in enumerate(trits)]
    total = sum_mod3(checked)
    return {"balanced": total == 0, "sum_mod3": total, "completing_trit": balancing_trit(checked), "trits": checked,
            "names": None, "claim_correct": None, "canonical": None}  # the statement's fields, as the server sends them


# ---- color models in a registry (the server's and the in-process bridge's) -----------------------


def refuse_to_replace_other_kind(registry: Any, name: str) -> None:
    """ff_color_learn replaces an older color model of the same name, but never another kind of model."""
    from ff_mcp import colorlearn

    if registry.exists(name):
        kind = registry.info(name).extra.get("kind")
        if kind != colorlearn.MODEL_KIND:
            raise ValueError(f"name: model {name!r} exists and is not a color model; choose another name"
                             " or delete it first with ff_model_delete")


def check_color_model(name: str, extra: dict[str, Any]) -> None:
    """ValueError unless ``extra`` (a checkpoint's) is a color model's that this version reads."""
    from ff_mcp import colorlearn

    kind = extra.get("kind")
    if kind != colorlearn.MODEL_KIND:
        raise ValueError(f"model {name!r} is not a color model (kind {kind!r}); ff_color_score takes models made "
                         f"by ff_color_learn")
    if extra.get("features") != colorlearn.FEATURES:
        raise ValueError(f"model {name!r} uses color features {extra.get('features')!r}; this server reads "
                         f"{colorlearn.FEATURES!r}")
