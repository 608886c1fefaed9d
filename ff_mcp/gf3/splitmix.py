"""SplitMix64 hashing and seed derivation, bit-compatible with Gay.jl and the Clojure port.

All values are unsigned 64-bit integers held in Python ints; every add and multiply wraps mod 2**64,
as Julia's `UInt64` and the JVM's `unchecked-*` operations do. Constants are from Gay.jl
`src/splittable.jl` (the standard SplitMix64 constants of Steele, Lea and Flood 2014).
"""

from __future__ import annotations

from collections.abc import Iterator

from ff_mcp.seeds import (  # the seed module owns SplitMix64's arithmetic; colors build on it
    FNV64_OFFSET,
    FNV64_PRIME,
    GOLDEN,
    MASK64,
    MIX1,
    MIX2,
    check_u64,
    derive_seed,
    derive_torch_seed,
    fnv1a64,
    mix64,
    splitmix64,
)

__all__ = ["FNV64_OFFSET", "FNV64_PRIME", "GOLDEN", "MASK64", "MIX1", "MIX2", "SplitMix64", "check_u64",
           "derive_seed", "derive_torch_seed", "fnv1a64", "mix64", "splitmix64"]


class SplitMix64:
    """The standard SplitMix64 stream: each draw adds GOLDEN to the state and returns its mix.

    >>> SplitMix64(1234567).next_u64()
    6457827717110365317
    """

    def __init__(self, seed: int) -> None:
        self.state = check_u64("seed", seed)

    def next_u64(self) -> int:
        """Return the next unsigned 64-bit draw."""
        self.state = (self.state + GOLDEN) & MASK64
        return mix64(self.state)

    def next_float(self) -> float:
        """Return a float in [0, 1) from the top 53 bits of the next draw."""
        return (self.next_u64() >> 11) * 2.0**-53

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        return self.next_u64()
