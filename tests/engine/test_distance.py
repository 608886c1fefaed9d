"""Distance-Forward on the MLP ("distance"): the goodness to centroids and the N-pair margin loss by
hand, the centroids' moving average, no gradient across layers, checkpoints, option errors, and a small
real-data run above a floor."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ff_mcp.data import load_dataset
from ff_mcp.engine import Batch, OptimizerConfig, Trainer, TrainConfig, build_model, load_checkpoint, save_checkpoint
from ff_mcp.engine.distance import (DistanceConfig, DistanceNet, DistanceOptions, class_goodness, layer_losses,
                                    n_pair_margin_loss)
from ff_mcp.engine.protocol import DataSpec, parse_options


def test_goodness_is_minus_the_mean_squared_distance_to_each_centroid():
    h = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    c = torch.tensor([[1.0, 0.0], [3.0, 2.0], [0.0, 0.0]])
    expected = torch.tensor([[-(0 + 4) / 2, -(4 + 0) / 2, -(1 + 4) / 2],
                             [-(1 + 0) / 2, -(9 + 4) / 2, 0.0]])
    assert torch.allclose(class_goodness(h, c), expected)


def test_n_pair_margin_loss_by_hand():
    g = torch.tensor([[-1.0, -2.0, -0.5], [-3.0, -1.0, -2.0]])
    y = torch.tensor([0, 1])
    scale, margin = 2.0, 0.5
    # row 0: own -1; others -2, -0.5 -> log(1 + e^{2(-1 + 0.5)} + e^{2(0.5 + 0.5)})
    row0 = math.log(1 + math.exp(2 * (-2 + 1 + 0.5)) + math.exp(2 * (-0.5 + 1 + 0.5)))
    # row 1: own -1; others -3, -2
    row1 = math.log(1 + math.exp(2 * (-3 + 1 + 0.5)) + math.exp(2 * (-2 + 1 + 0.5)))
    assert n_pair_margin_loss(g, y, scale, margin).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_with_two_classes_the_loss_is_ffs_softplus_of_the_goodness_gap():
    g = torch.randn(7, 2)
    y = torch.randint(0, 2, (7,))
    own, other = g.gather(1, y[:, None])[:, 0], g.gather(1, (1 - y)[:, None])[:, 0]
    expected = F.softplus(3.0 * (other - own + 0.2)).mean()
    assert torch.allclose(n_pair_margin_loss(g, y, 3.0, 0.2), expected, atol=1e-6)


def test_layer_collaboration_trains_each_layer_on_the_summed_goodness_with_the_others_detached():
    g1 = torch.tensor([[-1.0, -2.0, -0.5], [-3.0, -1.0, -2.0]], requires_grad=True)
    g2 = torch.tensor([[-0.2, -0.4, -0.1], [-0.3, -0.6, -0.9]], requires_grad=True)
    y = torch.tensor([0, 1])
    alone = layer_losses([g1, g2], [0, 1], y, 2.0, 0.5, collaborate=False)
    assert alone[0].item() == pytest.approx(n_pair_margin_loss(g1, y, 2.0, 0.5).item())
    together = layer_losses([g1, g2], [0, 1], y, 2.0, 0.5, collaborate=True)
    summed = (g1 + g2).detach()
    # row 0: own -1.2, others -2.4, -0.6; row 1: own -1.6, others -3.3, -2.9
    row0 = math.log(1 + math.exp(2 * (-2.4 + 1.2 + 0.5)) + math.exp(2 * (-0.6 + 1.2 + 0.5)))
    row1 = math.log(1 + math.exp(2 * (-3.3 + 1.6 + 0.5)) + math.exp(2 * (-2.9 + 1.6 + 0.5)))
    for i in (0, 1):
        assert together[i].item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    assert not torch.allclose(together[0], alone[0])
    (grad_own, grad_other) = torch.autograd.grad(together[0], [g1, g2], allow_unused=True)
    expected, = torch.autograd.grad(n_pair_margin_loss(summed.requires_grad_(), y, 2.0, 0.5), summed)
    assert torch.allclose(grad_own, expected) and grad_other is None  # layer 2's term reaches only layer 2


def test_collaborating_layers_still_pass_no_gradient_down():
    net = build_model(DistanceNet.build_config(DataSpec(12, 3), (16, 8), DistanceOptions(collaborate=True)), 0)
    session = net.training_session(TrainConfig(epochs=1, optimizer=OptimizerConfig("adam", 1e-2), seed=0),
                                   torch.device("cpu"))
    x, y = torch.randn(20, 12), torch.randint(0, 3, (20,))
    stats = torch.zeros(3, 3)
    session.step(Batch(x, y, torch.arange(20)), torch.Generator().manual_seed(0), range(0, 2), stats)  # sets centroids
    before = [p.detach().clone() for p in net.layers[0].parameters()]
    for p in net.parameters():
        p.grad = None
    session.step(Batch(x, y, torch.arange(20)), torch.Generator().manual_seed(0), range(1, 2), stats)  # layer 2 only
    assert all(torch.equal(b, a) for b, a in zip(before, net.layers[0].parameters()))
    assert all(p.grad is None for p in net.layers[0].parameters())
    assert all(p.grad is not None for p in net.layers[1].parameters())


def test_centroids_start_at_a_class_mean_then_move_by_the_moving_average():
    net = DistanceNet(DistanceConfig(4, 3, (2,), momentum=0.75), torch.Generator().manual_seed(0))
    layer = net.layers[0]
    h = torch.tensor([[1.0, 1.0], [3.0, 5.0], [10.0, 0.0]])
    layer.update_centroids(h, torch.tensor([0, 0, 2]), 0.75)
    assert torch.equal(layer.centroids, torch.tensor([[2.0, 3.0], [0.0, 0.0], [10.0, 0.0]]))
    assert layer.seen.tolist() == [True, False, True]
    layer.update_centroids(torch.tensor([[6.0, 7.0], [4.0, 4.0]]), torch.tensor([0, 1]), 0.75)
    assert torch.allclose(layer.centroids, torch.tensor([[0.75 * 2 + 0.25 * 6, 0.75 * 3 + 0.25 * 7],
                                                         [4.0, 4.0],  # first sight: set, not averaged with zeros
                                                         [10.0, 0.0]]))  # absent from the batch: unchanged


def _net(hidden=(16, 8), seed=0) -> DistanceNet:
    return build_model(DistanceNet.build_config(DataSpec(12, 3), hidden, DistanceOptions()), seed)


def test_no_gradient_crosses_layers():
    net = _net()
    config = TrainConfig(epochs=1, optimizer=OptimizerConfig("adam", 1e-2), seed=0)
    session = net.training_session(config, torch.device("cpu"))
    before = [p.detach().clone() for p in net.parameters()]
    centroids = net.layers[0].centroids.clone()
    x, y = torch.randn(20, 12), torch.randint(0, 3, (20,))
    stats = torch.zeros(3, 3)
    session.step(Batch(x, y, torch.arange(20)), torch.Generator().manual_seed(0), range(1, 2), stats)  # train layer 2 only
    after = list(net.parameters())
    first = len(list(net.layers[0].parameters()))
    assert all(torch.equal(b, a) for b, a in zip(before[:first], after[:first]))  # layer 1 untouched
    assert torch.equal(net.layers[0].centroids, centroids)
    assert not all(torch.equal(b, a) for b, a in zip(before[first:], after[first:]))  # layer 2 moved
    assert all(p.grad is None for p in net.layers[0].parameters())  # no gradient reached layer 1
    assert stats[0].abs().sum() == 0 and stats[1, 0] > 0


def test_checkpoint_round_trip_keeps_the_centroids(tmp_path):
    digits = load_dataset("digits")
    x, y = digits.x_train[:300], digits.y_train[:300]
    net = build_model(DistanceNet.build_config(DataSpec(64, 10), (32,), DistanceOptions()), 0)
    Trainer(net, TrainConfig(epochs=2, batch_size=50, optimizer=OptimizerConfig("adam", 1e-3), seed=0)).fit(x, y)
    save_checkpoint(tmp_path / "df.safetensors", net)
    again = load_checkpoint(tmp_path / "df.safetensors").model
    assert torch.equal(again.layers[0].centroids, net.layers[0].centroids)
    for method in net.prediction_methods():
        assert torch.equal(again.predict(x[:40], method), net.predict(x[:40], method))


def test_options_out_of_range_are_refused_with_their_name():
    with pytest.raises(ValueError, match="scale"):
        DistanceNet.build_config(DataSpec(4, 3), (8,), DistanceOptions(scale=0.0))
    with pytest.raises(ValueError, match="momentum"):
        DistanceNet.build_config(DataSpec(4, 3), (8,), DistanceOptions(momentum=1.0))
    with pytest.raises(ValueError, match="margin"):
        DistanceNet.build_config(DataSpec(4, 3), (8,), DistanceOptions(margin=-1.0))
    with pytest.raises(ValueError, match="nonsense"):
        parse_options(DistanceOptions, {"nonsense": 1}, "distance")


def test_digits_run_above_a_floor_with_every_prediction_method():
    digits = load_dataset("digits")
    net = build_model(DistanceNet.build_config(DataSpec(64, 10), (200, 200), DistanceOptions()), 0)
    Trainer(net, TrainConfig(epochs=10, batch_size=25, optimizer=OptimizerConfig("adam", 1e-3), seed=0)).fit(
        digits.x_train, digits.y_train)
    assert set(net.prediction_methods()) == {"fused", "summed", "layer1", "layer2"}
    for method in net.prediction_methods():
        accuracy = (net.predict(digits.x_test, method) == digits.y_test).float().mean().item()
        assert accuracy >= 0.9, (method, accuracy)
    collaborating = build_model(DistanceNet.build_config(DataSpec(64, 10), (200, 200),
                                                         DistanceOptions(collaborate=True)), 0)
    Trainer(collaborating, TrainConfig(epochs=10, batch_size=25, optimizer=OptimizerConfig("adam", 1e-3),
                                       seed=0)).fit(digits.x_train, digits.y_train)
    for method in ("fused", "summed"):  # with layer collaboration too
        accuracy = (collaborating.predict(digits.x_test, method) == digits.y_test).float().mean().item()
        assert accuracy >= 0.9, ("collaborate", method, accuracy)
    goodness = net.layer_goodness(digits.x_test[:5], digits.y_test[:5])
    assert len(goodness) == 2 and goodness[0]["goodness"].shape == (5,)
    assert bool(((goodness[1]["p_positive"] > 0) & (goodness[1]["p_positive"] <= 1)).all())
