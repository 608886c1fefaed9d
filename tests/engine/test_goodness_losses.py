"""Goodness and loss values against hand-computed numbers."""

import math

import pytest
import torch

from ff_mcp.engine import get_goodness, get_loss
from ff_mcp.engine.layers import FFLinear
from ff_mcp.engine.norms import l2_normalize, rms_normalize


def test_sum_squares_goodness_is_the_sum_of_squared_activities():
    h = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 3.0]])
    assert get_goodness("sum_squares").measure(h).tolist() == [9.0, 9.0]


def test_mean_squares_goodness_is_the_mean_of_squared_activities():
    h = torch.tensor([[1.0, 2.0, 2.0, 1.0]])
    assert get_goodness("mean_squares").measure(h).tolist() == [2.5]


def test_sum_threshold_is_the_layer_width_and_mean_threshold_is_two():
    assert get_goodness("sum_squares").default_threshold(1000) == 1000.0
    assert get_goodness("mean_squares").default_threshold(1000) == 2.0


def test_negative_goodness_flips_the_sign_of_the_logit():
    h = torch.tensor([[3.0, 4.0]])  # sum of squares 25
    assert get_goodness("sum_squares").logits(h, 20.0).item() == pytest.approx(5.0)
    assert get_goodness("neg_sum_squares").logits(h, 20.0).item() == pytest.approx(-5.0)
    assert get_goodness("neg_mean_squares").logits(h, 2.0).item() == pytest.approx(-(12.5 - 2.0))


def test_softplus_loss_matches_the_logistic_threshold_loss_by_hand():
    logit_pos, logit_neg = torch.tensor([2.0, -1.0]), torch.tensor([0.5])
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(1.0)) + math.log1p(math.exp(0.5))) / 3
    assert get_loss("softplus")(logit_pos, logit_neg).item() == pytest.approx(expected, rel=1e-6)


def test_symba_loss_matches_its_formula_and_ignores_the_threshold():
    lp, ln = torch.tensor([3.0, 1.0]), torch.tensor([1.0, 2.0])
    expected = (math.log1p(math.exp(-4.0 * 2.0)) + math.log1p(math.exp(-4.0 * -1.0))) / 2
    assert get_loss("symba")(lp, ln).item() == pytest.approx(expected, rel=1e-6)
    assert get_loss("symba")(lp + 7, ln + 7).item() == pytest.approx(expected, rel=1e-6)


def test_symba_needs_paired_rows():
    with pytest.raises(ValueError, match="as many negative rows"):
        get_loss("symba")(torch.zeros(3), torch.zeros(2))


def test_unknown_goodness_and_loss_names_list_the_allowed_ones():
    with pytest.raises(ValueError, match=r"goodness must be one of \['mean_squares'"):
        get_goodness("cubes")
    with pytest.raises(ValueError, match=r"loss must be one of \['softplus', 'symba'\]"):
        get_loss("hinge")


def test_rms_normalisation_gives_unit_mean_square_and_l2_gives_unit_length():
    x = torch.tensor([[3.0, 4.0, 0.0, 0.0]])
    assert rms_normalize(x).square().mean().item() == pytest.approx(1.0, rel=1e-5)
    assert l2_normalize(x).norm().item() == pytest.approx(5.0 / (5.0 + 1e-4), rel=1e-6)


def test_layer_loss_by_hand_for_a_one_unit_layer():
    layer = FFLinear(2, 1, norm="none", goodness="sum_squares", threshold=1.0, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 1.0]]))
    h = layer(torch.tensor([[1.0, 1.0], [0.5, 0.0]]))  # activities 2 and 0.5 -> goodness 4 and 0.25
    loss, g_pos, g_neg = layer.local_loss(h, n_pos=1)
    expected = (math.log1p(math.exp(-(4.0 - 1.0))) + math.log1p(math.exp(0.25 - 1.0))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert (g_pos.item(), g_neg.item()) == (4.0, 0.25)
