"""FF layers: a local objective and everything needed to optimise it on its own.

A layer normalises its input, applies its weights and activation, and scores the result with a
goodness function. Its loss depends only on its own output, and its input is detached by the
caller, so no gradient ever crosses layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .goodness import get_goodness, goodness_mean_squares, goodness_sum_squares
from .losses import get_loss
from .norms import norm_scale, normalize

ACTIVATIONS = ("relu", "relu_full_grad", "gelu", "leaky_relu", "tanh")
OPTIMIZERS = ("adam", "sgd", "adamw")


class _ReLUFullGrad(torch.autograd.Function):
    """ReLU forward, identity backward (loeweX ``ReLU_full_grad``): units that are off still learn."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return grad


def activate(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "relu":
        return F.relu(x)
    if name == "relu_full_grad":
        return _ReLUFullGrad.apply(x)
    if name == "gelu":
        return F.gelu(x)
    if name == "leaky_relu":
        return F.leaky_relu(x, 0.01)
    if name == "tanh":
        return torch.tanh(x)
    raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {name!r}")


@dataclass(frozen=True)
class OptimizerConfig:
    """How each layer optimises its local loss."""

    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # SGD only (loeweX: 0.9)
    weight_decay: float = 0.0  # loeweX uses 3e-4 with SGD
    fused: bool | None = None  # None: fused where this torch supports it; False: foreach

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.name!r}")
        if not (0.0 < self.lr <= 10.0):
            raise ValueError(f"lr must be in (0, 10], got {self.lr}")
        if not (0.0 <= self.momentum < 1.0):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not (0.0 <= self.weight_decay <= 1.0):
            raise ValueError(f"weight_decay must be in [0, 1], got {self.weight_decay}")

    def build(self, params: list[nn.Parameter]) -> torch.optim.Optimizer:
        """The optimizer; by default the fused kernel (one pass over each tensor: 5x faster than
        foreach Adam on CPU for 1000x1000 layers), falling back where this torch lacks it."""
        if self.fused is None:
            try:
                return self._make(params, {"fused": True})
            except (RuntimeError, ValueError, TypeError):
                return self._make(params, {})
        return self._make(params, {"fused": self.fused})

    def _make(self, params: list[nn.Parameter], extra: dict) -> torch.optim.Optimizer:
        if self.name == "adam":
            return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay, **extra)
        if self.name == "adamw":  # decoupled weight decay (Loshchilov & Hutter; SCFF's optimizer)
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay, **extra)
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay, **extra)


@torch.no_grad()
def seeded_uniform_(tensors: list[torch.Tensor], fan_in: int, generator: torch.Generator | None) -> None:
    """torch's default init of nn.Linear and nn.Conv2d, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn in order
    from ``generator`` (the seed's), not from the global random stream."""
    bound = 1.0 / math.sqrt(fan_in)
    for tensor in tensors:
        tensor.uniform_(-bound, bound, generator=generator)


