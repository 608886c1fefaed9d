"""Negatives, batched prediction, gradient locality, determinism and checkpoints."""

import torch
import pytest

from ff_mcp.engine import (
    CheckpointError,
    NetworkConfig,
    OptimizerConfig,
    Trainer,
    TrainConfig,
    build_network,
    load_checkpoint,
    save_checkpoint,
    wrong_labels,
)
from ff_mcp.engine.negatives import BatchContext, make_contrast


def small_net(label_mode="overlay", hidden=(32, 24, 16), **kw):
    cfg = NetworkConfig(in_features=40, num_classes=10, hidden=hidden, label_mode=label_mode, **kw)
    return build_network(cfg, seed=3)


def test_wrong_label_negatives_never_equal_the_true_label():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(10).repeat(5000)
    y_neg = wrong_labels(y, 10, g)
    assert not (y_neg == y).any()
    # every one of the 9 other labels is drawn for every true label
    pairs = set(zip(y.tolist(), y_neg.tolist()))
    assert len(pairs) == 90


def test_hard_negatives_never_equal_the_true_label_even_when_the_model_is_sure():
    net = small_net()
    contrast = make_contrast("hard", net.labels)
    x, y = torch.rand(50, 40), torch.randint(0, 10, (50,))
    contrast.prepare_epoch(lambda xs: torch.nn.functional.one_hot(y, 10).float(), x, epoch=1)
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        _, x_neg = contrast.make_batch(BatchContext(x, y, torch.arange(50), g))
        assert not (x_neg[:, :10].argmax(1) == y).any()


@pytest.mark.parametrize("label_mode", ["overlay", "concat"])
@pytest.mark.parametrize("norm", ["rms", "l2", "none"])
@pytest.mark.parametrize("skip_first", [True, False])
def test_batched_all_label_prediction_equals_a_per_label_loop(label_mode, norm, skip_first):
    net = small_net(label_mode, norm=norm)
    x = torch.rand(7, 40)
    with torch.no_grad():
        fast = net.goodness_scores(x, skip_first=skip_first)
        slow = net.goodness_scores_loop(x, skip_first=skip_first)
    assert fast.shape == (7, 10)
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-3)


def test_predict_returns_one_label_per_row_the_one_with_the_most_goodness():
    net = small_net()
    x = torch.rand(13, 40, generator=torch.Generator().manual_seed(1))
    labels = net.predict(x)
    assert labels.shape == (13,) and labels.dtype == torch.long
    assert torch.equal(labels, net.predict_scores(x, "goodness").argmax(dim=1))
    assert int(labels.min()) >= 0 and int(labels.max()) < 10


def test_no_gradient_reaches_a_layer_from_a_later_layer():
    net = small_net()
    # the autograd step (the fused one builds no graph at all; tests/engine/test_fused_step.py)
    trainer = Trainer(net, TrainConfig(epochs=1, batch_size=8, device="cpu", step="autograd"))
    seen = {i: 0 for i in range(3)}

    def counter(i):
        def hook(grad):
            seen[i] += 1
        return hook

    for i, layer in enumerate(net.layers):
        layer.weight.register_hook(counter(i))
    x, y = torch.rand(8, 40), torch.randint(0, 10, (8,))
    trainer.session.train_step(x, y, torch.arange(8), torch.Generator().manual_seed(0))
    # each layer's weight received exactly one gradient: its own loss, never a later layer's
    assert seen == {0: 1, 1: 1, 2: 1}
    # and the gradients were freed after each layer's step
    assert all(p.grad is None for p in net.layers.parameters())


def test_each_layer_gets_exactly_the_gradient_of_its_own_loss():
    net = small_net()
    x, y = torch.rand(8, 40), torch.randint(0, 10, (8,))
    contrast = make_contrast("wrong_label", net.labels)
    x_pos, x_neg = contrast.make_batch(BatchContext(x, y, torch.arange(8), torch.Generator().manual_seed(0)))
    z = torch.cat([x_pos, x_neg])
    h0 = net.layers[0](z)
    h1 = net.layers[1](h0.detach())
    loss1, _, _ = net.layers[1].local_loss(h1, 8)
    loss1.backward()
    assert net.layers[0].weight.grad is None
    assert net.layers[1].weight.grad is not None


def _train_once(seed):
    net = small_net(hidden=(16, 16))
    x = torch.rand(64, 40, generator=torch.Generator().manual_seed(9))
    y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(9))
    Trainer(net, TrainConfig(epochs=2, batch_size=16, seed=seed, device="cpu", negatives="hard",
                             optimizer=OptimizerConfig("adam", 1e-3))).fit(x, y)
    return net.state_dict()


def test_the_same_seed_gives_bit_identical_weights_on_cpu():
    a, b = _train_once(5), _train_once(5)
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = _train_once(6)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_greedy_schedule_trains_layers_one_after_another():
    net = small_net(hidden=(16, 16))
    x, y = torch.rand(64, 40), torch.randint(0, 10, (64,))
    result = Trainer(net, TrainConfig(epochs=2, batch_size=16, schedule="greedy", device="cpu")).fit(x, y)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert [[m["layer"] for m in h["layers"]] for h in result.history] == [[0], [0], [1], [1]]


