"""Hinton's recurrent FF (engine/recurrent.py): the damped synchronous update and the prediction window
against a hand-run two-layer net, the batched all-label prediction, locality of the losses, option
refusals, determinism, checkpoints, the MCP tools, and a small real-data run above a floor."""

from __future__ import annotations

import math

import pytest
import torch

from ff_mcp.cli import main as cli_main
from ff_mcp.data import load_dataset
from ff_mcp.engine import OptimizerConfig, TrainConfig, Trainer, build_model, load_checkpoint
from ff_mcp.engine.losses import softplus_loss
from ff_mcp.engine.recurrent import RecurrentConfig, RecurrentNet


def tiny(window=(2, 3), damping=0.3, iterations=3) -> RecurrentNet:
    """3 inputs, hidden layers of 2 and 2 units, 2 classes; label vector of length 2."""
    net = RecurrentNet(RecurrentConfig(in_features=3, num_classes=2, hidden=(2, 2), iterations=iterations,
                                       damping=damping, window=window, label_length=2.0))
    with torch.no_grad():
        first, second = net.layers
        first.up.weight.copy_(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, -1.0]]))
        first.up.bias.copy_(torch.tensor([0.1, 0.2]))
        first.down.weight.copy_(torch.tensor([[0.5, -0.5], [1.0, 0.0]]))
        second.up.weight.copy_(torch.tensor([[1.0, 1.0], [-1.0, 2.0]]))
        second.up.bias.copy_(torch.tensor([0.0, -0.1]))
        second.down.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    return net


def rms(v: list[float]) -> list[float]:
    """v / sqrt(mean(v^2)) by hand."""
    scale = math.sqrt(sum(a * a for a in v) / len(v))
    return [a / scale for a in v]


def by_hand(x: list[float], label: int, iterations: int, damping: float) -> list[list[list[float]]]:
    """The two hidden layers' states after the bottom-up pass and each iteration, in plain Python."""
    relu = lambda v: [max(0.0, a) for a in v]  # noqa: E731
    mat = lambda w, v: [sum(wi * vi for wi, vi in zip(row, v)) for row in w]  # noqa: E731
    add = lambda *vs: [sum(t) for t in zip(*vs)]  # noqa: E731
    w1u, b1, w1d = [[1, 0, 1], [0, 1, -1]], [0.1, 0.2], [[0.5, -0.5], [1, 0]]
    w2u, b2, w2d = [[1, 1], [-1, 2]], [0.0, -0.1], [[1, 0], [0, 1]]
    top = [2.0 if k == label else 0.0 for k in range(2)]  # one-hot of length 2
    x_n = rms(x)
    h1 = relu(add(mat(w1u, x_n), b1))
    h2 = relu(add(mat(w2u, rms(h1)), b2))  # bottom-up: nothing from above
    trace = [[h1, h2]]
    for _ in range(iterations):  # synchronous: both layers from the previous states
        new1 = relu(add(mat(w1u, x_n), b1, mat(w1d, rms(h2))))
        new2 = relu(add(mat(w2u, rms(h1)), b2, mat(w2d, top)))
        h1 = [damping * o + (1 - damping) * n for o, n in zip(h1, new1)]
        h2 = [damping * o + (1 - damping) * n for o, n in zip(h2, new2)]
        trace.append([h1, h2])
    return trace


def test_the_damped_synchronous_update_matches_a_hand_run_two_layer_net():
    net = tiny()
    x = torch.tensor([[1.0, 2.0, 0.5]])
    for label in (0, 1):
        expected = by_hand([1.0, 2.0, 0.5], label, 3, 0.3)
        trace = net.run(x, torch.tensor([label]), 3)
        for t, (states, hand) in enumerate(zip(trace, expected)):
            for layer in range(2):
                assert states[layer][0].tolist() == pytest.approx(hand[layer], abs=1e-5), (label, t, layer)
        # the window 2-3: each layer's goodness (sum of squares) averaged over iterations 2 and 3
        window = net.window_goodness(x, torch.tensor([label]))[0]
        for layer in range(2):
            hand = sum(sum(a * a for a in expected[t][layer]) for t in (2, 3)) / 2
            assert window[layer].item() == pytest.approx(hand, rel=1e-5)
    # damping 0 is the undamped update: the state is the computed one
    undamped = by_hand([1.0, 2.0, 0.5], 1, 1, 0.0)[1]
    assert tiny(damping=0.0).run(x, torch.tensor([1]), 1)[1][1][0].tolist() == pytest.approx(undamped[1], abs=1e-5)


