"""Layer-local FF losses, written on the logits of p(positive).

A loss takes ``logit_pos: (B,)`` and ``logit_neg: (B',)`` (see ``goodness.Goodness.logits``)
and returns a scalar. New losses register by name; the trainer never needs to change.
"""

from __future__ import annotations

import functools
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


def softplus_loss_and_grad(logits: torch.Tensor, n_pos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``softplus_loss`` of logits[:n_pos] (positive) and logits[n_pos:] (negative), and its gradient
    with respect to ``logits`` in closed form: d/dl softplus(-l) = -sigmoid(-l), d/dl softplus(l) =
    sigmoid(l), each over the row count."""
    sign, signed_rows = _signs(n_pos, logits.shape[0], logits.dtype, logits.device)
    flipped = logits * sign  # -l for positive rows, l for negative ones
    grad = torch.sigmoid(flipped).div_(signed_rows)  # x / -n == -(x / n) exactly
    return F.softplus(flipped).mean(), grad


@functools.lru_cache(maxsize=64)
def _signs(n_pos: int, rows: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(-1 for the n_pos positive rows, +1 after) and the same times ``rows``, cached per shape."""
    sign = torch.ones(rows, dtype=dtype, device=device)
    sign[:n_pos] = -1.0
    return sign, sign * rows


def symba_loss_and_grad(logits: torch.Tensor, n_pos: int, alpha: float = 4.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``symba_loss`` and its gradient: with d = l+ - l-, dL/dl+ = -alpha sigmoid(-alpha d) / B = -dL/dl-."""
    logit_pos, logit_neg = logits[:n_pos], logits[n_pos:]
    loss = symba_loss(logit_pos, logit_neg, alpha)
    g = torch.sigmoid(-alpha * (logit_pos - logit_neg)).mul_(-alpha / n_pos)
    return loss, torch.cat([g, g.neg()])


LossGradFn = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]

_REGISTRY: dict[str, LossFn] = {"softplus": softplus_loss, "symba": symba_loss}
_GRADS: dict[LossFn, LossGradFn] = {softplus_loss: softplus_loss_and_grad, symba_loss: symba_loss_and_grad}


def register_loss(name: str, fn: LossFn, loss_and_grad: LossGradFn | None = None) -> LossFn:
    """Add a loss to the registry (the seam for new FF variants). ``loss_and_grad(logits, n_pos)``,
    optional, returns (loss, d loss / d logits) in closed form; without it the fused step asks autograd."""
    _REGISTRY[name] = fn
    if loss_and_grad is not None:
        _GRADS[fn] = loss_and_grad
    return fn


def loss_and_grad(fn: LossFn, logits: torch.Tensor, n_pos: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, d loss / d logits) of ``fn(logits[:n_pos], logits[n_pos:])`` for any loss; both detached."""
    closed = _GRADS.get(fn)
    if closed is not None:
        loss, grad = closed(logits.detach(), n_pos)
        return loss.detach(), grad
    logits = logits.detach().requires_grad_()
    with torch.enable_grad():
        loss = fn(logits[:n_pos], logits[n_pos:])
        (grad,) = torch.autograd.grad(loss, logits)
    return loss.detach(), grad


def get_loss(name: str) -> LossFn:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"loss must be one of {sorted(_REGISTRY)}, got {name!r}") from None


def loss_names() -> list[str]:
    return sorted(_REGISTRY)
