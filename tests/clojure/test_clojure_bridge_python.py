"""The Python side of the Clojure bridge without a JVM: finding the jars, the in-process tools, the repl command."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pytest

from ff_mcp import colorlearn
from ff_mcp.clojure import jvm
from ff_mcp.clojure.engine import InProcessTools
from ff_mcp.clojure.run_tests import discover_namespaces

WARM = ["#FF0000", "#E67F86", [250, 30, 20], "D82626"]
COOL = ["#0000FF", "#1316BB", [0.1, 0.2, 0.9], "#2626D8"]


@pytest.fixture
def no_jars(monkeypatch, tmp_path):
    """A machine without Debian's jars: empty jar directory, no env overrides, no CLASSPATH."""
    monkeypatch.setattr(jvm, "JAVA_DIRS", (str(tmp_path),))
    monkeypatch.setattr(jvm, "DATA_JSON_MAVEN_GLOB", str(tmp_path / "none" / "*.jar"))
    for name in ("FF_MCP_CLOJURE_JAR", "FF_MCP_DATA_JSON_JAR", "CLASSPATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_missing_clojure_jar_names_the_debian_packages(no_jars):
    with pytest.raises(jvm.ClojureUnavailable, match="apt-get install default-jre-headless clojure libdata-json-clojure"):
        jvm.find_clojure_jar()
    with pytest.raises(jvm.ClojureUnavailable, match="data.json.*apt-get install default-jre-headless clojure"):
        jvm.find_data_json_jar()


def test_jars_are_found_through_env_vars_and_classpath(no_jars, monkeypatch):
    clj = no_jars / "my-clojure.jar"
    json_jar = no_jars / "lib" / "data.json-9.9.jar"
    json_jar.parent.mkdir()
    clj.write_bytes(b"")
    json_jar.write_bytes(b"")
    monkeypatch.setenv("FF_MCP_CLOJURE_JAR", str(clj))
    monkeypatch.setenv("CLASSPATH", f"/nowhere/x.jar:{json_jar}")
    assert jvm.find_clojure_jar() == clj
    assert jvm.find_data_json_jar() == json_jar
    monkeypatch.setenv("FF_MCP_CLOJURE_JAR", str(no_jars / "missing.jar"))
    with pytest.raises(jvm.ClojureUnavailable, match="FF_MCP_CLOJURE_JAR=.*is not a file"):
        jvm.find_clojure_jar()


def test_jars_are_found_in_a_debian_style_java_directory(no_jars):
    (no_jars / "clojure.jar").write_bytes(b"")
    (no_jars / "data.json.jar").write_bytes(b"")
    assert jvm.find_clojure_jar() == no_jars / "clojure.jar"
    assert jvm.find_data_json_jar() == no_jars / "data.json.jar"


def test_classpath_holds_clojure_data_json_clj_src_then_extras():
    if not Path("/usr/share/java/clojure.jar").exists():
        pytest.skip("Debian's clojure jar is not installed")
    cp = jvm.build_classpath(["/extra/dir"])
    assert Path(cp[0]).name.startswith("clojure") and "data.json" in Path(cp[1]).name
    assert Path(cp[2]) == Path(__file__).resolve().parents[2] / "clj" / "src"
    assert cp[3] == "/extra/dir"


def test_clj_src_is_the_repositorys_next_to_the_package(monkeypatch):
    monkeypatch.delenv("FF_MCP_CLJ_SRC", raising=False)
    assert (jvm.find_clj_src() / "music_topos" / "parallel_color_fork.clj").is_file()


def test_in_process_learn_matches_the_engine_called_directly():
    tools = InProcessTools()
    result = tools.call("ff_color_learn", {"name": "warm", "positive": WARM, "negative": COOL, "seed": 1069,
                                           "hidden": 16, "epochs": 30})
    direct = colorlearn.ff_color_learning(WARM, COOL, seed=1069, hidden=16, epochs=30)
    assert result["goodness_pos"] == direct.goodness_pos and result["goodness_neg"] == direct.goodness_neg
    assert result["margin"] == direct.margin and result["accuracy"] == direct.accuracy == 1.0
    assert result["model"] == "warm" and result["negatives"] == ["#0000FF", "#1316BB", "#1A33E6", "#2626D8"]
    scored = tools.call("ff_color_score", {"model": "warm", "colors": WARM})
    assert scored["goodness"] == direct.goodness_pos
    cards = tools.call("ff_models")["models"]
    assert [(c["name"], c["extra"]["kind"], c["state"]) for c in cards] == [("warm", "color", "done")]


@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        ("ff_color_learn", {"name": "m", "positive": ["#GG0000"]}, r"positive\[0\]: .*#GG0000"),
        ("ff_color_learn", {"name": "m", "positive": []}, r"positive must hold 1 to"),
        ("ff_color_learn", {"name": "bad name!", "positive": ["#FF0000"]}, r"name must be 1-64 characters"),
        ("ff_color_learn", {"name": "m", "positive": ["#FF0000"], "colour": 1}, r"unknown argument 'colour'; ff_color_learn accepts: epochs, hidden, name, negative, positive, seed"),
        ("ff_color_score", {"model": "nope", "colors": ["#FF0000"]}, r"model 'nope' does not exist"),
        ("ff_train", {}, r"unknown tool 'ff_train'.*:transport :stdio"),
        ("gf3_triad", {}, r"give trits"),
        ("color_seed", {"count": -1}, r"count must be an integer"),
    ],
)
def test_in_process_tools_reject_bad_input_with_the_engines_message(tool, arguments, message):
    with pytest.raises((ValueError, LookupError), match=message):
        InProcessTools().call(tool, arguments)