def test_prediction_runs_every_label_in_one_batch_and_equals_one_run_per_label():
    torch.manual_seed(0)
    net = RecurrentNet(RecurrentConfig(in_features=20, num_classes=4, hidden=(16, 12), window=(3, 5)),
                       generator=torch.Generator().manual_seed(1))
    x = torch.rand(6, 20)
    batched = net.goodness_scores(x)
    one_by_one = torch.stack([net.window_goodness(x, torch.full((6,), k)).sum(dim=1) for k in range(4)], dim=1)
    assert batched.shape == (6, 4) and torch.allclose(batched, one_by_one, rtol=1e-5)
    assert torch.equal(net.predict(x), batched.argmax(dim=1))
    # the neutral label (every class alike) is what ff_goodness shows without labels
    neutral = net.layer_goodness(x)
    assert len(neutral) == 2 and neutral[0]["goodness"].shape == (6,)


def test_each_layers_loss_reaches_only_its_own_weights():
    net = RecurrentNet(RecurrentConfig(in_features=10, num_classes=3, hidden=(8, 8, 8), iterations=4, train_from=2),
                       generator=torch.Generator().manual_seed(2))
    x, y = torch.rand(5, 10), torch.tensor([0, 1, 2, 0, 1])
    y_neg = (y + 1) % 3
    for i in range(3):
        net.zero_grad(set_to_none=True)
        drive = net.input_drive(x)
        with torch.no_grad():
            states = net.bottom_up(drive.detach())
        losses, _ = net.local_losses(drive, states, y, y_neg)
        losses[i].backward()
        for j, layer in enumerate(net.layers):
            grads = [p.grad for p in layer.parameters()]
            if j == i:
                assert all(g is not None and bool(g.abs().sum() > 0) for g in grads), i
            else:
                assert all(g is None for g in grads), (i, j)


def test_the_loss_is_the_logistic_loss_of_goodness_minus_width_over_the_trained_iterations():
    net = tiny(iterations=3)
    net = RecurrentNet(RecurrentConfig(**{**net.config.to_dict(), "train_from": 2}))
    net.load_state_dict(tiny().state_dict())
    x, y, y_neg = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([1]), torch.tensor([0])
    drive = net.input_drive(x)
    losses, goodness = net.local_losses(drive, net.bottom_up(drive), y, y_neg)
    pos, neg = by_hand([1.0, 2.0, 0.5], 1, 3, 0.3), by_hand([1.0, 2.0, 0.5], 0, 3, 0.3)
    for layer in range(2):
        g = lambda trace, t: sum(a * a for a in trace[t][layer])  # noqa: E731
        hand = sum((math.log1p(math.exp(-(g(pos, t) - 2))) + math.log1p(math.exp(g(neg, t) - 2))) / 2
                   for t in (2, 3)) / 2
        assert losses[layer].item() == pytest.approx(hand, rel=1e-5)
        assert goodness[layer].tolist() == pytest.approx([(g(pos, 2) + g(pos, 3)) / 2, (g(neg, 2) + g(neg, 3)) / 2],
                                                         rel=1e-5)
    assert softplus_loss(torch.tensor([3.0]), torch.tensor([-1.0])).item() == pytest.approx(
        (math.log1p(math.exp(-3.0)) + math.log1p(math.exp(-1.0))) / 2)


@pytest.mark.parametrize(("option", "message"), [
    ("iterations=0", "iterations must be in [1, 64], got 0"),
    ("train_from=9", "train_from must be in [1, iterations=8], got 9"),
    ("damping=1", "damping must be in [0, 1), got 1.0"),
    ("window=6-2", "window must be iterations first-last with 1 <= first <= last <= 64, got 6-2"),
    ("window=three", "window must be iterations 'first-last' (e.g. 3-5), got 'three'"),
    ("window=-3", "window must be iterations 'first-last' (e.g. 3-5), got '-3'"),
    ("negatives=hybrid", "negatives must be one of ['hard', 'wrong_label'], got 'hybrid'"),
    ("label_length=-1", "label_length must be in [0, 10000] (0: auto), got -1.0"),
    ("colour=1", "unknown option 'colour' for variant 'recurrent'"),
])
def test_options_out_of_range_are_refused_naming_the_option(option, message, capsys):
    assert cli_main(["train", "--dataset", "digits", "--variant", "recurrent", "--hidden", "16,16", "--epochs", "1",
                     "--opt", option, "--quiet", "--device", "cpu"]) == 2
    assert message in capsys.readouterr().err


def test_the_trainers_negatives_flag_is_refused_in_favour_of_the_option(capsys):
    assert cli_main(["train", "--dataset", "digits", "--variant", "recurrent", "--hidden", "16,16", "--epochs", "1",
                     "--negatives", "hard", "--quiet", "--device", "cpu"]) == 2
    assert "negatives: variant 'recurrent' picks its negative labels with its option negatives" in (
        capsys.readouterr().err)


