"""The pipeline across processes: two gloo ranks on localhost train the weights the threaded pipeline does."""

import os
import signal
import subprocess
import sys

import pytest
import torch

from ff_mcp.data import load_dataset
from ff_mcp.engine import NetworkConfig, TrainConfig, build_network, load_checkpoint
from ff_mcp.engine.distributed import DistributedPipelineTrainer, launch_env, pipeline_trainer, train_local_processes
from ff_mcp.engine.pipeline import PipelineTrainer

NET = NetworkConfig(in_features=64, num_classes=10, hidden=(32, 32, 32, 32), label_mode="concat")


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the ranks run one intra-op thread each; so must the reference
    yield
    torch.set_num_threads(previous)


def test_two_gloo_processes_train_the_weights_of_the_threaded_pipeline():
    data = load_dataset("digits")
    # layer 0 is scored, so rank 0 sends its readout features beside z; hard negatives are drawn by
    # rank 0 from the whole network, so the epoch-end exchange must be complete
    net = NetworkConfig(**{**NET.to_dict(), "skip_first_layer": False})
    config = TrainConfig(epochs=2, batch_size=50, seed=11, device="cpu", negatives="hard")
    stages = [range(0, 2), range(2, 4)]
    state, result, timings = train_local_processes(net, config, data.x_train, data.y_train, nprocs=2, stages=stages,
                                                   x_test=data.x_test, y_test=data.y_test)
    reference = build_network(net, seed=11)
    expected = PipelineTrainer(reference, config, stages=stages, threads_per_stage=1).fit(
        data.x_train, data.y_train, data.x_test, data.y_test)
    assert state.keys() == reference.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in reference.state_dict().items())
    timing = ("train_seconds", "epoch_seconds", "samples_per_second")
    strip = lambda history: [{k: v for k, v in h.items() if k not in timing} for h in history]  # noqa: E731
    assert strip(result.history) == strip(expected.history)
    assert [t["layers"] for t in timings] == [[0, 2], [2, 4]]


def test_the_distributed_trainer_needs_a_process_group():
    with pytest.raises(ValueError, match="needs a torch.distributed process group"):
        DistributedPipelineTrainer(build_network(NET), TrainConfig(device="cpu"))


def test_without_torchrun_the_threaded_pipeline_is_chosen(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert launch_env() is None
    trainer = pipeline_trainer(build_network(NET), TrainConfig(device="cpu"))
    # the balanced split of 74 x 32, 32 x 32, 32 x 32, 32 x 32
    assert isinstance(trainer, PipelineTrainer) and trainer.stages == [range(0, 1), range(1, 4)]


def test_torchrun_writes_one_checkpoint_with_the_threaded_pipelines_weights(tmp_path):
    out = tmp_path / "m.safetensors"
    args = ["--dataset", "digits", "--hidden", "32,32,32,32", "--epochs", "2", "--batch-size", "50", "--seed", "4",
            "--device", "cpu", "--pipeline", "--quiet", "--json"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               "-m", "ff_mcp", "train", *args, "--out", str(out)]
    # its own session, so that a hang takes torchrun's workers down with it
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**_env(), "OMP_NUM_THREADS": "1"})
    try:
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr[-2000:]
    lines = stdout.strip().splitlines()  # rank 0 reports, rank 1 stays quiet
    assert sum('"history"' in line for line in lines) == 1 and sum('"event": "epoch"' in line for line in lines) == 2
    saved = load_checkpoint(out).network
    reference = build_network(saved.config, seed=4)
    data = load_dataset("digits")
    config = TrainConfig(epochs=2, batch_size=50, seed=4, device="cpu")
    PipelineTrainer(reference, config, stages=2, threads_per_stage=1).fit(data.x_train, data.y_train)
    assert all(torch.equal(saved.state_dict()[k], v) for k, v in reference.state_dict().items())


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
