"""The fused train step compiled to one C++ function (``csrc/native_step.cpp``), on CPU.

Opt-in (``TrainConfig.native_step``, ``--native-step``): the first use compiles the step with the
machine's C++ compiler through ``torch.utils.cpp_extension`` (g++ and ninja, ~30 s; the build is
cached under ``TORCH_EXTENSIONS_DIR``, keyed by the source and the CPU). It runs the same arithmetic
as ``engine/fused.py`` with the same kernels for the matmuls and the SGD update, and replaces the
~180 small torch ops a step issues from Python with two fused passes per layer.

It covers the default supervised configuration, in fp32 or with bf16 matmuls (``amp="bf16"``,
the Python step's arithmetic for it): every layer fused (ReLU or ReLU with full gradient, sum or
mean of squares, the softplus loss, with or without peer normalisation), the first layer sharing
W.x between label variants (wrong-label or hard negatives), every later layer normalising its
input as the network does, oneDNN available, plain SGD with momentum for every layer and the
readout, the simultaneous schedule. ``native_problems`` names anything else; the session
refuses such a configuration with a ValueError rather than silently running Python. A mini-batch
whose SGD momentum buffers do not exist yet (the very first) runs the Python step, which creates
them as torch.optim.SGD would.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import threading
from pathlib import Path
from typing import Any

import torch

from .fused import _goodness_scale, _onednn_linear_available, _sgd_in_place
from .labels import LabeledRows
from .losses import softplus_loss

SOURCE = Path(__file__).with_name("csrc") / "native_step.cpp"
_NORMS = {"rms": 0, "l2": 1, "none": 2}
_LOCK = threading.Lock()
_MODULE: Any = None


def _cpu_id() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_name() -> str:
    """The extension's name: the source and the CPU it is built for (it is compiled with -march=native)."""
    digest = hashlib.sha1(SOURCE.read_bytes() + _cpu_id().encode()).hexdigest()[:12]
    return f"ff_mcp_native_step_{digest}"


def _ninja_on_path() -> None:
    """torch's builder runs ``ninja`` from PATH; the pip package's binary may sit in a virtual
    environment that is not on it (``.venv/bin/pytest`` run directly)."""
    if shutil.which("ninja") is None:
        try:
            import ninja
        except ImportError:
            return
        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")


def missing_tools() -> list[str]:
    """The build tools not on PATH (empty when the step can be compiled)."""
    _ninja_on_path()
    missing = [] if shutil.which("g++") or shutil.which("c++") else ["a C++ compiler (Debian: apt-get install g++)"]
    try:
        from torch.utils.cpp_extension import is_ninja_available

        if not is_ninja_available():
            missing.append("ninja (pip install ninja)")
    except ImportError:  # pragma: no cover - torch always ships cpp_extension
        missing.append("torch.utils.cpp_extension")
    return missing


def load() -> Any:
    """The compiled module, built on first use. RuntimeError names what is missing or what failed."""
    global _MODULE
    with _LOCK:
        if _MODULE is None:
            missing = missing_tools()
            if missing:
                raise RuntimeError("the compiled step needs " + " and ".join(missing))
            from torch.utils.cpp_extension import load as load_extension

            _MODULE = load_extension(build_name(), sources=[str(SOURCE)], extra_cflags=["-O3", "-march=native"],
                                     verbose=False)
        return _MODULE


def native_problems(session) -> list[str]:
    """What in this session's configuration the native step does not cover (empty: it covers all)."""
    cfg, net = session.config, session.network
    problems = []
    if session.device.type != "cpu":
        problems.append(f"a CPU device (got {session.device.type})")
    if cfg.amp not in ("none", "bf16"):
        problems.append(f"amp 'none' or 'bf16' (got {cfg.amp!r})")
    if cfg.schedule != "simultaneous":
        problems.append(f"the simultaneous schedule (got {cfg.schedule!r})")
    if not all(session.fused_layers):
        problems.append("every layer on the fused step (ReLU or relu_full_grad; sum or mean of squares)")
    elif not session.shares_first_layer:
        problems.append("label-only negatives (wrong-label or hard) and a label embedding, so the first layer shares W.x")
    if not _onednn_linear_available(torch.zeros(1)) or (cfg.amp == "none" and not all(session.normalized_input[1:])):
        problems.append("oneDNN's linear (torch.backends.mkldnn)")
    for i, layer in enumerate(net.layers):
        if layer.loss_fn is not softplus_loss:
            problems.append(f"the softplus loss (layer {i} has another)")
        if layer.norm not in _NORMS:
            problems.append(f"a norm in {sorted(_NORMS)} (layer {i} has {layer.norm!r})")
        elif i > 0 and layer.norm != net.config.norm:
            problems.append(f"every layer after the first normalising as the network does ({net.config.norm!r}; "
                            f"layer {i} has {layer.norm!r})")
    optimizers = list(session.optimizers) + ([session.readout_optimizer] if session.readout_optimizer else [])
    if not all(_sgd_in_place(opt) and opt.param_groups[0]["momentum"] > 0 for opt in optimizers):
        problems.append("plain SGD with momentum > 0 for every layer and the readout")
    return sorted(set(problems), key=problems.index)


