"""Trits (elements of GF(3) written -1, 0, +1), their roles and colours, and the hue -> trit rule.

Conventions follow the plurigrid/asi skill cards and Gay.jl `src/three_match.jl`: warm hues are +1
(PLUS, generator), green hues 0 (ERGODIC, coordinator), cold hues -1 (MINUS, validator).
"""

from __future__ import annotations

import math

TRITS = (-1, 0, 1)

# HSL(h, 70%, 50%) for h = 0, 120, 240 degrees, channels truncated with int(x * 255), as on the cards.
TRIT_COLORS = {1: "#D82626", 0: "#26D826", -1: "#2626D8"}
TRIT_ROLES = {1: "PLUS", 0: "ERGODIC", -1: "MINUS"}
TRIT_DESCRIPTIONS = {1: "generator", 0: "coordinator", -1: "validator"}

# Spellings accepted by parse_trit; U+2212 is the typographic minus sign.
_TRIT_SPELLINGS = {"+1": 1, "1": 1, "0": 0, "-1": -1, "\u22121": -1}


def check_trit(value: object, name: str = "trit") -> int:
    """Return `value` if it is one of the ints -1, 0, 1; raise ValueError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in TRITS:
        raise ValueError(f"{name} must be -1, 0 or +1, got {value!r}")
    return value


def parse_trit(text: str) -> int:
    """Return the trit spelled `text` ("+1", "1", "0", "-1" or "−1", surrounding spaces ignored)."""
    if isinstance(text, str) and text.strip() in _TRIT_SPELLINGS:
        return _TRIT_SPELLINGS[text.strip()]
    raise ValueError(f"trit must be one of '-1', '0', '+1' (or '1', '−1'), got {text!r}")


def trit_from_hue(hue: float) -> int:
    """Return +1 for hue in [0, 60) or [300, 360), 0 for [60, 180), -1 for [180, 300); hue is taken mod 360."""
    if isinstance(hue, bool) or not isinstance(hue, (int, float)) or not math.isfinite(hue):
        raise ValueError(f"hue must be a finite number of degrees, got {hue!r}")
    h = hue % 360
    if h < 60 or h >= 300:
        return 1
    if h < 180:
        return 0
    return -1


def hue_of(r: int, g: int, b: int) -> float:
    """Return the HSL hue in degrees, in [0, 360), of 8-bit channels; grey (r == g == b) has hue 0.

    The branches avoid float `%` so that the Clojure port (ff-mcp.colors/hue-of) does the very same
    IEEE operations and gets bit-identical hues.
    """
    hi, lo = max(r, g, b), min(r, g, b)
    spread = hi - lo
    if spread == 0:
        return 0.0
    if hi == r:
        sector = (g - b) / spread
        return 60.0 * (sector + 6.0) if sector < 0 else 60.0 * sector
    if hi == g:
        return 60.0 * ((b - r) / spread + 2.0)
    return 60.0 * ((r - g) / spread + 4.0)
