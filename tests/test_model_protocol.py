"""A model kind defined only here, with its own loss that needs labels, its own contrast and its own
prediction method, trains, saves, reloads and predicts through the trainer, `ff-mcp train --variant`,
`ff-mcp eval` and the MCP tools, with no edit to ff_mcp/.

The kind ("test_centroid") is a small Distance-Forward-like model: each layer keeps one centroid per
class (a buffer, moved by an exponential average of its class's activities); its local loss is the
cross-entropy of -||h - c_k||^2 over the classes (it needs the labels) plus a softplus that pushes the
goodness of its own negatives (each row's features mixed with another row's) under a threshold; it
predicts by the nearest centroid summed over layers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pytest
import torch
import torch.nn.functional as F
from mcp import Client
from torch import nn

from ff_mcp.cli import main as cli_main
from ff_mcp.data import load_dataset
from ff_mcp.engine import (
    Batch,
    FFModel,
    OptimizerConfig,
    Session,
    Trainer,
    TrainConfig,
    build_model,
    load_checkpoint,
    register_model_kind,
    save_checkpoint,
)
from ff_mcp.engine.protocol import DataSpec, _KINDS
from ff_mcp.server import Limits, ServerConfig, build_server


@dataclass(frozen=True)
class CentroidConfig:
    in_features: int
    num_classes: int
    hidden: tuple[int, ...] = (64,)
    threshold: float = 2.0  # negatives' mean squared activity is pushed under this
    momentum: float = 0.9  # of the centroids' moving average

    def to_dict(self) -> dict:
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, d: dict) -> "CentroidConfig":
        return cls(**{**d, "hidden": tuple(d["hidden"])})


@dataclass(frozen=True)
class CentroidOptions:
    threshold: float = field(default=2.0, metadata={"help": "goodness threshold for the negatives"})
    momentum: float = field(default=0.9, metadata={"help": "centroid moving-average momentum"})

    def __post_init__(self) -> None:
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")


def mixed_rows(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """This kind's own contrast: each row's features, half of them taken from another row of the batch."""
    partner = torch.randperm(x.shape[0], generator=generator, device=x.device)
    take = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    return torch.where(take, x[partner], x)


class CentroidLayer(nn.Module):
    def __init__(self, fan_in: int, fan_out: int, classes: int, generator: torch.Generator | None) -> None:
        super().__init__()
        self.linear = nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            bound = 1.0 / fan_in**0.5
            self.linear.weight.uniform_(-bound, bound, generator=generator)
            self.linear.bias.zero_()
        self.register_buffer("centroids", torch.zeros(classes, fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / (x.norm(dim=1, keepdim=True) + 1e-6)
        return F.relu(self.linear(x))

    def class_logits(self, h: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(h, self.centroids).square()


@register_model_kind
class CentroidModel(FFModel):
    kind = "test_centroid"
    description = "test-only: per-class centroids per layer, nearest-centroid prediction"
    config_class = CentroidConfig
    options_class = CentroidOptions

    def __init__(self, config: CentroidConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        widths = [config.in_features, *config.hidden]
        self.layers = nn.ModuleList(CentroidLayer(widths[i], widths[i + 1], config.num_classes, generator)
                                    for i in range(len(config.hidden)))

    @classmethod
    def build_config(cls, data: DataSpec, hidden, options, train=None) -> CentroidConfig:
        options = options or CentroidOptions()
        return CentroidConfig(data.in_features, data.num_classes, tuple(hidden), options.threshold, options.momentum)

    def local_units(self):
        return list(self.layers)

    def training_session(self, config, device):
        return CentroidSession(self, config, device)

    def prediction_methods(self):
        return {"nearest_centroid": "minus the squared distance to each class's centroids, summed over layers"}

    def predict_scores(self, x, method=None):
        self.check_method(method)
        scores = 0
        for layer in self.layers:
            x = layer(x)
            scores = scores + layer.class_logits(x)
        return scores

    def layer_goodness(self, x, labels=None):
        out = []
        for layer in self.layers:
            x = layer(x)
            g = x.square().mean(dim=1)
            out.append({"goodness": g, "p_positive": torch.sigmoid(g - self.config.threshold)})
        return out


class CentroidSession(Session):
    step_kind = "autograd"

    def __init__(self, model, config, device):
        super().__init__(model, config, device)
        self.optimizers = [config.optimizer.build(list(layer.parameters())) for layer in model.layers]
        self.seen_epochs: list[int] = []

    def set_lr_factor(self, factor, units):
        for i in units:
            for group in self.optimizers[i].param_groups:
                group["lr"] = self.config.optimizer.lr * factor

    def begin_epoch(self, epoch, units, x_train, y_train):
        self.seen_epochs.append(epoch)

    def step(self, batch: Batch, generator, units, stats):
        cfg = self.model.config
        z, z_neg = batch.x, mixed_rows(batch.x, generator)
        for i in units:
            layer, opt = self.model.layers[i], self.optimizers[i]
            h, h_neg = layer(z.detach()), layer(z_neg.detach())
            with torch.no_grad():  # move each class's centroid toward its rows' mean activity
                for k in batch.y.unique():
                    mean = h[batch.y == k].mean(dim=0)
                    layer.centroids[k].mul_(cfg.momentum).add_(mean, alpha=1 - cfg.momentum)
            g_pos, g_neg = h.square().mean(dim=1), h_neg.square().mean(dim=1)
            loss = F.cross_entropy(layer.class_logits(h), batch.y) + F.softplus(g_neg - cfg.threshold).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            stats[i] += torch.stack([loss.detach(), g_pos.detach().sum(), g_neg.detach().sum()])
            z, z_neg = h.detach(), h_neg.detach()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(autouse=True)
def registered():
    register_model_kind(CentroidModel)  # another test may have replaced the registry entry
    yield
    assert _KINDS["test_centroid"] is CentroidModel


CONFIG = TrainConfig(epochs=4, batch_size=32, optimizer=OptimizerConfig("adam", 3e-2), device="cpu", seed=2)


def test_a_test_only_kind_trains_through_the_trainer_and_reloads_from_its_checkpoint(digits, tmp_path):
    model = build_model(CentroidConfig(64, 10, (64, 32)), seed=2)
    trainer = Trainer(model, CONFIG)
    result = trainer.fit(digits.x_train, digits.y_train, digits.x_test, digits.y_test)
    final = result.final
    assert final["predict_method"] == "nearest_centroid"
    assert final["test_accuracy"] >= 0.9, final
    assert [m["layer"] for m in final["layers"]] == [0, 1]
    assert trainer.session.seen_epochs == [0, 1, 2, 3]  # begin_epoch is called for every epoch
    assert result.history[0]["loss"] > final["loss"]

    path = save_checkpoint(tmp_path / "c.safetensors", model, CONFIG.to_dict(), {"final": final})
    loaded = load_checkpoint(path)
    assert loaded.kind == "test_centroid" and type(loaded.model) is CentroidModel
    with torch.no_grad():
        assert torch.equal(loaded.model.predict(digits.x_test), model.eval().predict(digits.x_test))
    assert torch.equal(loaded.model.layers[1].centroids, model.layers[1].centroids)  # buffers travel


def test_the_same_seed_gives_the_same_weights_for_a_new_kind(digits):
    a, b = (build_model(CentroidConfig(64, 10, (16,)), seed=4) for _ in range(2))
    for model in (a, b):
        Trainer(model, TrainConfig(epochs=1, batch_size=64, device="cpu", seed=4)).fit(digits.x_train, digits.y_train)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_fast_step_the_kind_lacks_is_refused_with_its_reason():
    model = build_model(CentroidConfig(64, 10, (8,)))
    with pytest.raises(ValueError, match=r"step 'native' is not available for model kind 'test_centroid'; "
                                         r"it has \['auto', 'autograd'\]"):
        Trainer(model, TrainConfig(device="cpu", step="native"))
    with pytest.raises(ValueError, match=r"method must be one of \['nearest_centroid'\]"):
        Trainer(model, TrainConfig(device="cpu", predict_method="goodness"))


def test_an_unknown_kind_in_a_checkpoint_is_an_error_naming_it(tmp_path):
    path = save_checkpoint(tmp_path / "c.safetensors", build_model(CentroidConfig(64, 10, (8,))))
    del _KINDS["test_centroid"]
    try:
        with pytest.raises(ValueError, match="kind 'test_centroid', which is not registered here"):
            load_checkpoint(path)
    finally:
        register_model_kind(CentroidModel)


def test_cli_trains_evaluates_and_lists_the_variant(tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    code = cli_main(["train", "--dataset", "digits", "--variant", "test_centroid", "--opt", "momentum=0.8",
                     "--hidden", "48", "--epochs", "3", "--batch-size", "32", "--lr", "3e-2", "--out", str(out),
                     "--json", "--quiet", "--device", "cpu"])
    assert code == 0
    trained = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert trained["variant"] == "test_centroid" and trained["predict_method"] == "nearest_centroid"
    assert trained["test_accuracy"] >= 0.85
    assert load_checkpoint(out).model.config.momentum == 0.8  # the option reached the model

    assert cli_main(["eval", "--model", str(out), "--dataset", "digits", "--json", "--device", "cpu"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["test_accuracy_nearest_centroid"] == pytest.approx(trained["test_accuracy"])
    assert evaluated["variant"] == "test_centroid"

    assert cli_main(["variants", "--json"]) == 0
    catalog = {v["name"]: v for v in json.loads(capsys.readouterr().out)["variants"]}
    assert [o["name"] for o in catalog["test_centroid"]["options"]] == ["threshold", "momentum"]
    assert catalog["ff"]["options"][0] == {"name": "goodness", "type": "a string", "default": "sum_squares",
                                           "help": "goodness of a layer's activity (sum_squares: Hinton)"}


@pytest.mark.parametrize("opt, message", [
    ("momentun=0.5", "unknown option 'momentun' for variant 'test_centroid'; its options are ['momentum', 'threshold']"),
    ("momentum=fast", "option 'momentum' of variant 'test_centroid' must be a finite number, got 'fast'"),
    ("momentum=1.5", "momentum must be in [0, 1), got 1.5"),
])
def test_cli_refuses_a_bad_option_naming_it(opt, message, capsys):
    code = cli_main(["train", "--dataset", "digits", "--variant", "test_centroid", "--opt", opt, "--epochs", "1",
                     "--quiet", "--device", "cpu"])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"


def test_cli_refuses_a_dense_flag_for_another_variant(capsys):
    code = cli_main(["train", "--dataset", "digits", "--variant", "test_centroid", "--goodness", "mean_squares",
                     "--epochs", "1", "--quiet", "--device", "cpu"])
    assert code == 2
    assert "goodness is an option of variant 'ff'" in capsys.readouterr().err


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_mcp_tools_train_predict_and_describe_the_variant(tmp_path, digits):
    limits = Limits(max_rows=2000, max_features=64, max_classes=10, max_hidden=64, max_depth=3, max_epochs=10,
                    max_batch_size=100, max_wait_seconds=120, max_concurrent_jobs=1, max_queued_jobs=4)
    server = build_server(ServerConfig(home=tmp_path / "home", limits=limits))
    x, y = digits.x_train[:600].tolist(), digits.y_train[:600].tolist()
    async with Client(server) as client:
        variants = (await client.call_tool("ff_variants", {})).structured_content["variants"]
        assert "test_centroid" in {v["name"] for v in variants}

        bad = await client.call_tool("ff_train", {"name": "c", "x": x, "y": y, "variant": "test_centroid",
                                                  "options": {"treshold": 1.0}})
        assert bad.is_error and "unknown option 'treshold' for variant 'test_centroid'" in bad.content[0].text

        res = await client.call_tool("ff_train", {
            "name": "c", "x": x, "y": y, "variant": "test_centroid", "options": {"threshold": 1.5},
            "hidden": [32], "epochs": 4, "batch_size": 32, "lr": 3e-2, "wait_seconds": 100})
        assert not res.is_error, res.content[0].text
        job = res.structured_content
        assert job["state"] == "done" and job["metrics"]["test_accuracy"] >= 0.8, job

        info = (await client.call_tool("ff_model_info", {"model": "c"})).structured_content
        assert info["kind"] == "test_centroid" and info["methods"] == ["nearest_centroid"]
        assert info["config"]["threshold"] == 1.5

        rows = digits.x_test[:50]
        pred = await client.call_tool("ff_predict", {"model": "c", "x": rows.tolist(), "method": "nearest_centroid"})
        assert not pred.is_error, pred.content[0].text
        labels = pred.structured_content["labels"]
        model = load_checkpoint(tmp_path / "home" / "models" / "c.safetensors").model
        with torch.no_grad():
            assert labels == model.predict(rows).tolist()
        assert sum(a == b for a, b in zip(labels, digits.y_test[:50].tolist())) >= 35  # chance is 5

        wrong = await client.call_tool("ff_predict", {"model": "c", "x": rows.tolist(), "method": "goodness"})
        assert wrong.is_error and "method must be one of ['nearest_centroid']" in wrong.content[0].text

        good = (await client.call_tool("ff_goodness", {"model": "c", "x": rows[:3].tolist()})).structured_content
        assert len(good["layers"]) == 1 and len(good["layers"][0]["goodness"]) == 3


# ---- data types ----------------------------------------------------------------------------------

def test_a_graph_is_validated_field_by_field():
    from ff_mcp.engine import Graph

    x, edges, y = torch.rand(4, 3), torch.tensor([[0, 1, 2], [1, 2, 3]]), torch.tensor([0, 1, -1, 1])
    train = torch.tensor([True, True, False, False])
    graph = Graph(x, edges, y, train)
    assert graph.num_nodes == 4
    with pytest.raises(ValueError, match=r"edge_index node ids must be in \[0, 4\), got 0..4"):
        Graph(x, torch.tensor([[0, 1], [1, 4]]), y, train)
    with pytest.raises(ValueError, match="train_mask selects unlabelled nodes"):
        Graph(x, edges, y, torch.tensor([True, False, True, False]))
    with pytest.raises(ValueError, match="x must hold finite numbers"):
        Graph(torch.full((4, 3), float("nan")), edges, y, train)
    with pytest.raises(ValueError, match=r"y labels must be >= 0, or -1"):
        Graph(x, edges, torch.tensor([0, 1, -2, 1]), train)


def test_images_are_checked_against_their_shape():
    from ff_mcp.engine import check_images

    check_images(torch.rand(2, 1, 28, 28), (1, 28, 28))
    with pytest.raises(ValueError, match=r"x must be images \(N, 3, 32, 32\) of floats, got \(2, 1, 28, 28\)"):
        check_images(torch.rand(2, 1, 28, 28), (3, 32, 32))


def test_a_kind_missing_a_required_method_cannot_be_built():
    class Incomplete(FFModel):
        kind = "incomplete"
        config_class = CentroidConfig

        def __init__(self, config, generator=None):
            super().__init__()
            self.config = config

    with pytest.raises(TypeError, match="abstract method"):
        Incomplete(CentroidConfig(4, 2))
