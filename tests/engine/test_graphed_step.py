"""The CUDA-graph step's bookkeeping, checked on CPU with a stand-in graph that replays the captured
body and refuses to replay under hyperparameters other than those it was captured with (a real
graph would silently keep the old ones). tests/engine/test_cuda.py runs the real graph on a GPU."""

import pytest
import torch

from ff_mcp.data import load_dataset
from ff_mcp.engine import NetworkConfig, OptimizerConfig, Trainer, TrainConfig, build_network
from ff_mcp.engine.graphed import GraphedStep
from ff_mcp.engine.pipeline import PipelineTrainer


class StandInGraph:
    captured = 0

    def __init__(self, body, optimizers, stream=None):
        self.body, self.optimizers, self.baked = body, optimizers, self.hyper(optimizers)
        StandInGraph.captured += 1

    @staticmethod
    def hyper(optimizers):
        return [{k: v for k, v in g.items() if k != "params"} for opt in optimizers for g in opt.param_groups]

    def replay(self):
        assert self.hyper(self.optimizers) == self.baked, "replayed under hyperparameters it was not captured with"
        self.body()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def fit(digits, graphed, train_kw, net_kw=None):
    net = build_network(NetworkConfig(in_features=64, num_classes=10, hidden=(48, 32, 32), **(net_kw or {})), seed=4)
    config = TrainConfig(device="cpu", seed=9, train_eval_rows=0, **train_kw)
    trainer = Trainer(net, config)
    if graphed:  # what step="cuda_graph" does on a GPU, with the stand-in graph
        trainer.session._use_graph, trainer.session._graph_factory = True, StandInGraph
    result = trainer.fit(digits.x_train, digits.y_train)
    return net, result, trainer


CASES = {
    "sgd, loeweX's cooldown": {"epochs": 6, "batch_size": 200, "optimizer": OptimizerConfig("sgd", 0.05, weight_decay=3e-4)},
    "adam, hard negatives": {"epochs": 3, "batch_size": 64, "negatives": "hard", "optimizer": OptimizerConfig("adam", 5e-3)},
    "adam, no cooldown": {"epochs": 2, "batch_size": 128, "cooldown": False, "optimizer": OptimizerConfig("adam", 5e-3)},
}


@pytest.mark.parametrize("case", list(CASES))
def test_graphed_steps_train_the_eager_weights_and_statistics(digits, case):
    StandInGraph.captured = 0
    eager_net, eager, _ = fit(digits, False, CASES[case])
    graph_net, graphed, trainer = fit(digits, True, CASES[case])
    se, sg = eager_net.state_dict(), graph_net.state_dict()
    assert all(torch.equal(se[k], sg[k]) for k in se)
    for he, hg in zip(eager.history, graphed.history):
        assert hg["loss"] == pytest.approx(he["loss"], rel=1e-6)
        assert hg["readout_loss"] == pytest.approx(he["readout_loss"], rel=1e-6)
        assert [m["goodness_pos"] for m in hg["layers"]] == pytest.approx([m["goodness_pos"] for m in he["layers"]])
    cfg = CASES[case]
    # one capture, then one more for each epoch whose learning rate differs from the last one's
    epochs = cfg["epochs"]
    factors = [2.0 * (1 + epochs - e) / epochs if cfg.get("cooldown", True) and e > epochs // 2 else 1.0
               for e in range(epochs)]
    lr_changes = sum(a != b for a, b in zip(factors, factors[1:]))
    assert StandInGraph.captured == graphed.cuda_graph["captures"] == 1 + lr_changes
    assert graphed.cuda_graph == {"captures": 1 + lr_changes, "eager_warmup_steps": GraphedStep.WARMUP, "error": None}
    assert trainer.session._graphed is None  # released with its memory once fit returns


def test_short_last_batches_run_eagerly_beside_the_graph(digits):
    steps = []
    net = build_network(NetworkConfig(in_features=64, num_classes=10, hidden=(16, 16)), seed=0)
    trainer = Trainer(net, TrainConfig(epochs=1, batch_size=500, device="cpu", train_eval_rows=0))
    trainer.session._use_graph, trainer.session._graph_factory = True, StandInGraph
    eager_step = trainer.session.train_step
    trainer.session.train_step = lambda x, *a, **kw: steps.append(x.shape[0]) or eager_step(x, *a, **kw)
    trainer.fit(digits.x_train, digits.y_train)
    assert steps == [500, 500, 347]  # two full batches (the first warm-up steps) and the rest, eagerly


def test_cuda_graph_without_a_gpu_names_what_it_needs():
    net = build_network(NetworkConfig(in_features=64, num_classes=10, hidden=(16, 16)), seed=0)
    with pytest.raises(ValueError, match="step 'cuda_graph' needs a CUDA device, got 'cpu'"):
        Trainer(net, TrainConfig(device="cpu", step="cuda_graph"))


@pytest.mark.parametrize("train_kw, message", [
    ({"schedule": "greedy"}, "schedule 'simultaneous', got 'greedy'"),
    ({"negatives": "hybrid"}, "negatives that only change the label ('wrong_label' or 'hard'), got 'hybrid'"),
    ({"activation": "gelu"}, "the fused step on every layer"),
    ({"optimizer": OptimizerConfig("adam", 1e-3, fused=False)}, "the fused Adam"),
])
def test_cuda_graph_names_every_setting_it_cannot_capture(train_kw, message):
    net_kw = {"activation": train_kw.pop("activation")} if "activation" in train_kw else {}
    net = build_network(NetworkConfig(in_features=64, num_classes=10, hidden=(16, 16), **net_kw), seed=0)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Trainer(net, TrainConfig(device="cpu", step="cuda_graph", **train_kw))


def test_the_pipeline_refuses_cuda_graph():
    net = build_network(NetworkConfig(in_features=64, num_classes=10, hidden=(16, 16)), seed=0)
    with pytest.raises(ValueError, match="the single-process Trainer"):
        PipelineTrainer(net, TrainConfig(device="cpu", step="cuda_graph"), stages=2)


def test_a_failed_capture_leaves_the_run_eager_and_says_why(digits, caplog):
    def refused(body, optimizers, stream=None):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore detail")

    eager_net, eager, _ = fit(digits, False, CASES["adam, no cooldown"])
    net = build_network(NetworkConfig(in_features=64, num_classes=10, hidden=(48, 32, 32)), seed=4)
    trainer = Trainer(net, TrainConfig(device="cpu", seed=9, train_eval_rows=0, **CASES["adam, no cooldown"]))
    trainer.session._use_graph, trainer.session._graph_factory = True, refused
    with caplog.at_level("WARNING", logger="ff_mcp.engine.graphed"):
        result = trainer.fit(digits.x_train, digits.y_train)
    assert result.cuda_graph["error"] == "CUDA error: operation not permitted when stream is capturing"
    assert result.cuda_graph["captures"] == 0
    assert "runs eagerly from here on" in caplog.text
    se, sg = eager_net.state_dict(), net.state_dict()
    assert all(torch.equal(se[k], sg[k]) for k in se)  # the step that failed to capture ran, once
