"""Seeds for everything: one user-facing seed, an independent stream per purpose.

``derive_seed(seed, purpose)`` is SplitMix64 over an FNV-1a hash of the purpose ("init", "shuffle",
"negatives", "colors", ...), bit-compatible with Gay.jl and the Clojure port (ff_mcp.gf3 builds its
colors on it). ``generator(seed, purpose, device)`` is the one way the engine makes a
``torch.Generator``; the global RNG is never used. Pure Python until a generator is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

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


def generator(seed: int, purpose: str, device: Any = "cpu") -> "torch.Generator":
    """A ``torch.Generator`` on ``device`` seeded for (seed, purpose): the engine's one source of
    randomness. (derive_seed mod 2**63, the engine's mapping since its first checkpoint, so a given
    seed keeps giving the same weights, batches and negatives.)"""
    import torch

    return torch.Generator(device=device).manual_seed(derive_seed(seed, purpose) % 2**63)
