"""The one training loop: the readout's cooldown, contrasts asked before every epoch, label_mode from
the contrast."""

from __future__ import annotations

import pytest
import torch

from ff_mcp.data import load_dataset
from ff_mcp.engine import NetworkConfig, OptimizerConfig, Trainer, TrainConfig, build_network
from ff_mcp.engine.negatives import _REGISTRY, Noise, register_contrast
from ff_mcp.training import TrainOptions, train_model


def small_digits():
    data = load_dataset("digits")
    return data.x_train[:200], data.y_train[:200]


def test_the_readout_learning_rate_cools_down_with_the_layers_unless_told_not_to():
    x, y = small_digits()
    factor = 2.0 * (1 + 6 - 5) / 6  # the last of 6 epochs (index 5): loeweX's linear cooldown
    for readout_cooldown, readout_factor in ((True, factor), (False, 1.0)):
        net = build_network(NetworkConfig(in_features=64, num_classes=10, hidden=(16, 16), label_mode="concat"))
        trainer = Trainer(net, TrainConfig(epochs=6, batch_size=50, device="cpu", readout_cooldown=readout_cooldown,
                                           optimizer=OptimizerConfig("sgd", 0.01)))
        trainer.fit(x, y)
        assert trainer.session.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.01 * factor)
        # the readout's lr is 10x the layers' with SGD
        assert trainer.session.readout_optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * readout_factor)


class CountingNoise(Noise):
    """An unsupervised contrast registered by a test: it records every prepare_epoch call."""

    name = "counting_noise"
    calls: list[int] = []

    def prepare_epoch(self, predict_probs, x_train, epoch):
        CountingNoise.calls.append(epoch)


def test_a_newly_registered_unsupervised_contrast_is_prepared_every_epoch_and_trains_without_labels():
    register_contrast("counting_noise", CountingNoise)
    try:
        CountingNoise.calls = []
        data = load_dataset("digits", limit_train=300)
        trained = train_model(data, TrainOptions(negatives="counting_noise", hidden=(32,), epochs=3, device="cpu"))
        assert CountingNoise.calls == [0, 1, 2]
        assert trained.network.config.label_mode == "none"  # the contrast needs no labels, so none go in
        assert trained.result.final["predict_method"] == "readout"  # no label to try by goodness
        assert "test_accuracy_goodness" not in trained.result.final
    finally:
        _REGISTRY.pop("counting_noise", None)


def test_the_cli_offers_contrasts_registered_before_its_parser_is_built():
    from ff_mcp.cli import build_parser

    register_contrast("counting_noise", CountingNoise)
    try:
        args = build_parser().parse_args(["train", "--dataset", "digits", "--negatives", "counting_noise"])
        assert args.negatives == "counting_noise"
    finally:
        _REGISTRY.pop("counting_noise", None)


def test_hard_negatives_use_the_models_predictions_from_the_second_epoch_on():
    from ff_mcp.engine.negatives import HardLabel

    x, y = small_digits()
    net = build_network(NetworkConfig(in_features=64, num_classes=10, hidden=(16, 16), label_mode="concat"))
    trainer = Trainer(net, TrainConfig(epochs=2, batch_size=50, device="cpu", negatives="hard"))
    contrast = trainer.session.contrast
    assert isinstance(contrast, HardLabel) and contrast.probs is None
    trainer.fit(x, y)
    assert contrast.probs is not None and contrast.probs.shape == (200, 10)
    assert torch.allclose(contrast.probs.sum(dim=1), torch.ones(200), atol=1e-4)


def test_the_backprop_baseline_trains_through_the_same_loop_and_is_a_variant(tmp_path):
    from ff_mcp.engine import BackpropNet, load_checkpoint, save_checkpoint, train_backprop

    data = load_dataset("digits")
    config = NetworkConfig(in_features=64, num_classes=10, hidden=(64,), label_mode="concat")
    train = TrainConfig(epochs=3, batch_size=32, device="cpu", seed=3)
    a, result = train_backprop(config, train, data.x_train, data.y_train, data.x_test, data.y_test)
    b, _ = train_backprop(config, train, data.x_train, data.y_train)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))  # seeded, head too
    assert result.final["predict_method"] == "softmax" and result.final["test_accuracy"] >= 0.9
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    path = save_checkpoint(tmp_path / "bp.safetensors", a)
    loaded = load_checkpoint(path)
    assert loaded.kind == "backprop" and isinstance(loaded.model, BackpropNet)
    with torch.no_grad():
        assert torch.equal(loaded.model.predict(data.x_test), a.eval().predict(data.x_test))


def test_the_backprop_variant_trains_from_the_cli(tmp_path, capsys):
    import json

    from ff_mcp.cli import main

    assert main(["train", "--dataset", "digits", "--variant", "backprop", "--hidden", "32", "--epochs", "6",
                 "--quiet", "--json", "--device", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["variant"] == "backprop" and out["predict_method"] == "softmax" and out["test_accuracy"] > 0.8


def test_a_session_can_give_its_phases_their_own_epoch_counts():
    from ff_mcp.data import load_dataset
    from ff_mcp.engine import NetworkConfig, TrainConfig, Trainer, build_network
    from ff_mcp.engine.dense import DenseSession

    class ThreeThenOne(DenseSession):  # e.g. a paper that trains layer 1 longer than layer 2
        def phase_epochs(self, epochs):
            return [epochs, 1]

    data = load_dataset("digits")
    net = build_network(NetworkConfig(in_features=64, num_classes=10, hidden=(16, 16), label_mode="concat"), seed=0)
    trainer = Trainer(net, TrainConfig(epochs=3, batch_size=100, schedule="greedy", device="cpu", train_eval_rows=0),
                      session=ThreeThenOne)
    result = trainer.fit(data.x_train, data.y_train)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4] and result.history[-1]["epochs"] == 4
    assert [[u["layer"] for u in h["layers"]] for h in result.history] == [[0], [0], [0], [1]]
    assert [h["lr_factor"] for h in result.history] == [trainer.lr_factor(e, 3) for e in range(3)] + [1.0]

    class Wrong(DenseSession):
        def phase_epochs(self, epochs):
            return [epochs]

    with pytest.raises(ValueError, match="phase_epochs must give one count >= 1 per phase"):
        Trainer(build_network(net.config, seed=0), TrainConfig(epochs=2, schedule="greedy", device="cpu"),
                session=Wrong).fit(data.x_train[:100], data.y_train[:100])
