"""Gay.jl hash_color sequences, the golden file, and colour parsing."""

import json
import math
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ff_mcp.gf3.colors import (
    GAY_SEED,
    Color,
    color_at,
    color_to_unit,
    colors,
    hash_color,
    parse_color,
    parse_colors,
    rgb_to_hex,
)
from ff_mcp.gf3.trits import TRIT_COLORS, hue_of, trit_from_hue

GOLDEN_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "gay_colors_golden.json"

# Gay.jl hash_color, verified in independent Python and Clojure ports (research notes, section 1.3).
SEED_1069_INDICES_1_TO_12 = (
    "#55B0E6 #C8A0C2 #FFA6C2 #789A20 #54C1ED #285DD0 #6233EF #D4BE57 #389BC3 #7278C0 #5FA42B #C3F7FA".split()
)
SEED_42_INDICES_1_TO_4 = "#03F166 #E375EF #74C905 #F22348".split()

byte = st.integers(min_value=0, max_value=255)
unit = st.floats(min_value=0.0, max_value=1.0)


def test_gay_seed_is_1069():
    assert GAY_SEED == 1069


def test_seed_1069_gives_the_published_hash_color_vector():
    assert [c.hex for c in colors(1069, 1, 12)] == SEED_1069_INDICES_1_TO_12


def test_seed_42_gives_the_published_hash_color_vector():
    assert [c.hex for c in colors(42, 1, 4)] == SEED_42_INDICES_1_TO_4


def test_hash_color_takes_r_g_b_from_the_low_three_bytes():
    assert hash_color(1069, 1) == (0x55, 0xB0, 0xE6)


def test_color_at_carries_hex_hue_and_trit_of_its_channels():
    color = color_at(1069, 1)
    assert (color.index, color.rgb, color.hex) == (1, (0x55, 0xB0, 0xE6), "#55B0E6")
    assert color.hue == pytest.approx(202.3448, abs=1e-4)
    assert color.trit == -1


def test_golden_file_matches_the_current_code_for_every_index():
    golden = json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))
    assert "splitmix64" in golden["algorithm"]
    assert sorted(golden["seeds"]) == ["1069", "42"]
    for seed, entries in golden["seeds"].items():
        expected = [{"index": c.index, "hex": c.hex, "trit": c.trit} for c in colors(int(seed), 0, 1000)]
        assert entries == expected


def test_golden_file_contains_the_published_vectors():
    golden = json.loads(GOLDEN_PATH.read_text(encoding="utf-8"))["seeds"]
    assert [e["hex"] for e in golden["1069"][1:13]] == SEED_1069_INDICES_1_TO_12
    assert [e["hex"] for e in golden["42"][1:5]] == SEED_42_INDICES_1_TO_4


