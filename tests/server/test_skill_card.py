"""skill.md tells the truth: its front matter, tools, example arguments and resources match the server."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mcp import Client

from ff_mcp.gf3 import TRIT_COLORS, parse_triad_statement
from ff_mcp.server import ServerConfig, build_server

pytestmark = pytest.mark.anyio

SKILL = Path(__file__).resolve().parents[2] / "skill.md"
TOOL_NAME = re.compile(r"(?:ff|color|gf3)_[a-z0-9_]+")
RERUN = ("color_seed", "ff_color_learn", "ff_color_score", "gf3_triad")  # fast, deterministic: examples rerun exactly


@pytest.fixture(scope="module")
def text() -> str:
    return SKILL.read_text(encoding="utf-8")


@pytest.fixture
def server(tmp_path):
    return build_server(ServerConfig(home=tmp_path / "home"))


def front_matter(text: str) -> dict[str, str]:
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "skill.md must start with front matter between '---' lines"
    fields = {}
    for line in match.group(1).splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip().strip('"')
    return fields


def tool_sections(text: str) -> dict[str, str]:
    """`### `name`` sections under '## Tools' -> their text."""
    tools_part = text.split("\n## Tools\n", 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^### `([^`]+)`\s*$", tools_part, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def examples(section: str) -> list[tuple[dict, dict]]:
    """(call arguments, shown result) pairs: each 'Call:' json block followed by a 'Result:' json block."""
    blocks = re.findall(r"^(Call|Result):\n```json\n(.*?)\n```", section, re.DOTALL | re.MULTILINE)
    assert [kind for kind, _ in blocks] == ["Call", "Result"] * (len(blocks) // 2) and blocks
    parsed = [json.loads(body) for _, body in blocks]
    return list(zip(parsed[0::2], parsed[1::2]))


def matches(shown, actual) -> bool:
    """shown is actual with floats rounded to 4 places (within one unit of the 4th place: CPUs with other
    matmul kernels round the last float32 bits differently); '...' stands for left-out list items or dict keys."""
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return False
        keys = set(shown) - {"..."}
        if "..." not in shown and keys != set(actual):
            return False
        return keys <= set(actual) and all(matches(shown[k], actual[k]) for k in keys)
    if isinstance(shown, list):
        if not isinstance(actual, list):
            return False
        if shown and isinstance(shown[-1], str) and shown[-1].startswith("..."):
            return len(actual) >= len(shown) - 1 and all(matches(s, a) for s, a in zip(shown[:-1], actual))
        return len(shown) == len(actual) and all(matches(s, a) for s, a in zip(shown, actual))
    if isinstance(shown, float) or isinstance(actual, float):
        return isinstance(actual, (int, float)) and abs(round(actual, 4) - shown) <= 1.0001e-4
    return shown == actual


def test_front_matter_has_name_description_trit_and_color(text):
    fields = front_matter(text)
    assert fields["name"] == "ff-mcp" and len(fields["description"]) > 40
    assert fields["trit"] == "1" and fields["color"] == "#D82626" == TRIT_COLORS[1]
    assert "**Trit**: +1" in text and "**Color**: Red (#D82626)" in text


async def test_every_tool_named_exists_and_every_server_tool_is_documented(text, server):
    async with Client(server) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
    named = {name for name in re.findall(r"`([^`\n]+)`", text) if TOOL_NAME.fullmatch(name)}
    assert named - tools == set(), f"skill.md names tools the server lacks: {sorted(named - tools)}"
    assert set(tool_sections(text)) == tools


async def test_example_arguments_and_result_fields_fit_each_tool_schema(text, server):
    async with Client(server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name, section in tool_sections(text).items():
        for call, result in examples(section):
            assert set(call) <= set(tools[name].input_schema.get("properties", {})), name
            assert set(result) - {"..."} <= set(tools[name].output_schema["properties"]), name


async def test_color_and_triad_examples_give_exactly_the_results_shown(text, server):
    sections = tool_sections(text)
    order = ["color_seed", "ff_color_learn", "ff_color_score", "gf3_triad"]  # score needs the learned model
    assert sorted(order) == sorted(RERUN)
    async with Client(server) as client:
        for name in order:
            for call, shown in examples(sections[name]):
                result = await client.call_tool(name, call)
                assert not result.is_error, (name, result.content[0].text)
                assert matches(shown, result.structured_content), (name, call, result.structured_content)


async def test_resources_named_exist(text, server):
    async with Client(server) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        uris |= {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    named = set(re.findall(r"`(ff://[^`\s]+)`", text))
    assert {"ff://skill", "ff://models/{name}"} <= named
    assert {u for u in named if "{" in u or u == "ff://skill"} <= uris


def test_the_seed_cards_triads_are_quoted_and_balanced(text):
    statements = [line for line in text.splitlines() if line.endswith("= 0 ✓") and "⊗" in line]
    assert len(statements) == 3
    assert all(parse_triad_statement(s).claim_correct for s in statements)
    assert "unworld's own card" in text and "says `**Trit**: +1`" in text


def test_matches_reads_rounding_and_ellipses():
    assert matches({"a": [1.0, "..."], "...": "..."}, {"a": [1.00001, 2], "b": 3})
    assert not matches({"a": [1.0]}, {"a": [1.0, 2.0]})
    assert not matches({"a": 1}, {"a": 1, "b": 2})
    assert matches([0.0015, "... 16 values"], [0.0014998719561845064, 5.0])


def test_every_example_result_is_a_recorded_call():
    """skill.md's example results are the calls bench/skill_examples.py recorded (the file skill.md names),
    rounded and shortened; ff_nca_grow's comes from the NCA bench file its section names."""
    text = SKILL.read_text(encoding="utf-8")
    name = re.search(r"bench/results/(skill-examples-[0-9]+\.json)", text)
    assert name, "skill.md must name its recorded examples file"
    recorded = json.loads((SKILL.parent / "bench" / "results" / name.group(1)).read_text())["calls"]
    for tool, section in tool_sections(text).items():
        if tool == "ff_nca_grow":
            continue
        for call, shown in examples(section):
            assert any(r.get("tool") == tool and matches(call, r["arguments"]) and matches(shown, r["result"])
                       for r in recorded), (tool, call)
