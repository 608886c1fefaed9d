"""The model registry: name validation, paths that stay inside, atomic files, restarts, and the job manager."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch

from ff_mcp.engine import CheckpointError, NetworkConfig, build_network
from ff_mcp.server.jobs import JobManager, UnknownJobError
from ff_mcp.server.registry import ModelRegistry, UnknownModelError, validate_name


def network(seed: int = 0):
    return build_network(NetworkConfig(in_features=4, num_classes=3, hidden=(8, 8), label_mode="concat"), seed=seed)


@pytest.mark.parametrize("name", [".", "..", "", "a/b", "a\\b", "x" * 65, "../etc", "a b", "é", None, 3, "a\x00"])
def test_bad_names_are_refused_with_the_rule(name):
    with pytest.raises(ValueError, match="1-64 characters from A-Z a-z 0-9 _ . -"):
        validate_name(name)


@pytest.mark.parametrize("name", ["a", "A.b-c_1", "x" * 64, "...", ".hidden"])
def test_good_names_map_to_a_file_inside_the_models_directory(tmp_path, name):
    registry = ModelRegistry(tmp_path)
    path = registry.path_for(name)
    assert path.parent == registry.models_dir and path.name == f"{name}.safetensors"


def test_a_symlink_pointing_outside_the_registry_is_refused(tmp_path):
    registry = ModelRegistry(tmp_path / "home")
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(b"x")
    (registry.models_dir / "evil.safetensors").symlink_to(outside)
    with pytest.raises(ValueError, match="outside the registry"):
        registry.path_for("evil")


def test_a_model_saved_by_one_registry_loads_in_the_next(tmp_path):
    net = network()
    card = ModelRegistry(tmp_path).save("m", net, {"epochs": 1}, {"state": "done", "final": {"epoch": 1}}, {"dataset": "d"})
    assert card.name == "m" and card.dataset == "d" and card.metrics == {"epoch": 1} and card.bytes > 0
    reopened = ModelRegistry(tmp_path)
    x = torch.rand(5, 4)
    loaded = reopened.load("m").network
    assert torch.equal(loaded.predict_scores(x), net.eval().predict_scores(x))
    assert [c.name for c in reopened.list()] == ["m"]


def test_load_is_cached_until_the_file_changes(tmp_path):
    registry = ModelRegistry(tmp_path)
    registry.save("m", network(0))
    first = registry.load("m")
    assert registry.load("m") is first
    registry.save("m", network(1))
    assert registry.load("m") is not first


def test_temporary_files_are_never_listed_and_stale_ones_are_removed_on_open(tmp_path):
    registry = ModelRegistry(tmp_path)
    registry.save("m", network())
    stale = registry.models_dir / ".m.safetensors.old.tmp"
    fresh = registry.models_dir / ".n.safetensors.new.tmp"
    for path in (stale, fresh):
        path.write_bytes(b"partial")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    (registry.models_dir / "bad name.safetensors").write_bytes(b"x")
    assert registry.names() == ["m"]
    ModelRegistry(tmp_path)
    assert not stale.exists() and fresh.exists()  # a fresh one may belong to a live writer


def test_with_no_other_live_server_every_temporary_file_is_removed_at_start(tmp_path):
    registry = ModelRegistry(tmp_path)
    fresh = registry.models_dir / ".m.safetensors.killed.tmp"
    fresh.write_bytes(b"partial")  # written a moment ago by a writer that was killed
    registry.close()
    reopened = ModelRegistry(tmp_path)
    assert not fresh.exists()
    reopened.close()


def test_errors_about_damaged_models_name_the_model_never_a_host_path(tmp_path):
    registry = ModelRegistry(tmp_path)
    registry.save("m", network())
    path = registry.path_for("m")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError) as caught:
        registry.load("m")  # the header is whole, the tensors are cut
    assert "model 'm'" in str(caught.value) and str(tmp_path) not in str(caught.value)
    assert "safetensors" not in str(caught.value)
    path.write_bytes(b"\x01")
    with pytest.raises(CheckpointError) as caught:
        registry.info("m")
    assert str(caught.value) == "model 'm' is truncated (1 bytes)"


def test_a_model_being_written_is_refused_to_a_second_writer(tmp_path):
    registry = ModelRegistry(tmp_path)
    with registry.writing("m", "an ff_color_learn call"):
        with pytest.raises(ValueError, match="model 'm' is being written by an ff_color_learn call; wait"):
            registry.claim("m", "a training job")
        registry.claim("other", "a training job")  # other names are free
    registry.claim("m", "a training job")  # released when the block ended
    registry.release("m", "an ff_color_learn call")  # a release by a non-holder changes nothing
    assert registry.writer_of("m") == "a training job"


def test_a_queued_job_cancelled_before_it_ran_still_runs_its_cleanup():
    released = []
    jobs = JobManager(max_concurrent=1, max_jobs=4)
    gate = threading.Event()
    first = jobs.submit("a", 1, lambda job: (gate.wait(10), "done")[1], on_finish=lambda: released.append("a"))
    queued = jobs.submit("b", 1, lambda job: "done", on_finish=lambda: released.append("b"))
    jobs.cancel(queued.job_id)
    assert queued.state == "cancelled" and released == ["b"]
    gate.set()
    first.finished.wait(10)
    assert released == ["b", "a"]
    jobs.shutdown()


def test_a_corrupt_checkpoint_is_reported_not_loaded(tmp_path):
    registry = ModelRegistry(tmp_path)
    registry.save("m", network())
    path = registry.path_for("m")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError):
        registry.load("m")
    (registry.models_dir / "junk.safetensors").write_bytes(b"\x01")
    cards = {c.name: c for c in registry.list()}
    assert cards["junk"].error and "truncated" in cards["junk"].error


def test_unknown_models_name_what_exists(tmp_path):
    registry = ModelRegistry(tmp_path)
    with pytest.raises(UnknownModelError, match="no models are saved yet"):
        registry.info("ghost")
    registry.save("m", network())
    with pytest.raises(UnknownModelError, match="saved models: m"):
        registry.delete("ghost")


def test_jobs_run_in_order_behind_the_cap_and_failures_keep_internals_private():
    manager = JobManager(max_concurrent=1, max_jobs=3)
    gate = threading.Event()
    order = []

    def blocked(job):
        gate.wait(5)
        order.append(job.model)
        return "done"

    def broken(job):
        order.append(job.model)
        raise RuntimeError("secret path /home/x")

    def refused(job):
        raise ValueError("hidden must be positive")

    first = manager.submit("a", 1, blocked)
    second = manager.submit("b", 1, broken)
    third = manager.submit("c", 1, refused)
    assert (first.state, second.state, third.state) == ("running", "queued", "queued")
    with pytest.raises(ValueError, match="already has job"):
        manager.submit("a", 1, blocked)
    with pytest.raises(ValueError, match="max_queued_jobs"):
        manager.submit("d", 1, blocked)
    gate.set()
    for job in (first, second, third):
        assert job.finished.wait(5)
    assert order == ["a", "b"]
    assert second.state == "failed" and "secret" not in second.error and "RuntimeError" in second.error
    assert third.state == "failed" and third.error == "hidden must be positive"
    with pytest.raises(UnknownJobError):
        manager.get("job-nope")
    manager.shutdown()
