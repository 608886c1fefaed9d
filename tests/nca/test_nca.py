"""The neural cellular automaton (ff_mcp/nca): perception and alive masking against hand-computed grids,
the zero-initialised rule leaving the seed as it is, the forward-only rule's locality, the rule's file,
the CLI on a tiny target and the MCP tool ff_nca_grow."""

from __future__ import annotations

import json

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="the NCA needs the optional extra: pip install 'ff-mcp[jax]'")

import jax.numpy as jnp  # noqa: E402

from ff_mcp.cli import main  # noqa: E402
from ff_mcp.nca import core, measure, rules  # noqa: E402


def test_perception_is_identity_and_sobel_per_channel_in_depthwise_order():
    grid = np.zeros((1, 5, 5, 2), np.float32)
    grid[0, 2, 2, 1] = 1.0  # an impulse in channel 1
    features = np.asarray(core.perceive(jnp.asarray(grid)))[0]
    assert features.shape == (5, 5, 6)
    assert np.all(features[..., :3] == 0)  # channel 0 is empty: its identity, Sobel x and Sobel y are 0
    identity, sobel_x, sobel_y = features[..., 3], features[..., 4], features[..., 5]
    assert identity[2, 2] == 1 and identity.sum() == 1
    # Sobel x / 8 at the impulse's neighbours: +2/8 on its left (the value rises to the right), -2/8 on its right
    want_x = np.zeros((5, 5))
    want_x[1:4, 1] = [0.125, 0.25, 0.125]
    want_x[1:4, 3] = [-0.125, -0.25, -0.125]
    np.testing.assert_allclose(sobel_x, want_x, atol=1e-7)
    np.testing.assert_allclose(sobel_y, want_x.T, atol=1e-7)


def test_a_cell_is_alive_next_to_alpha_above_a_tenth():
    grid = np.zeros((1, 6, 6, 4), np.float32)
    grid[0, 1, 1, 3] = 0.2
    grid[0, 4, 4, 3] = 0.05  # below the threshold: keeps nothing alive
    live = np.asarray(core.alive(jnp.asarray(grid)))[0, ..., 0]
    want = np.zeros((6, 6), bool)
    want[0:3, 0:3] = True
    np.testing.assert_array_equal(live, want)


def test_the_zero_initialised_rule_leaves_the_seed_unchanged():
    params = core.init_params(jax.random.PRNGKey(0))
    seed = core.seed_state(9, 9)[None]
    after = core.run(params, seed, jax.random.PRNGKey(1), 10)
    np.testing.assert_array_equal(np.asarray(after), np.asarray(seed))
    assert float(jnp.abs(params["w1"]).sum()) > 0  # only the last layer is zero


def test_the_forward_only_rule_sends_no_gradient_across_its_two_layers():
    params = core.init_params(jax.random.PRNGKey(0))
    params = {**params, "w2": jax.random.normal(jax.random.PRNGKey(2), params["w2"].shape)}
    rows = jax.random.normal(jax.random.PRNGKey(3), (32, 48))
    neg = jax.random.normal(jax.random.PRNGKey(4), (32, 48))
    change = jax.random.normal(jax.random.PRNGKey(5), (32, 16))
    ff = jax.grad(rules.ff_hidden_loss)(params, rows, neg, 1.0)
    delta = jax.grad(rules.delta_rule_loss)(params, rows, change)
    size = lambda g: float(jnp.abs(g).sum())  # noqa: E731
    assert size(ff["w1"]) > 0 and size(ff["w2"]) == size(ff["b2"]) == 0.0
    assert size(delta["w2"]) > 0 and size(delta["w1"]) == size(delta["b1"]) == 0.0


def test_the_teacher_state_and_curriculum_start_from_the_seed_and_end_at_the_target():
    target = core.load_target(_tiny_png_path(), 2)
    teacher = rules.teacher_state(target)
    np.testing.assert_allclose(np.asarray(teacher[..., :4]), np.asarray(target), atol=1e-6)  # RGBA is the target's
    states = rules.curriculum(teacher, radii=5)
    np.testing.assert_array_equal(np.asarray(states[0]), np.asarray(core.seed_state(*target.shape[:2])))
    np.testing.assert_allclose(np.asarray(states[-1]), np.asarray(teacher))