def test_recurrent_ff_learns_digits_and_reloads_from_its_checkpoint(tmp_path):
    data = load_dataset("digits")
    out = tmp_path / "recurrent.safetensors"
    assert cli_main(["train", "--dataset", "digits", "--variant", "recurrent", "--hidden", "96,96", "--epochs", "8",
                     "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    saved = load_checkpoint(out)
    final = saved.metrics["final"]
    assert saved.kind == "recurrent" and final["predict_method"] == "goodness"
    assert final["test_accuracy"] > 0.85 and final["test_accuracy_readout"] > 0.85  # chance is 0.10
    again = build_model(saved.model.config, seed=0)
    again.load_state_dict(saved.model.state_dict())
    with torch.no_grad():
        assert torch.equal(again.predict(data.x_test), saved.model.predict(data.x_test))
        first = saved.model.predict_scores(data.x_test[:20], "readout")
    assert torch.allclose(first.sum(dim=1), torch.ones(20))  # the one-pass softmax: probabilities


def test_the_same_seed_trains_the_same_weights_and_the_weights_move():
    data = load_dataset("digits")
    config = RecurrentConfig(in_features=64, num_classes=10, hidden=(24, 24), iterations=4)
    train = TrainConfig(epochs=2, batch_size=64, seed=3, device="cpu", optimizer=OptimizerConfig("adam", 1e-3))
    nets = [build_model(config, seed=3) for _ in range(2)]
    start = {k: v.clone() for k, v in nets[0].state_dict().items()}
    for net in nets:
        Trainer(net, train).fit(data.x_train[:512], data.y_train[:512])
    assert all(torch.equal(a, b) for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()))
    assert all(not torch.equal(start[k], v) for k, v in nets[0].state_dict().items())


def test_hard_negatives_follow_the_one_pass_softmax_and_never_the_true_label():
    net = RecurrentNet(RecurrentConfig(in_features=4, num_classes=3, hidden=(4,)))
    session = net.training_session(TrainConfig(device="cpu"), torch.device("cpu"))
    session.begin_epoch(1, range(1), torch.zeros(1, 4), torch.zeros(1, dtype=torch.long))
    y = torch.zeros(3000, dtype=torch.long)
    logits = torch.log(torch.tensor([[0.5, 0.4, 0.1]])).expand(3000, 3)
    drawn = session.negative_labels(logits, y, torch.Generator().manual_seed(0))
    assert not bool((drawn == 0).any())
    assert (drawn == 1).float().mean().item() == pytest.approx(0.8, abs=0.03)  # 0.4 / (0.4 + 0.1)
    session.begin_epoch(0, range(1), torch.zeros(1, 4), torch.zeros(1, dtype=torch.long))  # first epoch: uniform
    first = session.negative_labels(logits, y, torch.Generator().manual_seed(0))
    assert (first == 1).float().mean().item() == pytest.approx(0.5, abs=0.03)


@pytest.mark.anyio
async def test_mcp_trains_predicts_and_scores_goodness_of_a_recurrent_model(tmp_path, small_server):
    from mcp import Client

    data = load_dataset("digits")
    x, y = data.x_train[:800].tolist(), data.y_train[:800].tolist()
    async with Client(small_server) as client:
        variants = (await client.call_tool("ff_variants", {})).structured_content["variants"]
        assert "window" in {o["name"] for v in variants if v["name"] == "recurrent" for o in v["options"]}
        bad = await client.call_tool("ff_train", {"name": "r", "x": x, "y": y, "variant": "recurrent",
                                                  "options": {"damping": 1.5}})
        assert bad.is_error and "damping must be in [0, 1), got 1.5" in bad.content[0].text
        res = await client.call_tool("ff_train", {
            "name": "r", "x": x, "y": y, "variant": "recurrent", "options": {"iterations": 6, "window": "2-4"},
            "hidden": [48, 48], "epochs": 10, "batch_size": 32, "wait_seconds": 110})
        assert not res.is_error, res.content[0].text
        job = res.structured_content
        assert job["state"] == "done" and job["metrics"]["test_accuracy"] >= 0.6, job  # held-out rows; chance 0.1

        rows = data.x_test[:40]
        pred = await client.call_tool("ff_predict", {"model": "r", "x": rows.tolist()})
        assert not pred.is_error, pred.content[0].text
        model = load_checkpoint(tmp_path / "home" / "models" / "r.safetensors").model
        with torch.no_grad():
            assert pred.structured_content["labels"] == model.predict(rows).tolist()
            expected = model.layer_goodness(rows[:3], torch.tensor([1, 2, 3]))
        assert pred.structured_content["method"] == "goodness"
        good = (await client.call_tool("ff_goodness", {"model": "r", "x": rows[:3].tolist(),
                                                       "labels": [1, 2, 3]})).structured_content
        assert len(good["layers"]) == 2
        assert good["layers"][1]["goodness"] == pytest.approx(expected[1]["goodness"].tolist(), rel=1e-5)