def test_colors_is_color_at_over_consecutive_indices():
    assert colors(5, 2**64 - 3, 3) == [color_at(5, i) for i in (2**64 - 3, 2**64 - 2, 2**64 - 1)]
    assert colors(5, 0, 0) == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: hash_color(-1, 0), r"seed must be an integer in \[0, 2\*\*64\), got -1"),
        (lambda: color_at(1069, 2**64), r"index must be an integer in \[0, 2\*\*64\), got 18446744073709551616"),
        (lambda: colors(1069, 1.0, 3), r"start must be an integer in \[0, 2\*\*64\), got 1.0"),
        (lambda: colors(1069, 0, 10_001), r"count must be an integer in \[0, 10000\], got 10001"),
        (lambda: colors(1069, 0, -1), r"count must be an integer in \[0, 10000\], got -1"),
        (lambda: colors(1069, 2**64 - 1, 2), r"start \+ count must be <= 2\*\*64"),
    ],
)
def test_out_of_range_arguments_raise_value_error_naming_the_field(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_trit_colors_are_the_skill_card_colors_and_map_back_to_their_trit():
    assert TRIT_COLORS == {1: "#D82626", 0: "#26D826", -1: "#2626D8"}
    for trit, hex_color in TRIT_COLORS.items():
        assert trit_from_hue(hue_of(*parse_color(hex_color))) == trit


def test_color_rejects_channels_outside_a_byte():
    with pytest.raises(ValueError, match=r"g must be an integer in \[0, 255\], got 256"):
        Color(0, 1, 256, 3)


@pytest.mark.parametrize(
    ("value", "rgb"),
    [
        ("#FF0080", (255, 0, 128)),
        ("ff0080", (255, 0, 128)),
        ("#aBcDeF", (0xAB, 0xCD, 0xEF)),
        ([255, 0, 128], (255, 0, 128)),
        ((0, 0, 0), (0, 0, 0)),
        ([1.0, 0.0, 0.5], (255, 0, 128)),
        ([1.0, 0, 0], (255, 0, 0)),
    ],
)
def test_parse_color_accepts_hex_and_byte_or_unit_triples(value, rgb):
    assert parse_color(value) == rgb


@given(byte, byte, byte)
def test_hex_round_trips_through_parse_color_in_either_case(r, g, b):
    hex_color = rgb_to_hex((r, g, b))
    assert parse_color(hex_color) == (r, g, b)
    assert parse_color(hex_color.lower().lstrip("#")) == (r, g, b)


@given(byte, byte, byte)
def test_bytes_round_trip_through_unit_floats(r, g, b):
    as_unit = color_to_unit((r, g, b))
    assert all(isinstance(c, float) and 0.0 <= c <= 1.0 for c in as_unit)
    assert parse_color(list(as_unit)) == (r, g, b)


@given(unit, unit, unit)
def test_unit_floats_pass_through_color_to_unit_and_round_to_the_nearest_byte(r, g, b):
    assert color_to_unit([r, g, b]) == (r, g, b)
    assert all(abs(byte_value - c * 255) <= 0.5 for byte_value, c in zip(parse_color((r, g, b)), (r, g, b)))


bad_colors = st.one_of(
    st.text().filter(lambda s: not (len(s.lstrip("#")) == 6 and all(ch in string.hexdigits for ch in s.lstrip("#")))),
    st.lists(byte, min_size=0, max_size=2),
    st.lists(byte, min_size=4, max_size=5),
    st.tuples(st.integers(min_value=256), byte, byte),
    st.tuples(byte, st.integers(max_value=-1), byte),
    st.tuples(st.floats().filter(lambda x: not 0.0 <= x <= 1.0), unit, unit),
    st.tuples(unit, unit, st.booleans()),
    st.none(),
    st.dictionaries(st.text(max_size=2), byte, max_size=3),
    st.integers(),
)


@given(bad_colors)
def test_bad_colors_raise_value_error_quoting_the_value(value):
    with pytest.raises(ValueError) as error:
        parse_color(value)
    assert f"got {value!r}" in str(error.value)


def test_a_float_triple_outside_the_unit_interval_says_floats_are_read_as_0_to_1():
    with pytest.raises(ValueError, match=r"any float channel is read as 0-1 floats.*\[255\.0, 0, 0\]"):
        parse_color([255.0, 0, 0])


def test_parse_colors_names_the_position_of_the_bad_element():
    with pytest.raises(ValueError, match=r"^colors\[2\]: .*'#12345'"):
        parse_colors(["#000000", [1, 2, 3], "#12345"])


def test_parse_colors_converts_every_element_to_bytes_or_unit_floats():
    assert parse_colors(["#FF0000", (0.0, 1.0, 0.0)]) == [(255, 0, 0), (0, 255, 0)]
    assert parse_colors(["#FF0000"], unit=True) == [(1.0, 0.0, 0.0)]


def test_parse_colors_rejects_a_string_instead_of_a_list():
    with pytest.raises(ValueError, match="colors must be a list of colors.*got '#FF0000'"):
        parse_colors("#FF0000")


def test_golden_trits_follow_the_hue_rule():
    for color in colors(GAY_SEED, 0, 200):
        assert color.trit == trit_from_hue(color.hue)
        assert 0.0 <= color.hue < 360.0 and not math.isnan(color.hue)
