"""The wire type of a color keeps ints as ints and floats as floats, so parse_color reads them as meant."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from ff_mcp.gf3 import parse_color
from ff_mcp.server.color_tools import ColorValue

COLORS = TypeAdapter(list[ColorValue])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)).map(list), min_size=1,
                max_size=5))
def test_int_channels_stay_ints_and_parse_as_bytes(values):
    parsed = COLORS.validate_python(values)
    assert parsed == values and all(type(c) is int for color in parsed for c in color)
    assert [parse_color(color) for color in parsed] == [tuple(v) for v in values]


@settings(max_examples=100, deadline=None)
@given(st.tuples(st.floats(0, 1), st.integers(0, 1), st.integers(0, 1)).map(list))
def test_a_float_channel_stays_a_float_so_the_color_reads_as_0_to_1(color):
    parsed = COLORS.validate_python([color])[0]
    assert type(parsed[0]) is float and parsed == color
    assert parse_color(parsed) == tuple(round(c * 255) for c in color)


@settings(max_examples=50, deadline=None)
@given(st.one_of(st.lists(st.integers(0, 255), max_size=2), st.lists(st.integers(0, 255), min_size=4, max_size=6),
                 st.text(min_size=33, max_size=40), st.booleans().map(lambda b: [b, 0, 0])))
def test_wrong_shapes_long_strings_and_bools_are_refused_by_the_schema(value):
    try:
        COLORS.validate_python([value])
    except ValidationError:
        return
    raise AssertionError(f"{value!r} was accepted")
