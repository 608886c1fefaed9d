"""Determinism across fresh processes: the same seed gives bit-identical weights in two separate
Python processes, with layers 512 wide (so torch's blocked matmul paths run), for the autograd, the
fused and the compiled (native) step; and the weights did move."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ff_mcp.engine import native

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = r"""
import hashlib, json, sys
import torch
from ff_mcp.data import load_dataset
from ff_mcp.engine import NetworkConfig, OptimizerConfig, TrainConfig, Trainer, build_network

step = sys.argv[1]
data = load_dataset("digits")
net = build_network(NetworkConfig(in_features=64, num_classes=10, hidden=(512, 512), label_mode="concat"), seed=7)
start = {k: v.clone() for k, v in net.state_dict().items()}
config = TrainConfig(epochs=2, batch_size=64, seed=7, device="cpu", step=step, train_eval_rows=0,
                     optimizer=OptimizerConfig("sgd", 0.01, momentum=0.9))
Trainer(net, config).fit(data.x_train[:768], data.y_train[:768])
digest = hashlib.sha256()
moved = 0.0
for name, tensor in sorted(net.state_dict().items()):
    digest.update(name.encode() + tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    moved = max(moved, float((tensor.float() - start[name].float()).abs().max()))
print(json.dumps({"sha256": digest.hexdigest(), "moved": moved, "threads": torch.get_num_threads()}))
"""


def run(step: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, step], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("step", ["autograd", "fused", "native"])
def test_two_fresh_processes_train_bit_identical_512_wide_weights(step):
    if step == "native" and native.missing_tools():
        pytest.skip(f"no C++ toolchain: {native.missing_tools()}")
    first, second = run(step), run(step)
    assert first["moved"] > 1e-3, first  # training changed the weights
    assert first["sha256"] == second["sha256"], (first, second)
