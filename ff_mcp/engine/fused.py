"""One FF layer's local training step, fused.

The autograd step (``FFLinear.forward_train`` + ``local_loss`` + ``backward`` + ``optimizer.step``)
builds a graph, writes a fresh weight gradient and then reads it back in the optimizer: three
passes over every weight-sized tensor and a dozen small kernels per layer. For the layers FF
uses almost always -- ReLU (or ReLU with full gradient), a sum- or mean-of-squares goodness --
the gradient has a closed form, so the fused step computes it by hand:

    h = relu(s * (x W^T) + b)                      s = norm(x) / x, from the sums of squares
                                                   the layer below already computed
    l_i = sign * (a * ||h_i||^2 - theta)           a = 1 (sum) or 1/H (mean)
    c_i = dL/dl_i                                  closed form (softplus, SymBa), else autograd
                                                   on the (rows,) logits only: any loss
    dL/dpre_i = 2 sign a c_i h_i  (+ peer term)    ReLU's mask is free: h_i is 0 where it is off
    dL/dW = (s * dL/dpre)^T x

The first layer goes further. Positive, negative and neutral rows are the same B images with
different labels (``LabeledRows``), so ``base @ W^T`` is computed once for B rows and each row
adds its label's column of W (a gather: BLAS is slow on (rows, 10) x (10, H)); the weight
gradient of the image part is one (H x B) @ (B x D) matmul over the summed positive and negative
coefficients, and the label columns get an index_add. For MNIST 3x1000 that cuts a step's
FLOPs by 17 %.

With SGD the weight gradient never exists as a tensor: one ``addmm_`` writes
``momentum * buf + dL/dW`` straight into the momentum buffer, then weight decay and the update
follow (torch.optim.SGD's arithmetic, same state, so checkpoints and optimizers stay
interchangeable). Other optimizers get ``.grad`` and take their own (fused) step.

On CPU in fp32 the other layers' forward is oneDNN's fused linear + bias + ReLU on normalised rows
(~10 % faster than torch.mm here), with torch.mm as the fallback.

Anything else (GELU, tanh, registered goodness functions, ...) runs the autograd step, which
stays the reference: tests check both paths give the same weights.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch

from .goodness import goodness_mean_squares, goodness_sum_squares
from .labels import LabeledRows
from .layers import FFLinear
from .losses import loss_and_grad
from .norms import scale_from_sumsq

FUSED_ACTIVATIONS = ("relu", "relu_full_grad")
_LOW = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class StepResult:
    """One layer's step: its activity for the layer above and detached scalars for the metrics."""

    h: torch.Tensor  # (rows, H) detached activity of every row (positive, negative, neutral)
    loss: torch.Tensor  # () local loss including the peer term
    g_pos: torch.Tensor  # () summed goodness measure of the positive rows
    g_neg: torch.Tensor  # () summed goodness measure of the negative rows
    sumsq: torch.Tensor | None = None  # (rows,) ||h_r||^2, the next layer's normalisation for free
    normalized: torch.Tensor | None = None  # h scaled in place for the next layer, when asked (then h is it)
    packed: torch.Tensor | None = None  # (3,) loss, g_pos, g_neg in one tensor, when the step made one

    def metrics(self) -> torch.Tensor:
        """(3,) float: loss, summed positive and summed negative goodness, for the epoch statistics."""
        if self.packed is not None:
            return self.packed
        return torch.stack([self.loss, self.g_pos, self.g_neg]).float()


def _goodness_scale(layer: FFLinear) -> float | None:
    """a in measure = a * ||h||^2, or None when the goodness has no closed-form gradient here."""
    if layer.goodness_fn.measure is goodness_sum_squares:
        return 1.0
    if layer.goodness_fn.measure is goodness_mean_squares:
        return 1.0 / layer.out_features
    return None


