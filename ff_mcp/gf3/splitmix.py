"""SplitMix64 hashing and seed derivation, bit-compatible with Gay.jl and the Clojure port.

All values are unsigned 64-bit integers held in Python ints; every add and multiply wraps mod 2**64,
as Julia's `UInt64` and the JVM's `unchecked-*` operations do. Constants are from Gay.jl
`src/splittable.jl` (the standard SplitMix64 constants of Steele, Lea and Flood 2014).
"""

from __future__ import annotations

from collections.abc import Iterator

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15  # floor(2**64 / phi), the SplitMix64 "gamma"
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB

FNV64_OFFSET = 0xCBF29CE484222325  # FNV-1a 64-bit parameters (Fowler, Noll, Vo)
FNV64_PRIME = 0x100000001B3


def check_u64(name: str, value: object) -> int:
    """Return `value` if it is an int in [0, 2**64); raise ValueError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MASK64:
        raise ValueError(f"{name} must be an integer in [0, 2**64), got {value!r}")
    return value


def mix64(z: int) -> int:
    """Return the SplitMix64 finalizer of `z` (taken mod 2**64)."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def splitmix64(x: int) -> int:
    """Return Gay.jl's `splitmix64(x)`: add GOLDEN (wrapping), then mix; `x` is taken mod 2**64."""
    return mix64(x + GOLDEN)


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


def fnv1a64(data: bytes) -> int:
    """Return the 64-bit FNV-1a hash of `data` (stable across runs, unlike Python's `hash`)."""
    h = FNV64_OFFSET
    for byte in data:
        h = ((h ^ byte) * FNV64_PRIME) & MASK64
    return h


def derive_seed(base_seed: int, purpose: str) -> int:
    """Return a 64-bit seed for one named use ("init", "shuffle", "negatives", ...) of `base_seed`.

    splitmix64(fnv1a64(purpose as UTF-8) XOR base_seed): the same pair always gives the same seed,
    and different purposes give unrelated streams from one user-facing seed.
    """
    check_u64("base_seed", base_seed)
    if not isinstance(purpose, str):
        raise ValueError(f"purpose must be a string, got {purpose!r}")
    return splitmix64(fnv1a64(purpose.encode("utf-8")) ^ base_seed)


def derive_torch_seed(base_seed: int, purpose: str) -> int:
    """Return `derive_seed(base_seed, purpose)` shifted into [0, 2**63) for `torch.Generator.manual_seed`."""
    return derive_seed(base_seed, purpose) >> 1
