"""Goodness functions: how strongly a layer's activity says "this is positive data".

A goodness function maps a layer's activity ``h: (B, H)`` to one number per row ``(B,)``.
Each one also fixes its threshold convention and its direction:

- ``sum_squares``: sum_j h_j^2 with threshold = the layer width (Hinton's Matlab code
  ``sum(states.^2, 2) - layernums{l}``; loeweX/Forward-Forward).
- ``mean_squares``: mean_j h_j^2 with threshold theta = 2.0 (mpezeshki, fflib, Keras example).
- ``neg_sum_squares`` / ``neg_mean_squares``: the same measures, but positive data should give
  *low* activity ("minus the sum of the squared activities", Hinton 2022, abstract).

The logit of p(positive) is ``sign * (measure(h) - threshold)`` with sign -1 for the "neg_"
forms, so every loss can be written on logits alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

GOODNESS_NAMES = ("sum_squares", "mean_squares", "neg_sum_squares", "neg_mean_squares")


@dataclass(frozen=True)
class Goodness:
    """A named goodness measure with its threshold convention.

    ``measure(h: (B, H)) -> (B,)``; ``sign`` is +1 when positive data should score high.
    ``default_threshold(width)`` gives the threshold when the user leaves it unset.
    """

    name: str
    measure: Callable[[torch.Tensor], torch.Tensor]
    sign: float
    default_threshold: Callable[[int], float]

    def logits(self, h: torch.Tensor, threshold: float) -> torch.Tensor:
        """(B, H) activity -> (B,) logit of p(positive)."""
        return self.sign * (self.measure(h) - threshold)


def goodness_sum_squares(h: torch.Tensor) -> torch.Tensor:
    """(B, H) -> (B,): sum of squared activities (Hinton 2022, section 2)."""
    return h.square().sum(dim=-1)


def goodness_mean_squares(h: torch.Tensor) -> torch.Tensor:
    """(B, H) -> (B,): mean of squared activities (mpezeshki, fflib)."""
    return h.square().mean(dim=-1)


_REGISTRY: dict[str, Goodness] = {}


def register_goodness(goodness: Goodness) -> Goodness:
    """Add a goodness function to the registry (the seam for new FF variants)."""
    _REGISTRY[goodness.name] = goodness
    return goodness


register_goodness(Goodness("sum_squares", goodness_sum_squares, 1.0, lambda width: float(width)))
register_goodness(Goodness("mean_squares", goodness_mean_squares, 1.0, lambda width: 2.0))
register_goodness(Goodness("neg_sum_squares", goodness_sum_squares, -1.0, lambda width: float(width)))
register_goodness(Goodness("neg_mean_squares", goodness_mean_squares, -1.0, lambda width: 2.0))


def get_goodness(name: str) -> Goodness:
    """Look a goodness function up by name; unknown names list the allowed ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"goodness must be one of {sorted(_REGISTRY)}, got {name!r}") from None


def goodness_names() -> list[str]:
    return sorted(_REGISTRY)
