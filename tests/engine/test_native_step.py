"""The compiled step (engine/native.py, csrc/native_step.cpp) must train the same weights as the
Python fused step, and refuse what it does not cover with an error that says what it needs.

The first test to run compiles the step (~30 s, cached afterwards). ``make test`` installs g++ and
ninja; on a machine without them this module is skipped and says why."""

import dataclasses

import pytest
import torch

from ff_mcp.engine import NetworkConfig, OptimizerConfig, Trainer, TrainConfig, build_network
from ff_mcp.engine import native
from training_checks import assert_same_training

pytestmark = pytest.mark.skipif(bool(native.missing_tools()),
                                reason=f"no C++ toolchain: {native.missing_tools()}")

# lr 0.01: at 0.05 this toy problem is chaotic (1e-7 apart after one epoch, 3e-5 after two)
SGD = {"name": "sgd", "lr": 0.01, "weight_decay": 3e-4}


def train(native_step, net_kw=None, opt_kw=None, train_kw=None, epochs=3, batch_size=16):
    torch.manual_seed(0)
    x, y = torch.rand(80, 40), torch.randint(0, 10, (80,))
    net = build_network(NetworkConfig(**{"in_features": 40, "num_classes": 10, "hidden": (32, 24, 16), **(net_kw or {})}),
                        seed=1)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, device="cpu", step="native" if native_step else "auto", train_eval_rows=0,
                         optimizer=OptimizerConfig(**(opt_kw or SGD)), **(train_kw or {}))
    result = Trainer(net, config).fit(x, y)
    return net, result


CASES = {
    "sgd momentum weight decay, readout": ({}, SGD, {}),
    "relu with full gradient, label strength 3": ({"activation": "relu_full_grad", "label_strength": 3.0}, SGD, {}),
    "mean squares, l2 norm": ({"goodness": "mean_squares", "norm": "l2"}, SGD, {}),
    "neg sum of squares, no norm": ({"goodness": "neg_sum_squares", "norm": "none"}, SGD, {}),
    "no bias, concat labels": ({"bias": False, "label_mode": "concat"}, SGD, {}),
    "no readout": ({"readout": False}, SGD, {}),
    "first layer scored": ({"skip_first_layer": False}, SGD, {}),
    "one layer": ({"hidden": (32,)}, SGD, {}),
    "hard negatives": ({}, SGD, {"negatives": "hard"}),
    "readout lr and weight decay": ({}, SGD, {"readout_lr": 0.02, "readout_weight_decay": 3e-3}),
    "peer norm, relu with full gradient (loeweX)": ({"peer_norm": 0.03, "activation": "relu_full_grad"}, SGD,
                                                    {"readout_weight_decay": 3e-3}),
    "peer norm, relu": ({"peer_norm": 0.03}, SGD, {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_native_step_trains_the_same_weights_as_the_python_step(case):
    net_kw, opt_kw, train_kw = CASES[case]
    a, b = train(True, net_kw, opt_kw, train_kw), train(False, net_kw, opt_kw, train_kw)
    assert_same_training(a, b, atol=1e-5)
    # every full mini-batch but the very first (which creates SGD's momentum buffers) ran compiled;
    # 80 rows in batches of 16: 5 a epoch, 3 epochs, the cooldown changing lr in the last
    assert a[1].native_steps == 3 * 5 - 1
    assert b[1].native_steps is None


def test_native_step_handles_a_short_last_batch_and_keeps_sgd_state():
    a, b = train(True, batch_size=24), train(False, batch_size=24)  # 80 = 3 x 24 + 8
    assert_same_training(a, b, atol=1e-5)


def test_native_step_result_reports_its_steps_in_the_summary():
    from ff_mcp.data import Dataset
    from ff_mcp.training import TrainOptions, train_model

    torch.manual_seed(0)
    x, y = torch.rand(60, 30), torch.randint(0, 3, (60,))
    data = Dataset("toy", x, y, x[:20], y[:20], 3, None, "test")
    options = TrainOptions(hidden=(16, 16), epochs=2, batch_size=20, optimizer="sgd", lr=0.05, device="cpu",
                           step="native")
    summary = train_model(data, options).summary()
    assert summary["native_steps"] == 2 * 3 - 1


BF16_CASES = {
    "bf16, readout": ({}, {}),
    "bf16, peer norm, relu with full gradient, l2 norm": ({"peer_norm": 0.03, "activation": "relu_full_grad",
                                                           "norm": "l2"}, {}),
    "bf16, no bias, no readout": ({"bias": False, "readout": False}, {}),
}


@pytest.mark.parametrize("case", list(BF16_CASES))
def test_native_step_with_bf16_matmuls_trains_the_same_weights_as_the_python_step(case):
    """bf16 rounds each matmul's inputs, so a 1e-7 difference upstream can move a product by a
    bf16 step: one epoch, and bounds looser than fp32's (measured: up to 1.1e-4 apart), still below
    what running the matmuls in fp32 instead would give (1.4e-3 here)."""
    net_kw, train_kw = BF16_CASES[case]
    a, b = (train(native_step, net_kw, SGD, {"amp": "bf16", **train_kw}, epochs=1) for native_step in (True, False))
    assert_same_training(a, b, atol=3e-4, rel=1e-3)
    assert a[1].native_steps == 4


@pytest.mark.parametrize("change, needs", [
    ({"optimizer": OptimizerConfig("adam", 1e-3)}, "plain SGD with momentum > 0"),
    ({"optimizer": OptimizerConfig("sgd", 0.05, momentum=0.0)}, "plain SGD with momentum > 0"),
    ({"amp": "fp16"}, "amp 'none' or 'bf16'"),
    ({"schedule": "greedy"}, "the simultaneous schedule"),
    ({"negatives": "noise"}, "label-only negatives"),
    ({"activation": "gelu"}, "every layer on the fused step"),
])
def test_native_step_refuses_what_it_does_not_cover(change, needs):
    change = dict(change)
    net_kw = {"activation": change.pop("activation")} if "activation" in change else {}
    net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(16, 16), **net_kw), seed=1)
    config = dataclasses.replace(TrainConfig(device="cpu", optimizer=OptimizerConfig("sgd", 0.05), step="native"),
                                 **change)
    with pytest.raises(ValueError, match="step 'native' needs") as info:
        Trainer(net, config)
    assert needs in str(info.value)


def test_native_step_refuses_a_layer_normalising_otherwise():
    net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(16, 16)), seed=1)
    net.layers[1].norm = "l2"  # the network (and the readout) normalise with rms
    with pytest.raises(ValueError, match="layer 1 has 'l2'"):
        Trainer(net, TrainConfig(device="cpu", optimizer=OptimizerConfig("sgd", 0.05), step="native"))


