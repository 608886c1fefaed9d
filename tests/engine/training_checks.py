"""Helpers shared by the engine tests that train one network two ways and compare the results."""

import pytest
import torch


def assert_same_training(a, b, atol=1e-4, rel=1e-4):
    """a, b: (network, TrainResult) pairs. Every parameter and buffer within (atol, rel), and every
    epoch's per-layer loss and goodness (and readout loss) within rel."""
    (net_a, res_a), (net_b, res_b) = a, b
    for (name, p), q in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        assert torch.allclose(p, q, atol=atol, rtol=rel), f"{name} differs by {(p - q).abs().max().item():.2e}"
    for ha, hb in zip(res_a.history, res_b.history):
        for la, lb in zip(ha["layers"], hb["layers"]):
            assert la["loss"] == pytest.approx(lb["loss"], rel=rel)
            assert la["goodness_pos"] == pytest.approx(lb["goodness_pos"], rel=rel)
            assert la["goodness_neg"] == pytest.approx(lb["goodness_neg"], rel=rel)
        if "readout_loss" in ha:  # greedy: only in the last layer's phase
            assert ha["readout_loss"] == pytest.approx(hb["readout_loss"], rel=rel)