class NativeStep:
    """Runs ``DenseSession.train_step``'s full-network mini-batch through the compiled step."""

    def __init__(self, session) -> None:
        self.session = session
        self.module = load()
        net = session.network
        self.layers = list(net.layers)
        self.params = [(layer.weight, layer.bias) for layer in self.layers]
        self.goodness_a = [float(_goodness_scale(layer)) for layer in self.layers]
        self.goodness_sign = [float(layer.goodness_fn.sign) for layer in self.layers]
        self.peer_norm = [float(layer.peer_norm) for layer in self.layers]
        self.running_means = [layer.running_mean if layer.peer_norm > 0.0 else None for layer in self.layers]
        self.full_grad = [layer.activation == "relu_full_grad" for layer in self.layers]
        self.first_norm = _NORMS[self.layers[0].norm]
        self.norm = _NORMS[net.config.norm]
        self.first_scored = net.first_scored_layer
        self.bf16 = session.config.amp == "bf16"
        self.steps = 0

    def _momentum_buffers(self) -> tuple[list, list, Any] | None:
        """Every momentum buffer (weights, biases, readout), or None until the first SGD step made them.
        Looked up each step, not kept: loading an optimizer state replaces the tensors."""
        try:
            buf_w = [opt.state[w]["momentum_buffer"] for opt, (w, _) in zip(self.session.optimizers, self.params)]
            buf_b = [opt.state[b]["momentum_buffer"] if b is not None else None
                     for opt, (_, b) in zip(self.session.optimizers, self.params)]
            readout = None
            if self.session.readout_optimizer is not None:
                readout = self.session.readout_optimizer.state[self.session.network.readout.weight]["momentum_buffer"]
        except KeyError:
            return None
        if any(b is None for b in buf_w) or (self.session.readout_optimizer is not None and readout is None):
            return None
        return buf_w, buf_b, readout

    def step(self, z: LabeledRows, y: torch.Tensor, with_readout: bool, stats: torch.Tensor | None) -> bool:
        """One mini-batch; False (nothing done) when the Python step must run it instead."""
        buffers = self._momentum_buffers()
        if buffers is None or not isinstance(z, LabeledRows) or z.groups != (3 if with_readout else 2):
            return False
        buf_w, buf_b, readout_buf = buffers
        hp = [[g["lr"], g["momentum"], g["weight_decay"]] for g in (opt.param_groups[0] for opt in self.session.optimizers)]
        readout_w = self.session.network.readout.weight if with_readout else None
        readout_hp = [0.0, 0.0, 0.0]
        if with_readout:
            g = self.session.readout_optimizer.param_groups[0]
            readout_hp = [g["lr"], g["momentum"], g["weight_decay"]]
        if stats is None:
            stats = torch.zeros(len(self.layers) + 1, 3)
        self.module.train_step(
            z.base.contiguous(), z.labels.contiguous(), z.num_classes, float(z.strength),
            [w.data for w, _ in self.params], [b.data if b is not None else None for _, b in self.params],
            buf_w, buf_b, self.goodness_a, self.goodness_sign, [float(layer.threshold) for layer in self.layers],
            self.peer_norm, self.running_means, self.full_grad, hp, self.first_norm, self.norm, self.first_scored,
            readout_w.data if readout_w is not None else None, readout_buf if with_readout else None,
            y.contiguous(), readout_hp, stats, self.bf16)
        self.steps += 1
        return True
