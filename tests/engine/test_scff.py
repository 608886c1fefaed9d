"""Self-Contrastive FF (engine/scff.py): the pairs, the shared first-layer weights, the loss against
hand-computed values, option refusals, and a small real-data run above a floor."""

from __future__ import annotations

import math

import pytest
import torch

from ff_mcp.cli import main as cli_main
from ff_mcp.data import load_dataset
from ff_mcp.engine import OptimizerConfig, TrainConfig, Trainer, build_model, load_checkpoint
from ff_mcp.engine.scff import (
    ScffConfig,
    ScffNet,
    goodness,
    negative_partners,
    scff_loss,
    standardize,
    translate,
)


def tiny() -> ScffNet:
    net = ScffNet(ScffConfig(in_features=2, num_classes=2, hidden=(1,), theta_pos=(4.0,), theta_neg=(6.0,),
                             lam=(0.0,)))
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.0, 2.0]]))
        net.layers[0].bias.copy_(torch.tensor([0.5]))
    return net


def test_the_first_layer_applies_one_weight_to_both_halves_of_the_standardised_pair():
    net = tiny()
    x = torch.tensor([[1.0, 3.0]])
    # the pair [1, 3, 1, 3]: mean 2, unbiased std sqrt(4/3); each half standardises to [-s, s], s = sqrt(3)/2
    s = math.sqrt(3) / 2
    h = net.pre_activation(0, x, x)
    assert h.item() == pytest.approx(2 * (1 * -s + 2 * s) + 2 * 0.5, abs=1e-6)
    other = torch.tensor([[2.0, 0.0]])
    assert torch.allclose(net.pre_activation(0, x, other), net.pre_activation(0, other, x))  # shared weights
    assert goodness(torch.tensor([[2.0, -1.0, 1.0]])).item() == pytest.approx((4 + 0 + 1) / 3)


def test_the_loss_is_the_papers_softplus_pair_plus_lambda():
    g_pos, g_neg = torch.tensor([5.0, 3.0]), torch.tensor([7.0, 2.0])
    expected = ((math.log1p(math.exp(-1.0)) + math.log1p(math.exp(1.0))) / 2
                + (math.log1p(math.exp(1.0)) + math.log1p(math.exp(-4.0))) / 2 + 0.1 * 4.0)
    assert scff_loss(g_pos, g_neg, 4.0, 6.0, lam=0.1).item() == pytest.approx(expected, rel=1e-6)


def test_negative_partners_are_other_rows_and_translation_moves_whole_pixels():
    generator = torch.Generator().manual_seed(0)
    for batch in (2, 7, 100):
        partners = negative_partners(batch, generator)
        assert not bool((partners == torch.arange(batch)).any()) and sorted(partners.tolist()) == list(range(batch))
    image = torch.zeros(1, 16)
    image[0, 5] = 1.0  # (1, 1) of a 4 x 4 image
    moved = translate(image, (4, 4), 1, torch.Generator().manual_seed(3)).reshape(4, 4)
    assert moved.sum() in (0.0, 1.0) and torch.equal(translate(image, (4, 4), 0, generator), image)
    assert torch.allclose(standardize(torch.tensor([[1.0, 3.0]])), torch.tensor([[-math.sqrt(0.5), math.sqrt(0.5)]]))


@pytest.mark.parametrize(("option", "message"), [
    ("translate=20", "translate must be -1 (auto) or in [0, 8] pixels, got 20"),
    ("theta_pos=a,b", "theta_pos must be numbers separated by commas"),
    ("activation=tanh", "activation must be one of ['triangle', 'relu']"),
    ("probe_dropout=1.5", "probe_dropout must be in [0, 1)"),
    ("layer_epochs=3", "layer_epochs needs one count >= 1 per layer (2)"),
    ("colour=1", "colour"),
    ("lr_gamma=0.9", "lr_gamma and lr_period go together"),
    ("layer_lr=0", "layer_lr must be in (0, 10] for every layer"),
    ("layer_lr=0.003,0.002,0.5", "layer_lr takes at most one finite number per layer (2)"),
    ("lr_period=inf", "lr_period takes at most one finite number per layer (2)"),
    ("probe_schedule=cosine", "probe_schedule must be one of ['trainer', 'halving'], got 'cosine'"),
])
def test_options_out_of_range_are_refused_naming_the_option(option, message, capsys):
    assert cli_main(["train", "--dataset", "digits", "--variant", "scff", "--hidden", "16,16", "--epochs", "1",
                     "--opt", option, "--quiet", "--device", "cpu"]) == 2
    assert message in capsys.readouterr().err


