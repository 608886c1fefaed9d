"""Does this checkout train the same weights as another commit? Six dense-MLP configurations, bit for bit.

Repeatable check (used when the trainer became the model protocol's loop). Each side trains, in its
own process, sklearn digits for 3 epochs (2 layers 40 and 30, batch 64, seed 5, CPU) under six
configurations (the default fused step, autograd, hard negatives, the greedy schedule, noise
negatives without labels, SGD with peer normalisation and ReLU with full gradient) and prints the
sha256 of every weight (engine/checkpoint.py's tensor_digest). The readout's learning rate is kept
constant on this side, as every earlier commit trained it (``readout_cooldown=False``).

    git worktree add /tmp/base <commit>
    python bench/same_weights.py --base-dir /tmp/base
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUN = r"""
import dataclasses, json, torch
torch.set_num_threads(1)
from ff_mcp.data import load_dataset
from ff_mcp.engine import NetworkConfig, OptimizerConfig, Trainer, TrainConfig, build_network
from ff_mcp.engine.checkpoint import tensor_digest
fields = {f.name for f in dataclasses.fields(TrainConfig)}
data = load_dataset("digits")
cases = {
    "default": ({}, {}),
    "autograd": ({}, {"step": "autograd"} if "step" in fields else {"fused_step": False}),
    "hard": ({}, {"negatives": "hard"}),
    "greedy": ({}, {"schedule": "greedy"}),
    "noise": ({"label_mode": "none"}, {"negatives": "noise"}),
    "sgd_peer": ({"peer_norm": 0.03, "activation": "relu_full_grad"}, {"optimizer": OptimizerConfig("sgd", 1e-2, 0.9, 3e-4)}),
}
same_lr = {"readout_cooldown": False} if "readout_cooldown" in fields else {}
out = {}
for name, (net_kw, train_kw) in cases.items():
    net_kw = dict(net_kw)
    config = NetworkConfig(in_features=64, num_classes=10, hidden=(40, 30), label_mode=net_kw.pop("label_mode", "concat"),
                           image_shape=(8, 8), **net_kw)
    net = build_network(config, seed=5)
    result = Trainer(net, TrainConfig(epochs=3, batch_size=64, seed=5, device="cpu", **same_lr, **train_kw)).fit(
        data.x_train, data.y_train, data.x_test, data.y_test)
    out[name] = [tensor_digest(net.state_dict()), result.final.get("loss")]
print(json.dumps(out))
"""


def digests(code_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code_dir)}
    proc = subprocess.run([sys.executable, "-c", RUN], env=env, cwd=code_dir, capture_output=True, text=True,
                          timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{code_dir} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", required=True, help="a checkout (git worktree) of the commit to compare with")
    args = parser.parse_args()
    this, base = digests(ROOT), digests(Path(args.base_dir).resolve())
    same = {name: this[name][0] == base[name][0] for name in this}
    print(json.dumps({"same_weights": same, "this": this, "base": base}, indent=1))
    raise SystemExit(0 if all(same.values()) else 1)


if __name__ == "__main__":
    main()