def test_config_mistakes_are_refused_by_name():
    with pytest.raises(ValueError, match="rule must be one of"):
        rules.NcaConfig(rule="hebb")
    with pytest.raises(ValueError, match=r"max_steps must be in \[min_steps, 1000\]"):
        rules.NcaConfig(min_steps=10, max_steps=5)
    with pytest.raises(ValueError, match="pool .* must hold at least one batch"):
        rules.NcaConfig(pool=2, batch=8)
    with pytest.raises(ValueError, match=r"hidden_rule must be one of \['ff', 'fixed', 'backprop'\], got 'hebb'"):
        rules.NcaConfig(hidden_rule="hebb")


def test_a_rule_file_round_trips_and_foreign_files_are_refused(tmp_path):
    params = core.init_params(jax.random.PRNGKey(0))
    path = measure.save_rule(tmp_path / "r.safetensors", params, {"rule": "ff"})
    loaded, meta = measure.load_rule(path)
    assert meta == {"rule": "ff"} and all(np.array_equal(loaded[k], params[k]) for k in params)
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is not a safetensors file"):
        measure.load_rule(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="no NCA rule at"):
        measure.load_rule(tmp_path / "missing.safetensors")


def _tiny_png_path():
    import tempfile
    from pathlib import Path

    from PIL import Image

    image = np.zeros((8, 8, 4), np.uint8)
    image[2:6, 2:6] = (200, 40, 40, 255)
    path = Path(tempfile.mkdtemp()) / "tiny.png"
    Image.fromarray(image, "RGBA").save(path)
    return path


@pytest.mark.parametrize("rule", ["ff", "bptt"])
def test_the_cli_trains_a_rule_and_grows_it_into_a_strip(tmp_path, capsys, monkeypatch, rule):
    monkeypatch.setenv("FF_MCP_HOME", str(tmp_path / "home"))
    out = tmp_path / "run"
    code = main(["nca", "train", "--target", str(_tiny_png_path()), "--rule", rule, "--iterations", "3",
                 "--pad", "2", "--out", str(out), "--name", "tiny", "--json", "--quiet", "--other", "none"])
    assert code == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["rule"] == rule and 0 <= result["restored_after_damage"] <= 1
    assert (out / "rule.safetensors").is_file() and (tmp_path / "home" / "nca" / "tiny.safetensors").is_file()
    from PIL import Image

    strip = Image.open(out / "strip.png")
    assert strip.size[1] == 12 * 4  # the 8x8 target padded by 2, upscaled 4x
    assert main(["nca", "grow", "--model", str(out / "rule.safetensors"), "--steps", "5", "--out",
                 str(tmp_path / "g.png"), "--json"]) == 0
    assert Image.open(tmp_path / "g.png").size[1] == 48


def test_cli_mistakes_name_the_flag(tmp_path, capsys):
    assert main(["nca", "train", "--target", "nonesuch", "--out", str(tmp_path)]) == 2
    assert "--target: 'nonesuch' is neither a PNG file nor one of smiley, ring" in capsys.readouterr().err
    assert main(["nca", "grow", "--model", str(tmp_path / "no.safetensors"), "--out", str(tmp_path / "x.png")]) == 2
    assert "model: no NCA rule at" in capsys.readouterr().err


@pytest.mark.anyio
async def test_mcp_ff_nca_grow_returns_the_strip_as_image_content(tmp_path, small_server):
    from mcp import Client

    params = core.init_params(jax.random.PRNGKey(0))
    target = core.load_target(_tiny_png_path(), 2)
    from ff_mcp.nca.cli import _encode

    measure.save_rule(tmp_path / "home" / "nca" / "blob.safetensors", params,
                      {"rule": "ff", "target_rgba": _encode(target)})
    async with Client(small_server) as client:
        missing = await client.call_tool("ff_nca_grow", {"model": "nope"})
        assert missing.is_error and "no NCA rule named 'nope'; saved: blob" in missing.content[0].text
        bad = await client.call_tool("ff_nca_grow", {"model": "blob", "steps": 0})
        assert bad.is_error and "steps: input should be greater than or equal to 1 (got 0)" in bad.content[0].text
        res = await client.call_tool("ff_nca_grow", {"model": "blob", "steps": 8})
        assert not res.is_error, res.content[0].text
        summary = res.structured_content
        # the untrained rule keeps the seed: nothing grows, so no damaged pixel is restored
        assert summary["rule"] == "ff" and summary["restored_after_damage"] == 0.0 and summary["height"] == 48
        assert res.content[1].type == "image" and res.content[1].mime_type == "image/png"
