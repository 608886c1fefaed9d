"""Layer-local FF losses, written on the logits of p(positive).

A loss takes ``logit_pos: (B,)`` and ``logit_neg: (B',)`` (see ``goodness.Goodness.logits``)
and returns a scalar. New losses register by name; the trainer never needs to change.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def softplus_loss(logit_pos: torch.Tensor, logit_neg: torch.Tensor) -> torch.Tensor:
    """Logistic threshold loss (Hinton 2022): -log sigma(l+) - log(1 - sigma(l-)), averaged.

    Positive and negative rows are averaged together, as loeweX's BCE over the stacked batch.
    """
    per_row = torch.cat([F.softplus(-logit_pos), F.softplus(logit_neg)])
    return per_row.mean()


def symba_loss(logit_pos: torch.Tensor, logit_neg: torch.Tensor, alpha: float = 4.0) -> torch.Tensor:
    """SymBa (Lee & Song 2023, eq. 5): softplus(-alpha * (g+ - g-)), pairing row i with row i.

    The threshold cancels in the difference, so positive and negative gradients stay balanced.
    Requires as many negative rows as positive ones.
    """
    if logit_pos.shape != logit_neg.shape:
        raise ValueError(
            f"symba loss needs as many negative rows as positive ones, got {tuple(logit_pos.shape)} "
            f"and {tuple(logit_neg.shape)}"
        )
    return F.softplus(-alpha * (logit_pos - logit_neg)).mean()


_REGISTRY: dict[str, LossFn] = {"softplus": softplus_loss, "symba": symba_loss}


def register_loss(name: str, fn: LossFn) -> LossFn:
    """Add a loss to the registry (the seam for new FF variants)."""
    _REGISTRY[name] = fn
    return fn


def get_loss(name: str) -> LossFn:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"loss must be one of {sorted(_REGISTRY)}, got {name!r}") from None


def loss_names() -> list[str]:
    return sorted(_REGISTRY)