def test_native_step_refuses_symba():
    net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(16, 16), loss="symba"), seed=1)
    with pytest.raises(ValueError, match="the softplus loss"):
        Trainer(net, TrainConfig(device="cpu", optimizer=OptimizerConfig("sgd", 0.05), step="native"))


def test_native_step_without_a_compiler_says_what_to_install(monkeypatch):
    monkeypatch.setattr(native, "_MODULE", None)
    monkeypatch.setattr(native, "missing_tools", lambda: ["a C++ compiler (Debian: apt-get install g++)"])
    net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(16, 16)), seed=1)
    with pytest.raises(ValueError, match=r"step 'native': the compiled step needs a C\+\+ compiler"):
        Trainer(net, TrainConfig(device="cpu", optimizer=OptimizerConfig("sgd", 0.05), step="native"))


def test_build_name_follows_the_source_and_the_cpu(monkeypatch):
    name = native.build_name()
    assert name.startswith("ff_mcp_native_step_")
    monkeypatch.setattr(native, "_cpu_id", lambda: "another cpu")
    assert native.build_name() != name


def test_native_step_checks_labels_before_reading_the_label_table():
    """A label outside [0, K) must not read past the table: fit refuses it, and the compiled step
    checks it again for callers of train_step."""
    net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(16, 16)), seed=1)
    trainer = Trainer(net, TrainConfig(device="cpu", optimizer=OptimizerConfig("sgd", 0.05), step="native",
                                       train_eval_rows=0))
    x, y = torch.rand(32, 40), torch.randint(0, 10, (32,))
    with pytest.raises(ValueError, match=r"y_train labels must be in \[0, 10\), got 0\.\.10"):
        trainer.fit(x, torch.cat([y[:-1], torch.tensor([10])]))
    gen = torch.Generator().manual_seed(0)
    index = torch.arange(16)
    trainer.session.train_step(x[:16], y[:16], index, gen)  # the Python step creates the momentum buffers
    trainer.session.train_step(x[:16], y[:16], index, gen)
    assert trainer.session._native.steps == 1
    bad = y[:16].clone()
    bad[3] = 12
    with pytest.raises(RuntimeError, match="label 12 of row 3 is outside"):
        trainer.session.train_step(x[:16], bad, index, gen)


def test_cli_train_with_native_step_says_how_many_mini_batches_ran_compiled():
    import subprocess
    import sys

    args = [sys.executable, "-m", "ff_mcp", "train", "--dataset", "digits", "--hidden", "64,64", "--epochs", "2",
            "--batch-size", "100", "--optimizer", "sgd", "--lr", "0.01", "--device", "cpu", "--quiet"]
    proc = subprocess.run(args + ["--native-step"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # digits: 1,347 training rows in batches of 100, 14 a epoch; the first creates SGD's buffers
    assert "compiled steps    27 mini-batches (--native-step)" in proc.stdout
    refused = subprocess.run(args[:-7] + ["--native-step"], capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0
    assert "step 'native' needs plain SGD with momentum > 0" in refused.stderr
    assert "Traceback" not in refused.stderr
