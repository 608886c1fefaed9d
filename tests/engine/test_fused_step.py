"""The fused step (closed-form gradients, SGD into the momentum buffer, shared first layer) must
train the same weights as the autograd step it replaces."""

import pytest
import torch

from ff_mcp.engine import NetworkConfig, OptimizerConfig, Trainer, TrainConfig, build_network
from ff_mcp.engine.fused import fused_supported
from ff_mcp.engine.labels import LabeledRows, LabelEmbedding
from ff_mcp.engine.losses import get_loss, loss_and_grad
from ff_mcp.engine.negatives import BatchContext, WrongLabel, make_contrast
from ff_mcp.engine.pipeline import PipelineTrainer
from training_checks import assert_same_training


def train(fused, net_kw=None, opt_kw=None, train_kw=None, epochs=2, trainer_cls=Trainer):
    torch.manual_seed(0)
    x, y = torch.rand(64, 40), torch.randint(0, 10, (64,))
    net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(32, 24, 16), **(net_kw or {})), seed=1)
    config = TrainConfig(epochs=epochs, batch_size=16, device="cpu", step="auto" if fused else "autograd", train_eval_rows=0,
                         optimizer=OptimizerConfig(**(opt_kw or {"name": "sgd", "lr": 0.05})), **(train_kw or {}))
    result = trainer_cls(net, config).fit(x, y)
    return net, result


CASES = {
    "sgd momentum weight decay (loeweX)": ({}, {"name": "sgd", "lr": 0.05, "weight_decay": 3e-4}, {}),
    "sgd without momentum": ({}, {"name": "sgd", "lr": 0.05, "momentum": 0.0, "weight_decay": 1e-2}, {}),
    "adam": ({}, {"name": "adam", "lr": 1e-2}, {}),
    "peer norm, relu with full gradient": ({"peer_norm": 0.03, "activation": "relu_full_grad"},
                                           {"name": "sgd", "lr": 0.05, "weight_decay": 3e-4}, {}),
    "peer norm, relu": ({"peer_norm": 0.03}, {"name": "adam", "lr": 1e-2}, {}),
    "mean squares, l2 norm": ({"goodness": "mean_squares", "norm": "l2"}, {"name": "adam", "lr": 1e-2}, {}),
    "neg goodness, symba, concat labels": ({"goodness": "neg_sum_squares", "loss": "symba", "label_mode": "concat"},
                                           {"name": "sgd", "lr": 0.01}, {}),
    "no bias, label strength 3": ({"bias": False, "label_strength": 3.0}, {"name": "sgd", "lr": 0.05}, {}),
    "hard negatives": ({}, {"name": "adam", "lr": 1e-2}, {"negatives": "hard"}),
    "greedy schedule": ({}, {"name": "adam", "lr": 1e-2}, {"schedule": "greedy"}),
    "noise negatives, no norm": ({"norm": "none"}, {"name": "sgd", "lr": 0.01}, {"negatives": "noise"}),
    "bf16 autocast": ({}, {"name": "sgd", "lr": 0.05}, {"amp": "bf16"}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fused_step_trains_the_same_weights_as_autograd(case):
    net_kw, opt_kw, train_kw = CASES[case]
    if train_kw.get("amp") == "bf16":  # bf16 rounds the two paths differently: one epoch, looser bounds
        a, b = (train(fused, net_kw, opt_kw, train_kw, epochs=1) for fused in (True, False))
        assert_same_training(a, b, atol=2e-2, rel=2e-2)
    else:
        assert_same_training(train(True, net_kw, opt_kw, train_kw), train(False, net_kw, opt_kw, train_kw))


def test_fused_step_in_the_threaded_pipeline_matches_autograd():
    a = train(True, trainer_cls=lambda n, c: PipelineTrainer(n, c, stages=2))
    b = train(False, trainer_cls=lambda n, c: PipelineTrainer(n, c, stages=2))
    assert_same_training(a, b)


def test_sgd_momentum_buffers_are_torch_sgd_buffers():
    """The fused step keeps torch.optim.SGD's state, so either path can continue the other's run."""
    torch.manual_seed(0)
    x, y = torch.rand(48, 40), torch.randint(0, 10, (48,))
    buffers = []
    for fused in (True, False):
        net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(32, 24)), seed=1)
        trainer = Trainer(net, TrainConfig(epochs=1, batch_size=16, device="cpu", step="auto" if fused else "autograd", train_eval_rows=0,
                                           optimizer=OptimizerConfig("sgd", 0.05, weight_decay=3e-4)))
        trainer.fit(x, y)
        buffers.append([opt.state[p]["momentum_buffer"] for opt in trainer.session.optimizers for p in opt.param_groups[0]["params"]])
    for fused_buf, torch_buf in zip(*buffers):
        assert torch.allclose(fused_buf, torch_buf, atol=1e-5, rtol=1e-4)


def test_which_layers_take_the_fused_step():
    net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(8, 8)))
    assert fused_supported(net.layers[0])
    gelu = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(8,), activation="gelu"))
    assert not fused_supported(gelu.layers[0])
    trainer = Trainer(gelu, TrainConfig(device="cpu"))
    assert not trainer.session.shares_first_layer  # the autograd path gets ordinary rows


