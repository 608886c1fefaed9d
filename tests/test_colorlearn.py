"""ff_mcp.colorlearn: warm versus cool on held-out stream colors, determinism, default negatives, parsing."""

from __future__ import annotations

import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from ff_mcp.colorlearn import (
    FEATURES,
    MIN_NEGATIVES,
    MODEL_KIND,
    draw_negatives,
    ff_color_learning,
    held_out_evaluation,
    parse_color_list,
    score_colors,
    stream_colors_of_trit,
    swatch_png,
)
from ff_mcp.engine import NetworkConfig, build_network, load_checkpoint, save_checkpoint
from ff_mcp.gf3 import color_at, derive_seed, hue_of, parse_color, trit_from_hue

WARM = ["#D82626", "#E67F86", "#FF8000", "#C03060"]
COOL = ["#2626D8", "#55B0E6", "#3050C0", "#6040F0"]


def trit_of(hex_color: str) -> int:
    return trit_from_hue(hue_of(*parse_color(hex_color)))


@pytest.fixture(scope="module")
def held_out():
    """100 warm + 100 cool stream colors (seed 1069) to train on; the next 200 of each to test on."""
    return held_out_evaluation(1069, train_per_class=100, test_per_class=200)


def test_warm_versus_cool_reaches_95_percent_on_held_out_colors(held_out):
    assert held_out["accuracy"] >= 0.95, held_out["accuracy"]
    assert len(held_out["p_warm"]) == len(held_out["p_cool"]) == 200


def test_held_out_colors_are_not_training_colors():
    warm = stream_colors_of_trit(1069, 1, 300)
    assert len(set(warm[:100]) & set(warm[100:])) <= 1  # only a repeated stream color could appear in both
    assert all(trit_of(c) == 1 for c in warm)
    assert stream_colors_of_trit(1069, -1, 5, skip=2) == stream_colors_of_trit(1069, -1, 7)[2:]


def test_same_seed_gives_bit_identical_weights_and_scores(held_out):
    again = held_out_evaluation(1069, train_per_class=100, test_per_class=200)
    assert again["p_warm"] == held_out["p_warm"] and again["p_cool"] == held_out["p_cool"]
    first, second = held_out["result"].network.state_dict(), again["result"].network.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_another_seed_gives_other_weights_but_still_separates():
    a = ff_color_learning(WARM, COOL, seed=1, epochs=50)
    b = ff_color_learning(WARM, COOL, seed=2, epochs=50)
    assert not torch.equal(a.network.layers[0].weight, b.network.layers[0].weight)
    assert a.accuracy == b.accuracy == 1.0


def test_margin_is_mean_positive_minus_mean_negative_goodness():
    result = ff_color_learning(WARM, COOL, epochs=100)
    pos, neg = torch.tensor(result.goodness_pos), torch.tensor(result.goodness_neg)
    assert len(result.goodness_pos) == len(WARM) and len(result.goodness_neg) == len(COOL)
    assert result.margin == pytest.approx((pos.mean() - neg.mean()).item(), rel=1e-5)
    assert result.margin > 0


def test_accuracy_is_the_training_fraction_on_the_right_side_of_one_half():
    result = ff_color_learning(WARM, COOL, epochs=100)
    p_pos, _ = score_colors(result.network, WARM)
    p_neg, _ = score_colors(result.network, COOL)
    expected = (sum(p > 0.5 for p in p_pos) + sum(p <= 0.5 for p in p_neg)) / 8
    assert result.accuracy == expected == 1.0


def test_reported_goodness_equals_goodness_from_score_colors():
    result = ff_color_learning(WARM, COOL, epochs=20)
    _, goodness = score_colors(result.network, WARM)
    assert goodness == result.goodness_pos


def test_warm_positives_draw_cool_negatives_from_the_seeded_stream():
    result = ff_color_learning(WARM, seed=7, epochs=20)
    assert result.negatives_drawn
    assert len(result.negatives_used) == MIN_NEGATIVES  # as many as positives, but at least 16
    assert all(trit_of(c) == -1 for c in result.negatives_used)
    stream = [color_at(derive_seed(7, "colors"), i) for i in range(200)]
    assert result.negatives_used == [c.hex for c in stream if c.trit == -1][:MIN_NEGATIVES]


def test_cool_positives_draw_warm_negatives_and_green_positives_draw_both():
    assert all(trit_of(c) == 1 for c in ff_color_learning(COOL, epochs=5).negatives_used)
    green = ["#26D826", "#40C040", "#70E070"]
    trits = {trit_of(c) for c in ff_color_learning(green, epochs=5).negatives_used}
    assert trits == {-1, 1}


def test_drawn_negatives_match_positive_count_and_skip_positive_colors():
    first_cool = stream_colors_of_trit(derive_seed(1069, "colors"), -1, 1)[0]
    positives = [first_cool] + WARM * 10  # 41 colors, majority warm
    negatives = draw_negatives(parse_color_list("positive", positives), 1069, 41)
    assert len(negatives) == 41 and first_cool not in negatives


def test_negatives_count_sets_how_many_are_drawn():
    assert len(ff_color_learning(WARM, negatives_count=40, epochs=5).negatives_used) == 40