def test_scff_learns_digits_without_labels_then_a_probe_reads_them(tmp_path):
    data = load_dataset("digits")
    out = tmp_path / "scff.safetensors"
    assert cli_main(["train", "--dataset", "digits", "--variant", "scff", "--hidden", "100,100", "--epochs", "6",
                     "--batch-size", "50", "--opt", "probe_epochs=10", "--device", "cpu", "--quiet",
                     "--out", str(out)]) == 0
    saved = load_checkpoint(out)
    assert saved.kind == "scff" and saved.metrics["final"]["predict_method"] == "probe"
    assert saved.metrics["final"]["test_accuracy"] > 0.88  # chance is 0.10
    assert [h["epoch"] for h in saved.metrics["history"]] == list(range(1, 23))  # 6 + 6 layer epochs, 10 probe
    again = build_model(saved.model.config, seed=0)
    again.load_state_dict(saved.model.state_dict())
    assert torch.equal(again.predict(data.x_test), saved.model.predict(data.x_test))  # saved and reloaded
    layers = saved.model.layer_goodness(data.x_test[:5])
    assert len(layers) == 2 and layers[0]["goodness"].shape == (5,)


def test_the_same_seed_trains_the_same_weights():
    data = load_dataset("digits")
    config = ScffConfig(in_features=64, num_classes=10, hidden=(32,), theta_pos=(4.0,), theta_neg=(6.0,), lam=(0.0,),
                        image_shape=(8, 8), translate=1, probe_epochs=1)
    train = TrainConfig(epochs=2, batch_size=64, seed=3, device="cpu", optimizer=OptimizerConfig("adam", 1e-3))
    nets = [build_model(config, seed=3) for _ in range(2)]
    for net in nets:
        Trainer(net, train).fit(data.x_train[:512], data.y_train[:512])
    assert all(torch.equal(a, b) for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()))


def test_per_layer_learning_rates_decay_by_gamma_every_period_mini_batches_with_adamw():
    data = load_dataset("digits")
    config = ScffConfig(in_features=64, num_classes=10, hidden=(16, 16), theta_pos=(4.0, 1.0), theta_neg=(6.0, 1.0),
                        lam=(0.0, 0.0), image_shape=(8, 8), translate=1, layer_epochs=(2, 1), probe_epochs=1,
                        layer_lr=(0.004, 0.002), lr_gamma=(0.5, 0.9), lr_period=(3, 100))
    train = TrainConfig(epochs=1, batch_size=64, seed=1, device="cpu", cooldown=False,
                        optimizer=OptimizerConfig("adamw", 1e-3, weight_decay=1e-4))
    net = build_model(config, seed=1)
    trainer = Trainer(net, train)
    assert all(type(o) is torch.optim.AdamW for o in trainer.session.optimizers)
    trainer.fit(data.x_train[:640], data.y_train[:640])  # 10 mini-batches an epoch
    first, second = (o.param_groups[0] for o in trainer.session.optimizers)
    assert trainer.session.layer_steps == [20, 10]
    assert first["lr"] == pytest.approx(0.004 * 0.5 ** (20 // 3)) and first["weight_decay"] == 1e-4
    assert second["lr"] == pytest.approx(0.002)  # 10 mini-batches: no step of its 100-batch period yet


def test_the_probe_halving_schedule_is_the_official_codes():
    """CustomStepLR over 50 epochs halves after epochs 10, 17, 25, 30, 35, 40 and 45 (lr 1e-3 -> 1e-3/128)."""
    from ff_mcp.engine.scff import probe_halvings

    assert [probe_halvings(e, 50) for e in (0, 9, 10, 16, 17, 24, 25, 30, 35, 40, 44, 45, 49)] == \
        [0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 6, 7, 7]
    assert [probe_halvings(e, 4) for e in range(4)] == [1, 2, 3, 4]  # steps 0, 1, 2, 3: each counted once


def test_probe_halving_sets_the_probes_lr_each_epoch_and_ignores_the_cooldown():
    data = load_dataset("digits")
    config = ScffConfig(in_features=64, num_classes=10, hidden=(16,), theta_pos=(4.0,), theta_neg=(6.0,),
                        lam=(0.0,), image_shape=(8, 8), translate=1, layer_epochs=(1,), probe_epochs=10,
                        probe_schedule="halving")
    train = TrainConfig(epochs=1, batch_size=64, seed=1, device="cpu", optimizer=OptimizerConfig("adam", 1e-3))
    net = build_model(config, seed=1)
    seen, factors = [], []

    class Watch:
        def on_epoch_end(self, metrics):
            seen.append(trainer.session.probe_optimizer.param_groups[0]["lr"])
            factors.append(metrics["lr_factor"])

    trainer = Trainer(net, train, callbacks=[Watch()])
    trainer.fit(data.x_train[:256], data.y_train[:256])
    # epoch 1 trains the layer; probe epochs 0..9: steps int(10 r) = 2, 3, 5, 6, 7, 8, 9
    assert seen[1:] == pytest.approx([1e-3 * 0.5 ** k for k in (0, 0, 1, 2, 2, 3, 4, 5, 6, 7)])
    assert factors[1:] == pytest.approx([0.5 ** k for k in (0, 0, 1, 2, 2, 3, 4, 5, 6, 7)])  # the history says so