def test_labeled_rows_materialize_to_the_rows_the_contrast_builds():
    labels = LabelEmbedding("overlay", 10, strength=2.0)
    x, y = torch.rand(6, 40), torch.randint(0, 10, (6,))
    contrast = WrongLabel(labels)
    assert contrast.label_only()
    batch = BatchContext(x, y, torch.arange(6), torch.Generator().manual_seed(4))
    y_neg = contrast.negative_labels(batch)
    rows = LabeledRows(labels.embed(x, torch.zeros(6, 10)), torch.cat([y, y_neg, torch.full_like(y, -1)]), 10, 2.0)
    x_pos, x_neg = contrast.make_batch(BatchContext(x, y, torch.arange(6), torch.Generator().manual_seed(4)))
    expected = torch.cat([x_pos, x_neg, labels.embed_neutral(x)])
    assert torch.equal(rows.materialize(), expected)


def test_contrasts_that_change_the_data_do_not_share_the_first_layer():
    labels = LabelEmbedding("overlay", 10)
    assert make_contrast("hard", labels).label_only()
    assert not make_contrast("noise", labels).label_only()

    class Shifted(WrongLabel):  # overrides negatives only: its negative_labels no longer describe it
        def negatives(self, batch):
            return batch.x + 1, None

    assert not Shifted(labels).label_only()


@pytest.mark.parametrize("name,n_pos", [("softplus", 6), ("softplus", 4), ("softplus", 9), ("symba", 6)])
def test_closed_form_loss_gradients_equal_autograd(name, n_pos):
    logits = torch.randn(12, dtype=torch.float64)
    fn = get_loss(name)
    for _ in range(2):  # the second call reuses the cached sign vectors
        loss, grad = loss_and_grad(fn, logits, n_pos)
        leaf = logits.clone().requires_grad_()
        ref = fn(leaf[:n_pos], leaf[n_pos:])
        ref.backward()
        assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
        assert torch.allclose(grad, leaf.grad, atol=1e-12)


def test_handing_the_next_layer_its_scaled_rows_changes_no_bits():
    """A fused layer scales its output for the layer above while it is in cache (and the readout
    reuses those rows); that must give bit for bit what the layer above computes on its own."""
    from ff_mcp.engine import fused

    if not fused._onednn_linear_available(torch.zeros(1, 1)):
        pytest.skip("only the oneDNN forward takes scaled input rows")
    states = []
    for handoff in (True, False):
        torch.manual_seed(0)
        x, y = torch.rand(64, 40), torch.randint(0, 10, (64,))
        net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(32, 24, 16)), seed=1)
        trainer = Trainer(net, TrainConfig(epochs=2, batch_size=16, device="cpu", train_eval_rows=0,
                                           optimizer=OptimizerConfig("sgd", 0.05, weight_decay=3e-4)))
        assert trainer.session.normalized_input == [False, True, True]  # the shared first layer reads raw rows
        if not handoff:
            trainer.session.normalized_input = [False] * 3
        history = trainer.fit(x, y).history
        states.append((net.state_dict(), history))
    (a, hist_a), (b, hist_b) = states
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert hist_a[-1]["readout_loss"] == hist_b[-1]["readout_loss"]


def test_a_loss_without_a_closed_form_uses_autograd():
    def fn(p, n):  # what a plug-in loss registered without loss_and_grad looks like
        return (1 - p).clamp(min=0).square().mean() + n.clamp(min=0).mean()

    logits = torch.tensor([0.5, 2.0, -1.0, 3.0])
    loss, grad = loss_and_grad(fn, logits, 2)
    assert loss.item() == pytest.approx(0.125 + 1.5)
    assert torch.allclose(grad, torch.tensor([-0.5, 0.0, 0.0, 0.5]))


def test_onednn_and_blas_forwards_train_the_same_weights(monkeypatch):
    """The fused step uses oneDNN's fused linear+ReLU when this torch has it; without it, torch.mm."""
    from ff_mcp.engine import fused

    if not fused._onednn_linear_available(torch.zeros(1, 1)):
        pytest.skip("this torch build has no oneDNN linear; the BLAS path is the only one")
    with_onednn = train(True)
    monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
    assert not fused._onednn_linear_available(torch.zeros(1, 1))
    without = train(True)
    assert_same_training(with_onednn, without)


def test_scaled_rows_still_train_right_when_onednn_is_switched_off_mid_run(monkeypatch):
    """A trainer built while oneDNN was on hands layers scaled rows; if oneDNN is then disabled,
    those layers take the torch.mm forward on the scaled rows and must train the same weights."""
    from ff_mcp.engine import fused

    if not fused._onednn_linear_available(torch.zeros(1, 1)):
        pytest.skip("only the oneDNN forward takes scaled input rows")

    def run(switch_off):
        torch.manual_seed(0)
        x, y = torch.rand(64, 40), torch.randint(0, 10, (64,))
        net = build_network(NetworkConfig(in_features=40, num_classes=10, hidden=(32, 24, 16)), seed=1)
        trainer = Trainer(net, TrainConfig(epochs=2, batch_size=16, device="cpu", train_eval_rows=0,
                                           optimizer=OptimizerConfig("sgd", 0.05, weight_decay=3e-4)))
        assert trainer.session.normalized_input == [False, True, True]
        if switch_off:
            monkeypatch.setattr(torch.backends.mkldnn, "enabled", False)
        return net, trainer.fit(x, y)

    assert_same_training(run(False), run(True))