def _sgd_in_place(optimizer: torch.optim.Optimizer) -> bool:
    """True when ``optimizer`` is plain torch SGD whose step we can fold into the gradient matmul."""
    if type(optimizer) is not torch.optim.SGD or len(optimizer.param_groups) != 1:
        return False
    group = optimizer.param_groups[0]
    return group["dampening"] == 0 and not group["nesterov"] and not group["maximize"]


def fused_supported(layer: FFLinear, amp: str = "none") -> bool:
    """Whether ``fused_step`` computes exactly this layer's gradient."""
    return (
        type(layer) is FFLinear
        and layer.activation in FUSED_ACTIVATIONS
        and _goodness_scale(layer) is not None
        and amp in ("none", *_LOW)
    )


Accumulate = Callable[..., None]  # accumulate(target, beta, alpha=1.0): target = beta * target + alpha * grad


def _sgd_step(optimizer: torch.optim.Optimizer, updates: list[tuple[torch.Tensor, Accumulate]]) -> None:
    """torch.optim.SGD's update (dampening 0, no Nesterov) of each (param, accumulate) pair, the
    gradient added by ``accumulate`` straight into the momentum buffer (or the parameter)."""
    group = optimizer.param_groups[0]
    lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
    params = [param for param, _ in updates]
    if momentum == 0:
        for param, accumulate in updates:
            if weight_decay:
                param.mul_(1.0 - lr * weight_decay)
            accumulate(param, 1.0, alpha=-lr)  # param -= lr * grad, one matmul into the parameter
        return
    buffers = []
    for param, accumulate in updates:
        state = optimizer.state[param]
        buf = state.get("momentum_buffer")
        if buf is None:  # torch's first step: buf = grad + wd * w, i.e. momentum * 0 + ...
            buf = state["momentum_buffer"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            accumulate(buf, 0.0)
        else:
            accumulate(buf, momentum)  # buf = momentum * buf + grad
        buffers.append(buf)
    if _FUSED_SGD:
        # One pass for "buf += wd * w; w -= lr * buf": torch's fused SGD kernel in its first-step
        # form (buf = grad + wd * w) with the buffer as its own gradient. Bit-identical to two passes.
        torch._fused_sgd_(params, buffers, buffers, weight_decay=weight_decay, momentum=momentum, lr=lr,
                          dampening=0.0, nesterov=False, maximize=False, is_first_step=True)
        return
    for param, buf in zip(params, buffers):
        if weight_decay:
            buf.add_(param, alpha=weight_decay)
        param.add_(buf, alpha=-lr)


_FUSED_SGD = hasattr(torch, "_fused_sgd_")


_ONEDNN: bool | None = None


def _onednn_linear_available(x: torch.Tensor) -> bool:
    """Whether oneDNN's fused linear (``torch.ops.mkldnn._linear_pointwise``) serves this fp32 CPU tensor:
    present in this torch build, enabled (``torch.backends.mkldnn.enabled``), and right on a probe."""
    global _ONEDNN
    if x.device.type != "cpu" or x.dtype != torch.float32 or not torch.backends.mkldnn.enabled:
        return False
    if _ONEDNN is None:
        try:
            # fixed values: the probe must not draw from the global RNG
            probe = torch.linspace(-1.0, 1.0, 35).view(5, 7)
            w, b = torch.linspace(1.0, -0.5, 21).view(3, 7), torch.tensor([0.1, -0.2, 0.3])
            out = torch.ops.mkldnn._linear_pointwise(probe, w, b, "relu", [], "")
            _ONEDNN = bool(torch.allclose(out, torch.relu(probe @ w.t() + b), atol=1e-4))
        except (AttributeError, RuntimeError, NotImplementedError):  # op absent or unsupported in this build
            _ONEDNN = False  # every fused step then takes the torch.mm forward
    return _ONEDNN


def takes_normalized_input(layer: FFLinear, amp: str, device: torch.device) -> bool:
    """Whether ``fused_step`` multiplies this layer's input rows by their scale before the matmul
    (the oneDNN path), so the layer below can hand them over already scaled (``normalize_output``).
    Not the shared first layer, which gets ``LabeledRows``: the caller rules that out."""
    return fused_supported(layer, amp) and amp == "none" and _onednn_linear_available(torch.empty(0, device=device))


@functools.lru_cache(maxsize=64)
def _ones(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A cached (n,) vector of ones: dL/db = upstream^T 1 when the rows carry no scale."""
    return torch.ones(n, dtype=dtype, device=device)


def _mm(a: torch.Tensor, b: torch.Tensor, low: torch.dtype | None) -> torch.Tensor:
    """a @ b in fp32, or in ``low`` precision returned as fp32 (autocast's arithmetic)."""
    return a @ b if low is None else (a.to(low) @ b.to(low)).float()


def _linear(x: torch.Tensor, w: torch.Tensor, low: torch.dtype | None = None) -> torch.Tensor:
    """x @ w^T: oneDNN's linear for fp32 CPU rows where it serves them (~10-25 % faster than torch.mm
    on the step's shapes), else ``_mm``."""
    if low is None and _onednn_linear_available(x):
        return torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
    return _mm(x, w.t(), low)


def _accumulate_low(t: torch.Tensor, a: torch.Tensor, b: torch.Tensor, low: torch.dtype, beta: float,
                    alpha: float) -> None:
    """t = beta * t + alpha * (a @ b), the product in ``low`` precision (autocast's arithmetic) and
    read into t's fp32 without an fp32 copy of it."""
    grad = a.to(low) @ b.to(low)
    if beta == 0.0:
        t.copy_(grad)
        if alpha != 1.0:
            t.mul_(alpha)
    elif beta == 1.0:
        t.add_(grad, alpha=alpha)
    elif alpha == 1.0:
        torch.add(grad, t, alpha=beta, out=t)  # grad + beta * t in one pass
    else:
        t.mul_(beta).add_(grad, alpha=alpha)



@torch.no_grad()
def fused_step(layer: FFLinear, optimizer: torch.optim.Optimizer, z: torch.Tensor | LabeledRows, n_pos: int,
               n_train: int, amp: str = "none", sumsq: torch.Tensor | None = None,
               normalized: torch.Tensor | None = None, normalize_output: str | None = None) -> StepResult:
    """One local step of ``layer`` on detached input ``z`` (rows, D): rows[:n_pos] positive,
    rows[n_pos:n_train] negative, the rest (neutral readout rows) forward only. ``sumsq`` (rows,)
    are z's row sums of squares when the caller has them.

    ``normalized``: z times ``scale_from_sumsq(sumsq, D, layer.norm)``, when the layer below made
    it (see ``normalize_output``); the step then reads only these rows (z may be them), and the
    oneDNN path skips that pass. ``normalize_output``: the
    norm of the layer that reads h: once h's own work is done, the step scales it in place by that
    layer's input scale, while it is still in cache, and returns it as ``StepResult.normalized``
    (and ``.h``): the same arithmetic the layer above would do, so the same bits, and no extra
    (rows, H) tensor."""
    weight, bias, low = layer.weight, layer.bias, _LOW.get(amp)
    shared = isinstance(z, LabeledRows)
    if shared:
        base, labels = z.base, z.labels
        batch, k, groups, strength = base.shape[0], z.num_classes, z.groups, z.strength
        if n_pos != batch or n_train != 2 * batch:
            raise ValueError(f"shared first-layer rows need B positives and B negatives, got {n_pos}, {n_train} of B={batch}")
        # A row's label code is one column of the table: strength * e_label, or strength / K everywhere.
        column = torch.where(labels < 0, k, labels)  # (G*B,) index into the K + 1 codes
        code_sumsq = torch.where(labels < 0, strength**2 / k, strength**2).to(base.dtype)
        sumsq = code_sumsq.view(groups, batch).add_(torch.linalg.vector_norm(base, dim=1).square_()).view(-1)
    onednn = not shared and low is None and _onednn_linear_available(z)
    if normalized is not None:  # the layer below scaled the rows already: z's own values are not needed
        z, scale = normalized, None
    else:
        if sumsq is None:
            sumsq = torch.linalg.vector_norm(z, dim=1).square_()
        scale = scale_from_sumsq(sumsq, layer.in_features, layer.norm)  # (rows, 1)
    # ---- forward: h = relu(scale * (x W^T) + b)
    if onednn:
        # oneDNN's fp32 GEMM with bias and ReLU fused: ~10 % faster than torch.mm (MKL) on these
        # shapes (bench/onednn_linear.py); it needs normalised rows, so the scale goes on the input.
        if scale is not None:
            z = z * scale
        h = torch.ops.mkldnn._linear_pointwise(z, weight, bias, "relu", [], "")
        scale = None  # z is normalised now: dL/dW = (dL/dpre)^T z
    else:
        if shared:
            # (G*B, H) label columns, gathered: BLAS is slow on (rows, 10) x (10, H) shapes
            label_w = weight[:, :k].t()  # (K, H)
            table = torch.cat([label_w * strength, label_w.mean(dim=0, keepdim=True) * strength])  # (K + 1, H)
            pre = table.index_select(0, column)
            pre.view(groups, batch, -1).add_(_linear(base, weight, low))  # + the shared image part
        else:
            pre = _mm(z, weight.t(), low)
        if scale is None:  # scaled rows (oneDNN switched off since the layer below scaled them)
            h = pre.add_(bias) if bias is not None else pre
        else:
            h = torch.addcmul(bias, pre, scale, out=pre) if bias is not None else pre.mul_(scale)
        h.relu_()
    out_sumsq = torch.linalg.vector_norm(h, dim=1).square_()
    # ---- loss on the goodness logits, its gradient in closed form where the loss has one
    a, sign = _goodness_scale(layer), layer.goodness_fn.sign
    measure = out_sumsq[:n_train] * a if a != 1.0 else out_sumsq[:n_train]
    logits = (measure - layer.threshold).mul_(sign) if sign != 1.0 else measure - layer.threshold
    loss, dlogits = loss_and_grad(layer.loss_fn, logits, n_pos)
    # dL/dpre_r = 2 sign a dL/dl_r h_r; carry the input scale s_r too: dL/dW = (s dL/dpre)^T x
    h_train = h[:n_train]
    coef = dlogits.mul_(2.0 * sign * a).unsqueeze(1)
    upstream = h_train * (coef if scale is None else coef * scale[:n_train])
    if layer.peer_norm > 0.0:
        running = 0.9 * layer.running_mean + 0.1 * h[:n_pos].mean(dim=0)
        deviation = running - running.mean()
        loss = loss + layer.peer_norm * deviation.square().mean()
        layer.running_mean.copy_(running)
        # d/dh_rj of peer * mean_j (mean(r) - r_j)^2 for positive rows: (2 / H)(r_j - mean r) * 0.1 / n_pos
        peer = deviation.mul_(layer.peer_norm * 0.2 / (layer.out_features * n_pos))
        row_scale = scale[:n_pos, 0] if scale is not None else h.new_ones(n_pos)
        if layer.activation == "relu":  # the gradient stops at units that are off
            upstream[:n_pos].addcmul_((h[:n_pos] > 0).to(h.dtype).mul_(row_scale.unsqueeze(1)), peer)
        else:  # relu_full_grad: it passes through them
            upstream[:n_pos].addr_(row_scale, peer)
    h_normalized = None
    if normalize_output is not None:  # the layer above's input, while h is in cache; h itself is done
        h_normalized = h.mul_(scale_from_sumsq(out_sumsq, h.shape[1], normalize_output))
    # ---- weight gradient dL/dW = upstream^T x, written where the optimizer wants it
    if shared:
        image_part = upstream[:batch] + upstream[batch:]  # positives and negatives share their images
        train_labels = labels[:n_train]  # all one-hot (neutral rows are forward-only)

        def accumulate_w(t: torch.Tensor, beta: float, alpha: float = 1.0) -> None:
            # (K, H): each training row adds strength * upstream_r to its label's column
            label_grad = upstream.new_zeros(k, upstream.shape[1]).index_add_(0, train_labels, upstream)
            if low is None:
                t.addmm_(image_part.t(), base, beta=beta, alpha=alpha)
            else:
                _accumulate_low(t, image_part.t(), base, low, beta, alpha)
            t[:, :k].add_(label_grad.t(), alpha=alpha * strength)
    else:
        x_train = z[:n_train]

        def accumulate_w(t: torch.Tensor, beta: float, alpha: float = 1.0) -> None:
            if low is None:
                t.addmm_(upstream.t(), x_train, beta=beta, alpha=alpha)
            else:
                _accumulate_low(t, upstream.t(), x_train, low, beta, alpha)

    # dL/db = sum_r dL/dpre_r = upstream^T (1 / s)
    if bias is None:
        inv_scale = None
    elif scale is not None:
        inv_scale = scale[:n_train, 0].reciprocal()
    else:
        inv_scale = _ones(n_train, h.dtype, h.device)

    def accumulate_b(t: torch.Tensor, beta: float, alpha: float = 1.0) -> None:
        t.addmv_(upstream.t(), inv_scale, beta=beta, alpha=alpha)

    updates = [(weight, accumulate_w)] + ([(bias, accumulate_b)] if bias is not None else [])
    _optimize(optimizer, updates)
    if 2 * n_pos == n_train:  # the usual batch: both sums in one reduction, all three in one tensor
        packed = torch.cat([loss.view(1), measure.view(2, n_pos).sum(dim=1)])
        return StepResult(h, loss, packed[1], packed[2], out_sumsq, h_normalized, packed)
    return StepResult(h, loss, measure[:n_pos].sum(), measure[n_pos:].sum(), out_sumsq, h_normalized)


def _optimize(optimizer: torch.optim.Optimizer, updates: list[tuple[torch.Tensor, Accumulate]]) -> None:
    """Plain SGD: the gradient goes into the momentum buffer. Any other optimizer: ``.grad`` and its own step."""
    if _sgd_in_place(optimizer):
        _sgd_step(optimizer, updates)
        return
    for param, accumulate in updates:
        # beta = 0: addmm_/addmv_/copy_ overwrite the target without reading it, so no zero fill
        param.grad = torch.empty_like(param)
        accumulate(param.grad, 0.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@torch.no_grad()
def readout_step(readout: torch.nn.Linear, optimizer: torch.optim.Optimizer, features: torch.Tensor,
                 y: torch.Tensor) -> torch.Tensor:
    """One step of the bias-free linear softmax readout on detached features (B, F), in closed form:
    dCE/dlogits = (softmax - onehot) / B. Returns the detached cross-entropy."""
    weight = readout.weight
    logits = _linear(features, weight)
    log_p = torch.log_softmax(logits, dim=1)
    rows = torch.arange(y.shape[0], device=y.device)
    loss = -log_p[rows, y].mean()
    dlogits = log_p.exp_()
    dlogits[rows, y] -= 1.0
    dlogits.div_(y.shape[0])

    def accumulate(t: torch.Tensor, beta: float, alpha: float = 1.0) -> None:
        t.addmm_(dlogits.t(), features, beta=beta, alpha=alpha)

    _optimize(optimizer, [(weight, accumulate)])
    return loss


def autograd_step(layer: FFLinear, optimizer: torch.optim.Optimizer, z: torch.Tensor | LabeledRows, n_pos: int,
                  n_train: int, autocast_context) -> StepResult:
    """The reference step for any layer: graph, backward, optimizer step, gradients freed."""
    if isinstance(z, LabeledRows):
        z = z.materialize()
    with autocast_context:
        h = layer.forward_train(z.detach(), n_train)
        loss, g_pos, g_neg = layer.local_loss(h[:n_train], n_pos)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return StepResult(h.detach(), loss.detach(), g_pos, g_neg)