def test_in_process_color_seed_and_triads_match_gf3():
    tools = InProcessTools()
    stream = tools.call("color_seed", {"seed": 1069, "start": 1, "count": 2})
    assert [c["hex"] for c in stream["colors"]] == ["#55B0E6", "#C8A0C2"]
    assert tools.call("gf3_triad", {"trits": [-1, 0, 1]})["balanced"] is True
    statement = tools.call("gf3_triad", {"statement": "a (-1) ⊗ b (0) ⊗ c (+1) = 0 ✓"})
    assert statement["names"] == ["a", "b", "c"] and statement["claim_correct"] is True


@pytest.mark.parametrize(("tool", "arguments"), [
    ("gf3_triad", {}),
    ("gf3_triad", {"trits": [1, 0], "statement": "a (1) ⊗ b (0)"}),
    ("gf3_triad", {"statement": "a (1) b (0)"}),
    ("ff_color_learn", {"name": "..", "positive": ["#FF0000"]}),
    ("ff_color_learn", {"name": "CON", "positive": ["#FF0000"]}),
    ("ff_color_learn", {"name": "m", "positive": ["#FF0000"], "colour": 1, "epoch": 2}),
    ("color_seed", {"seed": 1, "start": 0, "count": 2, "n": 3}),
])  # (mistakes the MCP schema catches first, like count -1, answer with the schema's text there)
def test_in_process_errors_are_the_mcp_servers_own_texts(tool, arguments):
    """Both transports call ff_mcp.tools (or the server's checks built on it): one text per mistake."""
    import anyio
    from mcp import Client

    from ff_mcp.server import ServerConfig, build_server

    with pytest.raises((ValueError, LookupError)) as in_process:
        InProcessTools().call(tool, arguments)

    async def over_mcp() -> str:
        async with Client(build_server(ServerConfig(home=Path(tempfile.mkdtemp())))) as client:
            result = await client.call_tool(tool, arguments)
            assert result.is_error
            return result.content[0].text

    assert str(in_process.value) in anyio.run(over_mcp)


def test_repl_subcommand_takes_an_optional_port():
    from ff_mcp.clojure.cli import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["repl"]).port is None
    assert parser.parse_args(["repl", "--port", "0"]).port == 0


def test_repl_refuses_an_out_of_range_port():
    from ff_mcp.clojure.cli import cmd_repl

    with pytest.raises(ValueError, match=r"--port must be in \[0, 65535\], got 70000"):
        cmd_repl(argparse.Namespace(port=70000))


def test_every_clojure_test_namespace_is_found():
    names = discover_namespaces(Path(__file__).resolve().parents[2] / "clj" / "test")
    assert {"ff-mcp.bridge-test", "ff-mcp.bridge-stdio-test", "music-topos.parallel-color-fork-test"} <= set(names)


def test_in_process_and_stdio_server_answer_every_tool_with_the_same_fields(tmp_path):
    """For the same call, the in-process bridge and the MCP server return the same fields (nested ones too)."""
    import anyio
    from mcp import Client

    from ff_mcp.server import ServerConfig, build_server

    calls = [("color_seed", {"seed": 1069, "start": 2, "count": 3}),
             ("gf3_triad", {"trits": [1, 0]}),
             ("gf3_triad", {"statement": "a (-1) ⊗ b (0) ⊗ c (+1) = 0 ✓"}),
             ("ff_color_learn", {"name": "warm", "positive": ["#D82626", "#E67F86"], "negative": ["#2626D8"],
                                 "epochs": 5}),
             ("ff_color_score", {"model": "warm", "colors": ["#FF0000", "#0000FF"]}),
             ("ff_models", {})]
    tools = InProcessTools()
    assert {tool for tool, _ in calls} == set(tools.tool_names)  # every in-process tool is compared

    def shape(value):
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shape(value[0])] if value else []
        return type(value).__name__ if value is not None else None

    async def over_mcp():
        answers = []
        async with Client(build_server(ServerConfig(home=tmp_path))) as client:
            for tool, arguments in calls:
                result = await client.call_tool(tool, arguments)
                assert not result.is_error, result.content[0].text
                answers.append(result.structured_content)
        return answers

    for (tool, arguments), server_answer in zip(calls, anyio.run(over_mcp)):
        in_process = tools.call(tool, arguments)
        assert set(in_process) == set(server_answer), tool
        if tool != "ff_models":  # cards hold times and sizes; their fields are compared below
            assert shape(in_process) == shape(server_answer), tool
    mine, theirs = tools.call("ff_models")["models"][0], anyio.run(over_mcp)[-1]["models"][0]
    assert set(mine) == set(theirs) and set(mine["extra"]) == set(theirs["extra"])
