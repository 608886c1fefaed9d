"""A scripted stand-in for `ff-mcp serve`, for the stdio client's tests (ff-mcp.bridge-stdio-test).

Usage: python fake_mcp_server.py MODE. Standard library only, so it starts in a blink.
  ok            answers initialize, tools/list and tools/call (echo); before each tools/call answer it
                sends a notification and a non-JSON line, which the client must skip.
                Tool "fail" gives an isError result; method "boom" gives a JSON-RPC error.
  exit          writes a message to stderr and exits with code 3 before reading anything.
  silent        reads requests and never answers.
  die-on-call   answers initialize, then exits with code 4 on the first tools/call.
  hang-on-call  answers initialize, then never answers tools/call.
"""

import json
import sys
import time


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main(mode):
    if mode == "exit":
        print("fake server: cannot start (scripted failure)", file=sys.stderr, flush=True)
        sys.exit(3)
    for line in sys.stdin:
        msg = json.loads(line)
        method, rid = msg.get("method"), msg.get("id")
        if rid is None or mode == "silent":
            continue  # notifications get no answer
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": rid, "result": {
                "protocolVersion": msg["params"]["protocolVersion"], "capabilities": {"tools": {}},
                "serverInfo": {"name": "fake", "version": "0"}}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": rid, "result": {"tools": [{"name": "echo"}, {"name": "fail"}]}})
        elif method == "tools/call":
            if mode == "die-on-call":
                print("fake server: dying on tools/call", file=sys.stderr, flush=True)
                sys.exit(4)
            if mode == "hang-on-call":
                time.sleep(3600)
            name, args = msg["params"]["name"], msg["params"].get("arguments", {})
            send({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "hi"}})
            sys.stdout.write("this line is not JSON\n")
            if name == "fail":
                send({"jsonrpc": "2.0", "id": rid, "result": {
                    "content": [{"type": "text", "text": "Error executing tool fail: positive[0]: bad color"}],
                    "isError": True}})
            elif name == "text-only":
                send({"jsonrpc": "2.0", "id": rid, "result": {
                    "content": [{"type": "text", "text": json.dumps({"echo": args})}], "isError": False}})
            else:
                send({"jsonrpc": "2.0", "id": rid, "result": {
                    "content": [{"type": "text", "text": json.dumps({"echo": args})}],
                    "structuredContent": {"echo": args}, "isError": False}})
        else:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found",
                                                         "data": method}})


if __name__ == "__main__":
    main(sys.argv[1])
