"""Resume: a run stopped after epoch k and resumed reaches exactly the weights of the run that never
stopped (CPU, same seed), through the CLI and the Python API; what cannot resume says why."""

from __future__ import annotations

import json

import pytest
import torch

from ff_mcp.cli import main as cli_main
from ff_mcp.data import load_dataset
from ff_mcp.engine import (
    NetworkConfig,
    OptimizerConfig,
    TrainConfig,
    Trainer,
    build_model,
    load_checkpoint,
    save_checkpoint,
)
from ff_mcp.engine.backprop import BackpropConfig

TRAIN = ["train", "--dataset", "digits", "--hidden", "32,32", "--epochs", "6", "--batch-size", "50",
         "--device", "cpu", "--quiet"]


def weights(path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def test_stopped_at_epoch_3_and_resumed_to_6_is_bitwise_the_uninterrupted_run(tmp_path, capsys):
    full, part, resumed = tmp_path / "full.safetensors", tmp_path / "part.safetensors", tmp_path / "res.safetensors"
    assert cli_main([*TRAIN, "--out", str(full)]) == 0
    assert cli_main([*TRAIN, "--stop-after", "3", "--out", str(part)]) == 0
    saved = load_checkpoint(part)
    assert saved.resume.epoch == 3 and not saved.resume.partial and saved.metrics["state"] == "stopped"
    capsys.readouterr()
    assert cli_main(["train", "--dataset", "digits", "--resume", str(part), "--epochs", "6", "--quiet", "--json",
                     "--out", str(resumed)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3, 4, 5, 6] and result["state"] == "done"
    a, b = weights(full), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(resumed).metrics["final"]["test_accuracy"] == load_checkpoint(full).metrics["final"]["test_accuracy"]


def test_resume_refuses_what_it_cannot_do(tmp_path, capsys):
    part = tmp_path / "part.safetensors"
    assert cli_main([*TRAIN, "--stop-after", "2", "--out", str(part)]) == 0
    capsys.readouterr()
    assert cli_main(["train", "--dataset", "digits", "--resume", str(part), "--epochs", "6", "--hidden", "64"]) == 2
    assert "drop --hidden" in capsys.readouterr().err
    assert cli_main(["train", "--dataset", "digits", "--resume", str(part)]) == 2
    assert "--resume needs --epochs N" in capsys.readouterr().err
    assert cli_main(["train", "--dataset", "digits", "--resume", str(part), "--epochs", "2"]) == 2
    assert "the saved run has finished 2 epochs" in capsys.readouterr().err
    assert cli_main(["train", "--dataset", "mnist1d", "--resume", str(part), "--epochs", "4"]) == 2
    assert "the run trained on 'digits', not 'mnist1d'" in capsys.readouterr().err
    bare = tmp_path / "bare.safetensors"
    ckpt = load_checkpoint(part)
    save_checkpoint(bare, ckpt.model, ckpt.train_config, ckpt.metrics, ckpt.extra)  # no resume state
    assert cli_main(["train", "--dataset", "digits", "--resume", str(bare), "--epochs", "4"]) == 2
    assert "keeps no resume state" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["ff", "backprop"])
def test_the_trainer_resumes_any_kind_with_session_state_bitwise(kind):
    data = load_dataset("digits")
    config = (NetworkConfig(in_features=64, num_classes=10, hidden=(24,), label_mode="concat") if kind == "ff"
              else BackpropConfig(in_features=64, num_classes=10, hidden=(24,)))
    train = TrainConfig(epochs=4, batch_size=64, optimizer=OptimizerConfig("adam", 1e-3), seed=3, device="cpu")
    whole = build_model(config, seed=3)
    Trainer(whole, train).fit(data.x_train, data.y_train)
    first = build_model(config, seed=3)
    trainer = Trainer(first, train)
    assert trainer.fit(data.x_train, data.y_train, stop_after=2).state == "stopped"
    state = trainer.resume_state
    second = Trainer(first, train)  # a new trainer (and session) on the same weights
    assert second.fit(data.x_train, data.y_train, resume=state).state == "done"
    a, b = whole.state_dict(), first.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_resume_state_is_a_snapshot_and_a_cancel_in_evaluation_keeps_the_whole_epoch():
    data = load_dataset("digits")
    config = NetworkConfig(in_features=64, num_classes=10, hidden=(16,), label_mode="concat")
    train = TrainConfig(epochs=4, batch_size=64, optimizer=OptimizerConfig("adam", 1e-3), seed=5, device="cpu")
    model = build_model(config, seed=5)
    trainer = Trainer(model, train)
    trainer.fit(data.x_train, data.y_train, stop_after=2)
    state = trainer.resume_state
    step_before = state.session["optimizers"][0]["state"][0]["step"].clone()
    Trainer(model, train).fit(data.x_train, data.y_train, resume=state)
    assert torch.equal(state.session["optimizers"][0]["state"][0]["step"], step_before)  # not moved by training on

    steps = -(-data.train_size // 64)
    polls = []
    stopping = Trainer(build_model(config, seed=5), train, should_stop=lambda: polls.append(1) or len(polls) > steps)
    assert stopping.fit(data.x_train, data.y_train, data.x_test, data.y_test).state == "cancelled"
    kept = stopping.resume_state  # stopped in epoch 1's evaluation: epoch 1's training is whole
    assert kept.epoch == 1 and not kept.partial and len(kept.history) == 1


def test_a_greedy_run_resumes_only_with_its_own_epochs(tmp_path, capsys):
    part = tmp_path / "greedy.safetensors"
    assert cli_main(["train", "--dataset", "digits", "--hidden", "16,16", "--epochs", "3", "--schedule", "greedy",
                     "--device", "cpu", "--quiet", "--stop-after", "4", "--out", str(part)]) == 0
    capsys.readouterr()
    assert cli_main(["train", "--dataset", "digits", "--resume", str(part), "--epochs", "5"]) == 2
    assert "can only go on with its own --epochs 3" in capsys.readouterr().err
    assert cli_main(["train", "--dataset", "digits", "--resume", str(part), "--epochs", "3", "--quiet"]) == 0
    assert cli_main(["train", "--dataset", "digits", "--limit-train", "500", "--resume", str(part),
                     "--epochs", "3"]) == 2
    assert "give the same --limit-train" in capsys.readouterr().err
