"""Deterministic colours by index (Gay.jl `hash_color`) and a strict parser for colour input.

`hash_color(seed, index)` is Gay.jl's fast-path `color_at` (`src/splittable.jl`, `src/kernels.jl`):
h = splitmix64(seed XOR index * GOLDEN), r, g, b = the low three bytes of h. It does NOT reproduce the
GENESIS_COLORS table that Gay.jl quotes from the gay-mcp server (#E67F86, #D06546, ...), which no
public code is known to generate. A colour's trit is `trit_from_hue` of its HSL hue.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from numbers import Integral, Real

from ff_mcp.gf3.splitmix import GOLDEN, MASK64, check_u64, splitmix64
from ff_mcp.gf3.trits import hue_of, trit_from_hue

GAY_SEED = 1069  # Gay.jl's canonical seed since v0.4.0 ("0x42D")
MAX_COUNT = 10_000  # most colours one call may ask for

_HEX_RE = re.compile(r"#?([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})([0-9A-Fa-f]{2})")
_ALLOWED = "'#RRGGBB', 'RRGGBB', or [r, g, b] of ints 0-255 or of floats 0-1"


@dataclass(frozen=True)
class Color:
    """One colour of a sequence: its index and 8-bit channels, plus hex, HSL hue and trit derived from them."""

    index: int
    r: int
    g: int
    b: int
    hex: str = field(init=False)  # "#RRGGBB", upper case
    hue: float = field(init=False)  # HSL hue in degrees, [0, 360)
    trit: int = field(init=False)  # trit_from_hue(hue)

    def __post_init__(self) -> None:
        for name in ("r", "g", "b"):
            _check_byte(name, getattr(self, name))
        object.__setattr__(self, "hex", rgb_to_hex((self.r, self.g, self.b)))
        object.__setattr__(self, "hue", hue_of(self.r, self.g, self.b))
        object.__setattr__(self, "trit", trit_from_hue(self.hue))

    @property
    def rgb(self) -> tuple[int, int, int]:
        return (self.r, self.g, self.b)


def hash_color(seed: int, index: int) -> tuple[int, int, int]:
    """Return (r, g, b) bytes of colour `index` under `seed`: the low three bytes of Gay.jl's hash."""
    check_u64("seed", seed)
    check_u64("index", index)
    h = splitmix64(seed ^ ((index * GOLDEN) & MASK64))
    return (h & 0xFF, (h >> 8) & 0xFF, (h >> 16) & 0xFF)


def color_at(seed: int, index: int) -> Color:
    """Return colour `index` of the sequence for `seed` as a Color."""
    return Color(index, *hash_color(seed, index))


def colors(seed: int, start: int, count: int) -> list[Color]:
    """Return the `count` colours with indices start, start + 1, ... for `seed`."""
    check_u64("seed", seed)
    check_u64("start", start)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
        raise ValueError(f"count must be an integer in [0, {MAX_COUNT}], got {count!r}")
    if start + count > MASK64 + 1:
        raise ValueError(f"start + count must be <= 2**64 so every index fits, got start={start}, count={count}")
    return [color_at(seed, index) for index in range(start, start + count)]


def rgb_to_hex(rgb: tuple[int, int, int]) -> str:
    """Return "#RRGGBB" (upper case) for three ints 0-255."""
    r, g, b = (_check_byte(name, value) for name, value in zip("rgb", rgb, strict=True))
    return f"#{r:02X}{g:02X}{b:02X}"


def parse_color(value: object) -> tuple[int, int, int]:
    """Return (r, g, b) ints 0-255 from '#RRGGBB', 'RRGGBB' (any case) or a 3-element list or tuple.

    The rule for lists and tuples: if every element is an int, they are 0-255 bytes; if any element
    is a float, all three are 0-1 fractions, scaled by 255 and rounded half to even (so [1.0, 0, 0]
    is red and [255.0, 0, 0] is an error). Anything else raises ValueError quoting the value.
    """
    if isinstance(value, str):
        match = _HEX_RE.fullmatch(value)
        if match is None:
            raise ValueError(f"color must be {_ALLOWED}; got {value!r} (hex needs exactly 6 hex digits)")
        return tuple(int(pair, 16) for pair in match.groups())  # type: ignore[return-value]
    channels, is_unit = _triple(value)
    if is_unit:
        return tuple(round(c * 255) for c in channels)  # type: ignore[return-value]
    return tuple(int(c) for c in channels)  # type: ignore[return-value]


def color_to_unit(value: object) -> tuple[float, float, float]:
    """Return (r, g, b) floats in [0, 1] for any input parse_color accepts; 0-1 floats pass through as given."""
    if not isinstance(value, str):
        channels, is_unit = _triple(value)
        if is_unit:
            return tuple(float(c) for c in channels)  # type: ignore[return-value]
    return tuple(c / 255 for c in parse_color(value))  # type: ignore[return-value]


def parse_colors(values: object, *, unit: bool = False) -> list[tuple]:
    """Return parse_color (or, with unit=True, color_to_unit) of each element of a list or tuple.

    A bad element raises ValueError that starts with its position, e.g. "colors[2]: ...".
    """
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ValueError(f"colors must be a list of colors ({_ALLOWED}), got {values!r}")
    convert = color_to_unit if unit else parse_color
    parsed = []
    for position, value in enumerate(values):
        try:
            parsed.append(convert(value))
        except ValueError as error:
            raise ValueError(f"colors[{position}]: {error}") from None
    return parsed


def _check_byte(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise ValueError(f"{name} must be an integer in [0, 255], got {value!r}")
    return value


def _triple(value: object) -> tuple[tuple, bool]:
    """Return the three channels of a list or tuple and whether they are 0-1 floats; raise ValueError otherwise."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ValueError(f"color must be {_ALLOWED}; got {value!r}")
    if any(isinstance(c, bool) or not isinstance(c, Real) for c in value):
        raise ValueError(f"color channels must be numbers (not bools); got {value!r}")
    if all(isinstance(c, Integral) for c in value):
        if not all(0 <= c <= 255 for c in value):
            raise ValueError(f"integer color channels must be in [0, 255]; got {value!r}")
        return tuple(value), False
    if not all(math.isfinite(c) and 0.0 <= c <= 1.0 for c in value):
        raise ValueError(f"a color with any float channel is read as 0-1 floats, each must be in [0, 1]; got {value!r}")
    return tuple(value), True