def test_cancellation_stops_within_one_mini_batch():
    net = small_net(hidden=(16,))
    calls = []
    trainer = Trainer(net, TrainConfig(epochs=5, batch_size=8, device="cpu"),
                      should_stop=lambda: calls.append(1) or len(calls) >= 3)
    result = trainer.fit(torch.rand(64, 40), torch.randint(0, 10, (64,)))
    assert result.state == "cancelled" and result.samples_seen == 24 and len(result.history) == 1


def test_checkpoint_round_trip_restores_weights_config_and_metrics(tmp_path):
    net = small_net(peer_norm=0.03)
    path = save_checkpoint(tmp_path / "m.safetensors", net, {"epochs": 3}, {"test_accuracy": 0.5}, {"dataset": "x"})
    ckpt = load_checkpoint(path)
    assert ckpt.network.config == net.config
    assert ckpt.train_config == {"epochs": 3} and ckpt.metrics == {"test_accuracy": 0.5}
    assert ckpt.extra == {"dataset": "x"}
    for k, v in net.state_dict().items():
        assert torch.equal(v, ckpt.network.state_dict()[k])
    x = torch.rand(5, 40)
    torch.testing.assert_close(net.goodness_scores(x), ckpt.network.goodness_scores(x))


def test_a_truncated_checkpoint_is_refused_with_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", small_net())
    raw = path.read_bytes()
    for cut in (4, 100, len(raw) // 2, len(raw) - 1):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="truncated|corrupt"):
            load_checkpoint(bad)


def test_an_altered_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", small_net())
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # flip bits inside the last tensor's bytes
    bad = tmp_path / "altered.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="altered"):
        load_checkpoint(bad)


def test_a_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_saving_leaves_no_temporary_files(tmp_path):
    save_checkpoint(tmp_path / "m.safetensors", small_net())
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_config_errors_name_the_field_and_the_allowed_values():
    with pytest.raises(ValueError, match=r"hidden must be a non-empty list of sizes >= 1, got \[0\]"):
        NetworkConfig(in_features=4, num_classes=2, hidden=(0,))
    with pytest.raises(ValueError, match=r"epochs must be in \[1, 100000\], got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match=r"lr must be in \(0, 10\], got -1"):
        OptimizerConfig(lr=-1)
    with pytest.raises(ValueError, match="label_mode 'overlay' needs more than num_classes=10 features"):
        NetworkConfig(in_features=8, num_classes=10, hidden=(4,))
    with pytest.raises(ValueError, match=r"readout_weight_decay must be in \[0, 1\], got 2"):
        TrainConfig(readout_weight_decay=2)


def test_readout_options_reach_the_readout_optimizer():
    import argparse

    from ff_mcp.cli import add_train_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--dataset", "digits", "--optimizer", "sgd", "--lr", "1e-3", "--readout-weight-decay", "3e-3"])
    config = options_from_args(args).train_config()
    trainer = Trainer(small_net(), config)
    group = trainer.session.readout_optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"]) == (pytest.approx(1e-2), 3e-3)  # loeweX: 10x lr, 3e-3
    args = parser.parse_args(["--dataset", "digits", "--readout-lr", "0.5"])
    assert Trainer(small_net(), options_from_args(args).train_config()).session.readout_optimizer.param_groups[0]["lr"] == 0.5


@pytest.mark.parametrize("negatives", ["hybrid", "noise"])
def test_unsupervised_negatives_train_a_label_free_network_with_a_readout(negatives):
    from ff_mcp.data import load_dataset

    data = load_dataset("digits")
    cfg = NetworkConfig(in_features=64, num_classes=10, hidden=(64, 64), label_mode="none", image_shape=(8, 8))
    net = build_network(cfg, seed=0)
    before = net.layers[0].weight.detach().clone()
    result = Trainer(net, TrainConfig(epochs=8, batch_size=50, negatives=negatives, device="cpu",
                                      predict_method="readout")).fit(data.x_train, data.y_train, data.x_test,
                                                                     data.y_test)
    assert result.final["predict_method"] == "readout" and "goodness" not in net.prediction_methods()
    assert not torch.equal(before, net.layers[0].weight)  # the layers learnt, without any label in their input
    assert result.final["test_accuracy"] > 0.6  # the readout on label-free features: far above chance (0.1)


def test_batched_prediction_in_row_chunks_equals_the_per_label_loop():
    net = small_net()
    x = torch.rand(7000, 40)  # more rows than one chunk holds for K=10, H=32
    with torch.no_grad():
        torch.testing.assert_close(net.goodness_scores(x), net.goodness_scores_loop(x), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("label_mode", ["overlay", "concat"])
@pytest.mark.parametrize("norm", ["rms", "l2", "none"])
@pytest.mark.parametrize("kw", [{}, {"goodness": "neg_mean_squares"}, {"activation": "gelu"}, {"bias": False},
                                {"label_strength": 3.0}])
def test_one_layer_all_label_prediction_equals_a_per_label_loop(label_mode, norm, kw):
    """One hidden layer takes its own path (W.x once, label columns in L2-sized pieces)."""
    net = small_net(label_mode, hidden=(48,), norm=norm, **kw)
    with torch.no_grad():
        net.layers[0].bias.add_(0.3) if net.layers[0].bias is not None else None  # a bias that matters
        x = torch.rand(300, 40)
        net._SINGLE_LAYER_CHUNK_VALUES = 5000  # several pieces
        torch.testing.assert_close(net.goodness_scores(x), net.goodness_scores_loop(x), rtol=1e-4, atol=1e-3)
