"""Every request is answered: hostile, malformed and oversized requests get a JSON-RPC error with
their id over stdio and over HTTP, and the server keeps serving."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import RawStdioServer, serve_command
from ff_mcp.server.wire import screen_line, sniff_id

DEEP = "[" * 500 + "]" * 500
HOSTILE = {  # request id -> (raw line, JSON-RPC code, words of the message)
    11: ('{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"ff_models","arguments":{"x":"\\ud800"}}}',
         -32700, "lone surrogate"),
    12: ('{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"name":"ff_models","arguments":{"x":%s}}}' % DEEP,
         -32700, "nested too deeply"),
    13: ('{"jsonrpc":"2.0","id":13,"method":"tools/call","params":{"name":"ff_train","arguments":{"epochs":%s}}}'
         % ("9" * 5000), -32700, "number is out of range"),
    14: ('{"jsonrpc":"2.0","id":14,"method":"tools/call","params":[1,2]}', -32600, "params: input should be an object"),
    15: ('{"jsonrpc":"2.0","id":"s-15","method":"tools/call","params":{"name":"ff_models"', -32700, "Parse error"),
}


@pytest.mark.parametrize("request_id", sorted(HOSTILE))
def test_screen_answers_each_hostile_request_with_its_id(request_id):
    line, code, words = HOSTILE[request_id]
    message, refusal = screen_line(line.encode())
    assert message is None
    error = refusal.message
    assert error.id == (request_id if request_id != 15 else "s-15")
    assert error.error.code == code and words in error.error.message
    assert "\n" not in error.error.message and "type=" not in error.error.message


def test_screen_passes_requests_and_drops_what_has_no_one_to_answer():
    ok, refusal = screen_line(b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}')
    assert refusal is None and ok.message.id == 1
    assert screen_line(b"   ") == (None, None)
    assert screen_line(b'{"jsonrpc":"2.0","method":"notifications/x","params":[1]}') == (None, None)  # a notification
    batch = screen_line(b'[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]')[1].message
    assert batch.id is None and "one JSON-RPC object, got a batch" in batch.error.message


@pytest.mark.parametrize("line", [
    '{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}',  # an id no answer can carry
    '{"jsonrpc":"2.0","id":"\\ud800","method":"ping","params":{"x":"\\ud800"}}',
    '{"jsonrpc":"2.0","id":true,"method":"ping"}',  # decodes as a notification, but it has an id
    '{"jsonrpc":"2.0","id":1.5,"method":"ping"}',
])
def test_requests_with_ids_no_answer_can_carry_are_answered_with_a_null_id(line):
    message, refusal = screen_line(line.encode())
    assert message is None and refusal.message.id is None
    refusal.message.model_dump_json()  # serialisable


def test_sniff_id_reads_the_id_of_a_truncated_request():
    assert sniff_id(b'{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"x":[[1,2') == 42
    assert sniff_id(b'{"id": "abc", "method"') == "abc"
    assert sniff_id(b'{"jsonrpc":"2.0","method":"x"') is None
    assert sniff_id(b'{"id": 1.5}') is None  # not a JSON-RPC id


def test_stdio_answers_hostile_and_oversized_requests_and_stays_up(home):
    server = RawStdioServer(home, "--max-request-bytes", "200000")
    try:
        server.initialize()
        for request_id, (line, code, words) in HOSTILE.items():
            started = time.monotonic()
            server.send_raw(line)
            answer = server.answer(request_id if request_id != 15 else "s-15", timeout=10)
            assert answer["error"]["code"] == code and words in answer["error"]["message"], answer
            assert time.monotonic() - started < 10
        server.send_raw('{"jsonrpc":"2.0","id":"\\ud800","method":"ping"}')
        assert server.answer(None, timeout=10)["error"]["code"] in (-32700, -32600)
        big = json.dumps({"jsonrpc": "2.0", "id": 21, "method": "tools/call",
                          "params": {"name": "ff_predict", "arguments": {"model": "m", "x": [[0.5] * 1000] * 100}}})
        assert len(big) > 200_000
        server.send_raw(big)
        answer = server.answer(21, timeout=10)
        assert answer["error"]["code"] == -32600 and "request size limit of 200000 bytes" in answer["error"]["message"]
        assert "ff_models" in {t["name"] for t in server.request("tools/list", {}, timeout=10)["result"]["tools"]}
        assert not server.call("ff_models", {}, timeout=10)["isError"]
    finally:
        rc = server.close()
    assert server.non_json == []
    assert rc == 0, "".join(server.stderr)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json",
                                                              "Accept": "application/json, text/event-stream"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, {"raw": response.read().decode()}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_http_answers_hostile_and_oversized_requests_with_their_ids(home, tmp_path):
    port = _free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(serve_command(home, "--http", "--port", str(port), "--max-request-bytes", "200000"),
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.1)
        for request_id, (line, code, words) in HOSTILE.items():
            status, body = _post(url, line.encode())
            assert status == 400 and body["error"]["code"] == code and words in body["error"]["message"], body
            assert body["id"] == (request_id if request_id != 15 else "s-15")
        status, body = _post(url, b'{"jsonrpc":"2.0","id":7,"method":"x","params":{"pad":"' + b"a" * 300_000 + b'"}}')
        assert status == 413 and "request size limit of 200000 bytes" in body["error"]["message"]
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
        status, body = _post(url, json.dumps(init).encode())
        assert status == 200 and '"serverInfo"' in body["raw"]
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
