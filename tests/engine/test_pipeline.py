"""The threaded pipeline: same weights as simultaneous training, balanced stages, stopping, errors."""

import threading

import pytest
import torch

from ff_mcp.data import load_dataset
from ff_mcp.engine import NetworkConfig, OptimizerConfig, Trainer, TrainConfig, accuracy, build_network
from ff_mcp.engine.pipeline import PipelineTrainer, split_layers


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(autouse=True)
def one_thread():
    """Bit-identical comparisons need the same intra-op thread count on both sides."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def digits_net(hidden=(32, 32, 32, 32), **kw):
    cfg = NetworkConfig(in_features=64, num_classes=10, hidden=hidden, label_mode="concat", **kw)
    return build_network(cfg, seed=7)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("stages", [1, 2, 4, [range(0, 3), range(3, 4)]])
def test_pipelined_training_gives_the_weights_of_simultaneous_training(digits, stages):
    config = TrainConfig(epochs=2, batch_size=64, seed=3, device="cpu")
    plain, piped = digits_net(), digits_net()
    expected = Trainer(plain, config).fit(digits.x_train, digits.y_train)
    result = PipelineTrainer(piped, config, stages=stages, threads_per_stage=1).fit(digits.x_train, digits.y_train)
    assert same_weights(plain, piped)
    assert [h["loss"] for h in result.history] == [h["loss"] for h in expected.history]
    assert result.samples_seen == expected.samples_seen == 2 * digits.x_train.shape[0]


@pytest.mark.parametrize("variant", [
    {"net": {"readout": False}, "train": {}},
    {"net": {"peer_norm": 0.03, "skip_first_layer": False}, "train": {"negatives": "hard", "cooldown": True}},
    {"net": {}, "train": {"optimizer": OptimizerConfig("sgd", 0.05, weight_decay=3e-4)}},
    {"net": {"skip_first_layer": False}, "train": {"amp": "bf16"}},
])
def test_pipelined_training_matches_without_readout_with_peer_norm_hard_negatives_sgd_and_bf16(digits, variant):
    config = TrainConfig(epochs=2, batch_size=100, seed=5, device="cpu", **variant["train"])
    plain, piped = digits_net(**variant["net"]), digits_net(**variant["net"])
    Trainer(plain, config).fit(digits.x_train, digits.y_train)
    PipelineTrainer(piped, config, stages=3, threads_per_stage=1).fit(digits.x_train, digits.y_train)
    assert same_weights(plain, piped)


def test_pipelined_training_learns_digits(digits):
    net = digits_net(hidden=(64, 64))
    config = TrainConfig(epochs=4, batch_size=50, seed=0, device="cpu", predict_method="readout",
                         optimizer=OptimizerConfig("adam", 5e-3))
    result = PipelineTrainer(net, config, stages=2).fit(digits.x_train, digits.y_train, digits.x_test, digits.y_test)
    assert result.state == "done"
    assert result.final["test_accuracy"] > 0.85
    assert accuracy(net, digits.x_test, digits.y_test, "readout") == result.final["test_accuracy"]


def test_balanced_split_gives_the_costly_layers_their_own_stage():
    assert split_layers([784, 2000, 2000, 2000, 2000], 2) == [range(0, 2), range(2, 4)]
    assert split_layers([784, 2000, 2000, 2000, 2000], 4) == [range(i, i + 1) for i in range(4)]
    assert split_layers([10, 100, 10, 10, 10], 2) == [range(0, 1), range(1, 4)]


def test_more_stages_than_layers_is_refused():
    with pytest.raises(ValueError, match=r"stages must be in \[1, 2\] \(one layer at least per stage\), got 3"):
        PipelineTrainer(digits_net(hidden=(8, 8)), TrainConfig(device="cpu"), stages=3)


def test_stages_that_skip_a_layer_are_refused():
    with pytest.raises(ValueError, match=r"contiguous ranges covering layers 0..3 in order, got \[\(0, 1\), \(2, 4\)\]"):
        PipelineTrainer(digits_net(), TrainConfig(device="cpu"), stages=[range(0, 1), range(2, 4)])


def test_greedy_schedule_is_refused():
    with pytest.raises(ValueError, match="pipelined training needs schedule 'simultaneous', got 'greedy'"):
        PipelineTrainer(digits_net(), TrainConfig(device="cpu", schedule="greedy"))


def test_stopping_lets_the_batches_in_flight_finish_in_every_layer(digits):
    config = TrainConfig(epochs=3, batch_size=50, seed=2, device="cpu")
    polls = []
    piped = digits_net()
    result = PipelineTrainer(piped, config, stages=4, should_stop=lambda: polls.append(1) or len(polls) >= 3,
                             threads_per_stage=1).fit(digits.x_train, digits.y_train)
    assert result.state == "cancelled" and len(result.history) == 1
    steps = result.samples_seen // 50
    assert 3 <= steps <= 3 + 4 + 1  # those polled plus at most the ones already in the pipeline
    # the network is the one simultaneous training reaches after the same number of mini-batches
    plain, taken = digits_net(), []
    Trainer(plain, config, should_stop=lambda: taken.append(1) or len(taken) >= steps).fit(digits.x_train, digits.y_train)
    assert same_weights(plain, piped)


def test_batch_callbacks_count_every_mini_batch_in_order(digits):
    seen = []

    class Recorder:
        def on_batch_end(self, epoch, step, steps):
            seen.append((epoch, step, steps))

    config = TrainConfig(epochs=2, batch_size=500, device="cpu")
    PipelineTrainer(digits_net(), config, stages=2, callbacks=[Recorder()]).fit(digits.x_train, digits.y_train)
    steps = -(-digits.x_train.shape[0] // 500)
    assert seen == [(e, s, steps) for e in (1, 2) for s in range(1, steps + 1)]


def test_an_error_in_a_stage_reaches_the_caller_and_stops_every_thread(digits):
    net = digits_net()

    def broken(x, rows):
        raise RuntimeError("layer 2 is broken")

    net.layers[2].forward_train = broken
    trainer = PipelineTrainer(net, TrainConfig(epochs=1, batch_size=50, device="cpu", step="autograd"), stages=4)
    with pytest.raises(RuntimeError, match="layer 2 is broken"):
        trainer.fit(digits.x_train, digits.y_train)
    assert not [t for t in threading.enumerate() if t.name.startswith("ff-stage-")]