def test_hex_int_and_float_colors_score_the_same():
    result = ff_color_learning(WARM, COOL, epochs=20)
    scores, _ = score_colors(result.network, ["#FF0000", [255, 0, 0], [1.0, 0.0, 0.0]])
    assert scores[0] == scores[1] == scores[2]


def test_checkpoint_round_trip_scores_bit_identically(tmp_path):
    result = ff_color_learning(WARM, COOL, epochs=20)
    path = save_checkpoint(tmp_path / "c.safetensors", result.network, result.train_config, result.metrics,
                           result.model_extra())
    loaded = load_checkpoint(path)
    assert loaded.extra["kind"] == MODEL_KIND and loaded.extra["features"] == FEATURES
    assert score_colors(loaded.network, WARM + COOL) == score_colors(result.network, WARM + COOL)


def test_a_bad_color_is_named_by_field_and_position():
    with pytest.raises(ValueError, match=r"^positive\[1\]: .*'#GGHHII'"):
        ff_color_learning(["#D82626", "#GGHHII"])
    with pytest.raises(ValueError, match=r"^negative\[0\]: .*\[300, 0, 0\]"):
        ff_color_learning(WARM, [[300, 0, 0]])
    with pytest.raises(ValueError, match=r"^positive must hold 1 to 10000 colors, got 0"):
        ff_color_learning([])
    with pytest.raises(ValueError, match=r"^colors must be a list of colors"):
        score_colors(ff_color_learning(WARM, epochs=1).network, "#D82626")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"epochs": 0}, r"epochs must be an integer in \[1, 10000\], got 0"),
        ({"hidden": 0}, r"hidden must be an integer in \[1, 1024\], got 0"),
        ({"seed": -1}, r"seed must be an integer in \[0, 9223372036854775807\], got -1"),
        ({"lr": 0.0}, r"lr must be a number in \(0, 10\], got 0.0"),
        ({"negatives_count": 0}, r"negatives_count must be an integer in \[1, 10000\], got 0"),
    ],
)
def test_bad_options_say_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=message):
        ff_color_learning(WARM, **options)


def test_negatives_count_with_given_negatives_is_refused():
    with pytest.raises(ValueError, match="negatives_count only applies when negative is not given"):
        ff_color_learning(WARM, COOL, negatives_count=3)


def test_score_colors_refuses_a_network_that_is_not_a_color_model():
    other = build_network(NetworkConfig(in_features=4, num_classes=2, hidden=(8,), label_mode="none"), 0)
    with pytest.raises(ValueError, match="not a color model"):
        score_colors(other, WARM)


def test_hidden_sets_the_layer_width():
    result = ff_color_learning(WARM, COOL, hidden=5, epochs=5)
    assert tuple(result.network.layers[0].weight.shape) == (5, 3)


def test_swatch_png_puts_the_highest_score_first():
    png = swatch_png(["#000000", "#FF0000", "#00FF00"], [0.1, 0.9, 0.5], block=20)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (60, 20)
    assert [image.getpixel((x, 2)) for x in (2, 22, 42)] == [(255, 0, 0), (0, 255, 0), (0, 0, 0)]


def test_swatch_png_wraps_rows_and_checks_lengths():
    image = Image.open(io.BytesIO(swatch_png(["#FFFFFF"] * 20, [0.5] * 20, block=10, columns=16)))
    assert image.size == (160, 20)
    with pytest.raises(ValueError, match="need one score per color"):
        swatch_png(["#FFFFFF"], [0.1, 0.2])


@pytest.fixture(scope="module")
def trained_network():
    return ff_color_learning(WARM, COOL, epochs=50).network


rgb_ints = st.tuples(*[st.integers(0, 255)] * 3).map(list)
rgb_units = st.tuples(*[st.floats(0.0, 1.0)] * 3).map(list)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(rgb_ints, rgb_units, rgb_ints.map(lambda c: "#%02X%02X%02X" % tuple(c))), min_size=1,
                max_size=20))
def test_scores_are_probabilities_and_goodness_is_non_negative(trained_network, colors):
    scores, goodness = score_colors(trained_network, colors)
    assert len(scores) == len(goodness) == len(colors)
    assert all(0.0 <= p <= 1.0 for p in scores) and all(g >= 0.0 for g in goodness)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.integers(), st.text(max_size=8), st.lists(st.integers(256, 1000), min_size=3,
                                                                            max_size=3)), min_size=1, max_size=5))
def test_parse_color_list_rejects_non_colors_naming_the_first_bad_position(values):
    bad = []
    for position, value in enumerate(values):
        try:
            parse_color(value)
        except ValueError:
            bad.append(position)
    if not bad:
        assert parse_color_list("colors", values).shape == (len(values), 3)
    else:
        with pytest.raises(ValueError, match=rf"^colors\[{bad[0]}\]: "):
            parse_color_list("colors", values)


@settings(max_examples=40, deadline=None)
@given(rgb_ints)
def test_a_color_scores_the_same_as_hex_and_as_ints(trained_network, rgb):
    hex_color = "#%02X%02X%02X" % tuple(rgb)
    assert score_colors(trained_network, [hex_color]) == score_colors(trained_network, [rgb])
