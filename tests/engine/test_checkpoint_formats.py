"""Checkpoint format 2 names the model kind; format 1 files (written before kinds) load as the dense MLP
and predict exactly as they did when they were written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ff_mcp.data import load_dataset
from ff_mcp.engine import FFNetwork, NetworkConfig, build_network, load_checkpoint, save_checkpoint
from ff_mcp.engine.checkpoint import FORMAT, FORMAT_1, read_metadata

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FORMAT_1_FILE = FIXTURES / "format1-digits-32x32.safetensors"


def test_a_format_1_checkpoint_loads_as_the_dense_mlp_and_predicts_as_before():
    expected = json.loads(FORMAT_1_FILE.with_suffix(".json").read_text())
    assert read_metadata(FORMAT_1_FILE)["format"] == FORMAT_1
    checkpoint = load_checkpoint(FORMAT_1_FILE)
    assert checkpoint.kind == "ff" and checkpoint.format == FORMAT_1 and type(checkpoint.model) is FFNetwork
    x = load_dataset("digits").x_test[:40]
    model = checkpoint.model
    with torch.no_grad():
        assert model.predict(x, "goodness").tolist() == expected["goodness_labels"]
        assert model.predict(x, "readout").tolist() == expected["readout_labels"]
        torch.testing.assert_close(model.predict_scores(x[:1], "goodness")[0],
                                   torch.tensor(expected["goodness_scores_row0"]), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(model.predict_scores(x[:1], "readout")[0],
                                   torch.tensor(expected["readout_scores_row0"]), rtol=1e-5, atol=1e-6)
    # its train config predates the step selector: the old flags map onto it
    assert checkpoint.train_config["fused_step"] is True and "step" not in checkpoint.train_config


def test_format_1_train_configs_map_their_step_flags_onto_the_step():
    from ff_mcp.engine import TrainConfig

    old = json.loads(read_metadata(FORMAT_1_FILE)["train_config"])
    assert TrainConfig.from_dict(old).step == "auto"
    assert TrainConfig.from_dict({**old, "fused_step": False}).step == "autograd"
    assert TrainConfig.from_dict({**old, "native_step": True}).step == "native"
    assert TrainConfig.from_dict({**old, "cuda_graph": True}).step == "cuda_graph"
    with pytest.raises(ValueError, match="native_step and cuda_graph cannot both be on"):
        TrainConfig.from_dict({**old, "cuda_graph": True, "native_step": True})


def test_new_checkpoints_are_format_2_with_the_kind_and_its_methods(tmp_path):
    net = build_network(NetworkConfig(in_features=8, num_classes=3, hidden=(4,), label_mode="concat"))
    path = save_checkpoint(tmp_path / "m.safetensors", net)
    meta = read_metadata(path)
    assert (meta["format"], meta["model_kind"]) == (FORMAT, "ff")
    assert list(json.loads(meta["methods"])) == ["goodness", "readout"]
    assert load_checkpoint(path).kind == "ff"


def test_an_unregistered_kind_is_refused_by_name(tmp_path):
    from safetensors.torch import save_file

    from ff_mcp.engine.checkpoint import tensor_digest

    tensors = {"w": torch.zeros(2, 2)}
    save_file(tensors, str(tmp_path / "x.safetensors"), metadata={
        "format": FORMAT, "model_kind": "no_such_kind", "model_config": "{}", "sha256": tensor_digest(tensors)})
    with pytest.raises(ValueError, match=r"holds a model of kind 'no_such_kind', which is not registered here "
                                         r"\(registered: \[.*'ff'.*\]\)"):
        load_checkpoint(tmp_path / "x.safetensors")
