"""Strict inputs on every tool: unknown keys refused naming them and what the tool accepts; wrong
values described in one line without validator internals; schemas closed to extra keys."""

from __future__ import annotations

import pytest
from mcp import Client

from ff_mcp.server.strict import field_path, short_value
from ff_mcp.tools import is_valid_name, validate_name

pytestmark = pytest.mark.anyio

VALIDATOR_WORDS = ("validation error", "type=", "http", "Arguments", "input_value", "pydantic")


async def test_every_tool_schema_refuses_extra_keys(server):
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
    assert len(tools) >= 10
    for tool in tools:
        assert tool.input_schema.get("additionalProperties") is False, tool.name


async def test_every_tool_refuses_an_unknown_key_naming_it_and_what_it_accepts(server):
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        for tool in tools:
            result = await client.call_tool(tool.name, {"zz_not_an_argument": 1})
            assert result.is_error, tool.name
            text = result.content[0].text
            assert "unknown argument 'zz_not_an_argument'" in text, text
            accepted = ", ".join(sorted(tool.input_schema.get("properties", {}))) or "no arguments"
            assert f"{tool.name} accepts: {accepted}" in text, text
            assert "\n" not in text and not any(w in text for w in VALIDATOR_WORDS), text


async def test_a_misspelt_argument_is_refused_with_a_suggestion_not_trained_with_defaults(server, tiny_data):
    x, y = tiny_data
    async with Client(server) as client:
        result = await client.call_tool("ff_train", {"name": "m", "x": x, "y": y, "epoch": 3, "seeed": 1})
        text = result.content[0].text
        assert result.is_error
        assert "unknown arguments 'epoch', 'seeed' (did you mean 'epoch' -> 'epochs'; 'seeed' -> 'seed'?)" in text
        assert (await client.call_tool("ff_models", {})).structured_content["models"] == []


@pytest.mark.parametrize(("arguments", "expected"), [
    ({"name": "m", "dataset": "digits", "epochs": "many"},
     "epochs: input should be a valid integer, unable to parse string as an integer (got 'many')"),
    ({"name": "m", "dataset": "digits", "epochs": 10**40}, "epochs: input should be less than or equal to 50"),
    ({"name": "m", "dataset": "digits", "hidden": [8, "wide"]}, "hidden[1]: input should be a valid integer"),
    ({"name": "m", "x": [[1.0, None]] * 2, "y": [0, 1]}, "x[0][1]: input should be a valid number (got None)"),
    ({"dataset": "digits"}, "name: required but not given"),
    ({"name": "m", "dataset": "digits", "lr": [1]}, "lr: input should be a valid number (got a list of 1 item)"),
])
async def test_wrong_values_are_one_line_naming_the_field(server, arguments, expected):
    async with Client(server) as client:
        result = await client.call_tool("ff_train", arguments)
    text = result.content[0].text
    assert result.is_error and expected in text, text
    assert "\n" not in text and not any(w in text for w in VALIDATOR_WORDS), text


async def test_many_bad_values_are_counted_not_listed(server):
    async with Client(server) as client:
        result = await client.call_tool("ff_predict", {"model": "m", "x": [[None] * 8] * 4})
    text = result.content[0].text
    assert text.count("input should be a valid number") == 3 and "and 29 more problems in the same call" in text


def test_field_paths_and_values_read_as_a_caller_wrote_them():
    assert field_path(("x", 3, 1)) == "x[3][1]"
    assert field_path(("colors", "list[str]", 0)) == "colors[0]"
    assert field_path(()) == "arguments"
    assert short_value("a" * 100).endswith("...") and len(short_value("a" * 100)) == 40
    assert short_value(10**50) == "an integer of about 51 digits"
    assert short_value({"a": 1}) == "an object with keys 'a'"


@pytest.mark.parametrize("name", ["CON", "nul", "Aux.json", "com1", "LPT9.model", "prn"])
def test_names_windows_reserves_are_refused(name):
    assert not is_valid_name(name)
    with pytest.raises(ValueError, match="device name Windows reserves"):
        validate_name(name, "name")


@pytest.mark.parametrize("name", ["CONSOLE", "nul_model", "com10", "my.CON", "LPT"])
def test_names_that_only_look_reserved_are_kept(name):
    assert validate_name(name) == name


async def test_ff_train_refuses_a_reserved_name_before_training(server, tiny_data):
    x, y = tiny_data
    async with Client(server) as client:
        result = await client.call_tool("ff_train", {"name": "NUL", "x": x, "y": y})
    assert result.is_error and "'NUL' is a device name Windows reserves" in result.content[0].text
