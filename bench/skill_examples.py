"""The calls skill.md shows, made for real and recorded: every example result in skill.md comes from
the file this writes.

    .venv/bin/python bench/skill_examples.py [--record]

A fresh registry (a temporary FF_MCP_HOME), the default server limits, the SDK's in-process ``Client``
(protocol 2026-07-28, ``mode="auto"``), the calls in skill.md's order. Each call is kept whole: tool,
arguments, whether it was an error, the structured result (image content is noted by its MIME type and
size, not kept). Then README's Clojure REPL example, evaluated in the JPype-hosted JVM (skipped, with
the reason kept, where JPype or Debian's clojure jar is missing). ``ff_nca_grow`` is not run here: it needs a BPTT-trained rule (15 minutes); skill.md
quotes its result from bench/results/nca-rules-*.json. With ``--record`` the calls are written to
bench/results/skill-examples-<date>.json, never over an earlier file.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WARM = ["#D82626", "#E67F86", "#FF8000", [0.75, 0.2, 0.3]]


async def run_examples() -> list[dict]:
    import anyio
    from mcp import Client

    from ff_mcp.data import load_dataset
    from ff_mcp.server import ServerConfig, build_server

    calls: list[dict] = []
    digits = load_dataset("digits")
    first_two = [[round(float(v), 6) for v in row] for row in digits.x_test[:2]]
    true_labels = [int(v) for v in digits.y_test[:2]]

    with tempfile.TemporaryDirectory() as home:
        server = build_server(ServerConfig(home=Path(home)))
        async with Client(server, mode="auto") as client:

            async def call(tool: str, arguments: dict, note: str | None = None) -> dict:
                started = time.perf_counter()
                res = await client.call_tool(tool, arguments)
                seconds = time.perf_counter() - started
                images = [{"mime_type": c.mime_type, "base64_chars": len(c.data)} for c in res.content
                          if getattr(c, "type", None) == "image"]
                entry = {"tool": tool, "arguments": arguments, "is_error": bool(res.is_error),
                         "result": res.structured_content if not res.is_error else None,
                         "error": res.content[0].text if res.is_error else None,
                         "images": images, "call_seconds": round(seconds, 4)}
                if note:
                    entry["note"] = note
                calls.append(entry)
                print(f"{tool:16s} {'error' if res.is_error else 'ok':5s} {seconds:7.3f} s", flush=True)
                return entry

            await call("ff_datasets", {})
            trained = await call("ff_train", {"name": "digits-ff", "dataset": "digits", "hidden": [200, 200],
                                              "epochs": 20, "seed": 0, "wait_seconds": 120})
            await call("ff_job_status", {"job_id": trained["result"]["job_id"]})
            slow = await call("ff_train", {"name": "slow", "dataset": "digits", "hidden": [500, 500], "epochs": 200,
                                           "wait_seconds": 0})
            await anyio.sleep(3.0)  # let it start and train a few epochs
            await call("ff_job_cancel", {"job_id": slow["result"]["job_id"]}, note="3 s after the job was queued")
            await call("ff_predict", {"model": "digits-ff", "x": first_two},
                       note=f"the first two test rows of digits (pixels / 16), true labels {true_labels}")
            await call("ff_goodness", {"model": "digits-ff", "x": first_two[:1], "labels": true_labels[:1]})
            await call("ff_models", {})
            await call("ff_model_info", {"model": "digits-ff"})
            await call("ff_plot", {"model": "digits-ff"})
            await call("ff_variants", {})
            await call("ff_model_delete", {"model": "slow"})
            await call("ff_color_learn", {"name": "warm", "positive": WARM, "seed": 1069})
            await call("ff_goodness", {"model": "warm", "x": [[1.0, 0.25, 0.0]]})
            await call("ff_color_score", {"model": "warm", "colors": ["#FF4000", "#2060F0", "#26D826"], "image": True})
            await call("color_seed", {"seed": 1069, "start": 0, "count": 3})
            await call("gf3_triad", {"trits": [-1, 0]})
            await call("gf3_triad", {"statement": "proofgeneral-narya (-1) ⊗ unworld (+1) ⊗ forward-forward-learning (+1)"})
            resource = await client.read_resource("ff://models/warm")
            calls.append({"resource": "ff://models/warm", "result": json.loads(resource.contents[0].text)})
    return calls


REPL = ['(def r (pcf/ff-color-learning ["#D82626" "#E67F86" "#BA2645"] ["#2626D8" "#1316BB" "#76B0F0"] :seed 1069))',
        "(pr-str (select-keys r [:goodness-pos :goodness-neg :margin :accuracy]))"]


def run_repl_example() -> dict:
    """README's REPL lines, in the namespace the REPL opens (pcf = music-topos.parallel-color-fork)."""
    try:
        from ff_mcp.clojure import jvm

        jvm.start()
        jvm.require("music-topos.parallel-color-fork")
        jvm.eval_string("(alias 'pcf 'music-topos.parallel-color-fork)")
        values = [jvm.eval_string(form) for form in REPL]
    except Exception as exc:  # noqa: BLE001 (recorded: a machine without the JVM side still records the rest)
        return {"forms": REPL, "skipped": f"{type(exc).__name__}: {exc}"}
    return {"forms": REPL, "printed": values[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help="write bench/results/skill-examples-<date>.json")
    args = parser.parse_args(argv)

    import anyio
    import torch

    calls = anyio.run(run_examples)
    repl = run_repl_example()
    print("clojure repl:", repl.get("printed") or repl.get("skipped"), flush=True)
    if args.record:
        import datetime as dt

        from ff_mcp.bench import record

        tag = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
        path = record("skill-examples", tag, {"calls": calls, "clojure_repl": repl, "torch_threads": torch.get_num_threads(),
                                              "client": "mcp.Client in-process, mode auto"},
                      torch.device("cpu"),
                      command="python bench/skill_examples.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        print(f"recorded {path}")
    else:
        print("not written (pass --record to keep the calls)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