class _RowLinear(torch.autograd.Function):
    """x @ W^T + b whose weight gradient uses only the first ``rows`` rows.

    The trainer runs positive, negative and neutral (readout) rows through one matmul; only the
    positive and negative rows carry an FF loss, so the weight gradient skips the rest. The input
    is detached (FF never sends gradients down), so no input gradient is computed.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, rows: int):  # type: ignore[override]
        ctx.save_for_backward(x[:rows])
        ctx.has_bias = bias is not None
        device = x.device.type
        # Remember autocast so the weight-gradient matmul runs in the same precision (bf16/fp16).
        ctx.amp = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        out = x @ weight.t()
        # The bias add promotes to fp32: activities and goodness sums stay in full precision.
        return out + bias if bias is not None else out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        g = grad[: x.shape[0]]
        if ctx.amp is not None:
            with torch.autocast(x.device.type, dtype=ctx.amp):
                grad_weight = g.t() @ x
        else:
            grad_weight = g.t() @ x
        grad_bias = g.sum(dim=0) if ctx.has_bias else None
        return None, grad_weight, grad_bias, None


class FFLinear(nn.Module):
    """Normalise -> linear -> activation, scored by a goodness function.

    x: (B, in_features) raw activity of the layer below (or the embedded data).
    returns h: (B, out_features), *before* the next layer's normalisation.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        activation: str = "relu",
        norm: str = "rms",
        goodness: str = "sum_squares",
        threshold: float | None = None,
        loss: str = "softplus",
        peer_norm: float = 0.0,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"layer sizes must be >= 1, got {in_features} -> {out_features}")
        activate(torch.zeros(1), activation)  # validates the name
        normalize(torch.ones(1, 1), norm)
        self.goodness_fn = get_goodness(goodness)
        self.loss_fn = get_loss(loss)
        self.in_features, self.out_features = in_features, out_features
        self.activation, self.norm, self.goodness_name, self.loss_name = activation, norm, goodness, loss
        self.threshold = float(threshold) if threshold is not None else self.goodness_fn.default_threshold(out_features)
        self.peer_norm = float(peer_norm)
        # loeweX init: N(0, 1/sqrt(out)) weights, zero bias; drawn from an explicit generator.
        weight = torch.randn(out_features, in_features, generator=generator) / math.sqrt(out_features)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        # Running mean activity per unit, for peer normalisation (Hinton's Matlab: 0.9/0.1 smoothing).
        self.register_buffer("running_mean", torch.zeros(out_features))

    def extra_repr(self) -> str:
        return (
            f"{self.in_features} -> {self.out_features}, act={self.activation}, norm={self.norm}, "
            f"goodness={self.goodness_name}, threshold={self.threshold:g}, loss={self.loss_name}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate(F.linear(normalize(x, self.norm), self.weight, self.bias), self.activation)

    def forward_train(self, x: torch.Tensor, grad_rows: int) -> torch.Tensor:
        """Like ``forward`` on detached x, but the weight gradient only sees rows[:grad_rows]."""
        pre = _RowLinear.apply(normalize(x, self.norm), self.weight, self.bias, grad_rows)
        return activate(pre, self.activation)

    def preactivation_parts(self, x_base: torch.Tensor, slot_strength: float, slots: int):
        """Pre-activations for every label slot at once, sharing one W.x.

        x_base: (B, D) embedded rows whose first ``slots`` entries are zero.
        Returns (B, K, H): pre-activation with ``slot_strength`` put in slot k, for k < K.
        Adding s to an empty slot changes ||x||^2 by s^2 for every k, so one scale serves all K.
        """
        base, coef = self.preactivation_base(x_base, slot_strength)
        columns = self.weight[:, :slots].t().contiguous()  # (K, H); a strided view slows the broadcast 3x
        # one pass over (B, K, H): base + (scale * s) * column_k
        return torch.addcmul(base.unsqueeze(1), coef.unsqueeze(2), columns.unsqueeze(0))

    def preactivation_base(self, x_base: torch.Tensor, slot_strength: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The label-free part of ``preactivation_parts``: (base (B, H), coef (B, 1)) with
        pre-activation(label k) = base + coef * W[:, k]."""
        probe = x_base.clone()
        probe[:, 0] = slot_strength
        scale = norm_scale(probe, self.norm)  # (B, 1)
        base = scale * (x_base @ self.weight.t())  # (B, H)
        if self.bias is not None:
            base = base + self.bias
        return base, scale * slot_strength

    def goodness(self, h: torch.Tensor) -> torch.Tensor:
        """(..., H) -> (...,) signed goodness: higher means "more positive" for every goodness kind."""
        measure = self.goodness_fn.measure
        if not torch.is_grad_enabled() and measure in (goodness_sum_squares, goodness_mean_squares):
            # one read of h, no (..., H) temporary (inference only: the norm's gradient is 0/0 at h = 0)
            squares = torch.linalg.vector_norm(h, dim=-1).square_()
            if measure is goodness_mean_squares:
                squares /= h.shape[-1]
            return squares if self.goodness_fn.sign == 1.0 else squares.neg_()
        return self.goodness_fn.sign * measure(h)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """(B, H) -> (B,) logit of p(positive)."""
        return self.goodness_fn.logits(h, self.threshold)

    def local_loss(self, h: torch.Tensor, n_pos: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """h: (B+ + B-, H), positives first. Returns (loss, g_pos_sum, g_neg_sum), detached sums."""
        measure = self.goodness_fn.measure(h)
        logits = self.goodness_fn.sign * (measure - self.threshold)
        loss = self.loss_fn(logits[:n_pos], logits[n_pos:])
        if self.peer_norm > 0.0:
            loss = loss + self.peer_norm * self._peer_loss(h[:n_pos])
        measure = measure.detach()
        return loss, measure[:n_pos].sum(), measure[n_pos:].sum()

    def _peer_loss(self, h_pos: torch.Tensor) -> torch.Tensor:
        """Push each unit's running mean activity toward the layer mean (Hinton 2022 sec. 3.3; loeweX)."""
        running = 0.9 * self.running_mean + 0.1 * h_pos.mean(dim=0)
        self.running_mean.copy_(running.detach())
        return (running.mean() - running).square().mean()
