"""``ff-mcp demo``: a real stdio MCP session, printed as a transcript.

The SDK's client launches ``ff-mcp serve`` as a subprocess (exactly what an MCP host such as
Claude Desktop does), trains a Forward-Forward network on scikit-learn's digits with progress
notifications, predicts the held-out images, asks for per-layer goodness and lists the models.
The transcript goes to stdout; the server's own log goes to stderr.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from pathlib import Path
from typing import Any

MODEL = "digits-demo"


DEFAULT_HOME = "ff-mcp-demo"  # in the current directory: the demo's models and plot stay where you can see them


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="an MCP session end to end: train on digits, predict, goodness",
                       description="Launch `ff-mcp serve` over stdio and drive it with the MCP SDK's client.")
    p.add_argument("--home", default=DEFAULT_HOME,
                   help=f"model registry for the session; the models and the plot stay there (default ./{DEFAULT_HOME})")
    p.add_argument("--epochs", type=int, default=60, help="training epochs (default 60, about 15 s on a laptop CPU)")
    p.add_argument("--hidden", default="500,500", help="hidden layer sizes (default 500,500)")
    p.add_argument("--batch-size", type=int, default=50)
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    import anyio

    if not 1 <= args.epochs <= 1000:
        raise ValueError(f"--epochs must be in [1, 1000], got {args.epochs}")
    hidden = [int(h) for h in str(args.hidden).split(",") if h.strip()]
    return anyio.run(run_demo, Path(args.home).expanduser().absolute(), args.epochs, hidden, args.batch_size)


def say(text: str = "") -> None:
    print(text, flush=True)


def show_call(tool: str, arguments: dict[str, Any]) -> None:
    shown = {k: _abbreviate(v) for k, v in arguments.items()}
    say(f"\n>>> {tool}({', '.join(f'{k}={v}' for k, v in shown.items())})")


def _abbreviate(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], list):
        return f"<{len(value)} rows x {len(value[0])} values>"
    if isinstance(value, list) and len(value) > 8:
        return f"[{', '.join(map(str, value[:8]))}, ... {len(value)} values]"
    return json.dumps(value)


async def run_demo(home: Path, epochs: int, hidden: list[int], batch_size: int) -> int:
    import anyio
    from mcp import Client, StdioServerParameters

    from ff_mcp.data import load_dataset

    data = load_dataset("digits")
    x_test, y_test = data.x_test.tolist(), data.y_test.tolist()
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "ff_mcp", "serve", "--data-dir", str(home)])
    say("ff-mcp demo: an MCP client (the official Python SDK) talks to `ff-mcp serve` over stdio")
    say(f"server command: {sys.executable} -m ff_mcp serve --data-dir {home}")
    started = time.perf_counter()
    async with Client(params, read_timeout_seconds=900) as client:
        say(f"connected in {time.perf_counter() - started:.1f} s, protocol {client.protocol_version}")
        tools = (await client.list_tools()).tools
        say(f"\n>>> tools/list\n<<< {len(tools)} tools: {', '.join(t.name for t in tools)}")

        show_call("ff_datasets", {})
        sets = (await client.call_tool("ff_datasets", {})).structured_content["datasets"]
        for d in sets:
            where = d["location"] if d["available"] else f"unavailable: {d['detail']}"
            say(f"<<< {d['name']:<14} {d['train_size']:>6} train / {d['test_size']:>5} test  {where}")

        arguments = {"name": MODEL, "dataset": "digits", "hidden": hidden, "epochs": epochs,
                     "batch_size": batch_size, "seed": 0, "wait_seconds": 600}
        show_call("ff_train", arguments)
        every = max(1, epochs // 10)  # about ten progress lines for the whole run
        shown = {"epoch": -1, "at": time.perf_counter()}

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            epoch, now = int(progress), time.perf_counter()
            finished = total is not None and progress >= total
            if (epoch % every == 0 and epoch != shown["epoch"]) or finished or now - shown["at"] >= 10:
                shown.update(epoch=epoch, at=now)
                say(f"... progress {progress:6.2f}/{total:g}  {message or ''}")

        result = await client.call_tool("ff_train", arguments, progress_callback=on_progress)
        if result.is_error:
            print(f"error: {result.content[0].text}", file=sys.stderr)
            return 1
        job = result.structured_content
        while job["state"] in ("queued", "running"):  # a slow machine: keep polling
            await anyio.sleep(1.0)
            job = (await client.call_tool("ff_job_status", {"job_id": job["job_id"]})).structured_content
        metrics = job["metrics"] or {}
        say(f"<<< job {job['job_id']}: {job['state']} after {job['epoch']} epochs, "
            f"test accuracy {_pct(metrics.get('test_accuracy'))}, train accuracy {_pct(metrics.get('train_accuracy'))}, "
            f"{metrics.get('train_seconds', 0):.1f} s training")
        if job["state"] != "done":
            print(f"error: training ended {job['state']}: {job.get('error')}", file=sys.stderr)
            return 1

        show_call("ff_predict", {"model": MODEL, "x": x_test})
        pred = (await client.call_tool("ff_predict", {"model": MODEL, "x": x_test})).structured_content
        correct = sum(int(p == t) for p, t in zip(pred["labels"], y_test))
        say("    (FF predicts by trying every label: each row's label is the one whose embedding makes its layers'"
            " goodness highest)")
        say(f"<<< {len(pred['labels'])} labels ({pred['method']} scores); first 12: {pred['labels'][:12]}")
        say(f"    true labels:              {y_test[:12]}")
        say(f"    accuracy on the {len(y_test)} held-out digits: {correct}/{len(y_test)} = "
            f"{100 * correct / len(y_test):.2f} %")

        rows, right = x_test[:3], y_test[:3]
        wrong = [(t + 1) % 10 for t in right]
        say("\n    (goodness: a layer's sum of squared activities. FF trains it high for real data with its true"
            " label, low for data with a wrong one; p = sigmoid(goodness - threshold) is the layer's belief that"
            " the input is real. Expect the true labels' values above the wrong ones'.)")
        for labels, what in ((right, "the true labels"), (wrong, "wrong labels")):
            show_call("ff_goodness", {"model": MODEL, "x": rows, "labels": labels})
            good = (await client.call_tool("ff_goodness", {"model": MODEL, "x": rows, "labels": labels}))
            layers = good.structured_content["layers"]
            say(f"<<< with {what}:")
            for i, layer in enumerate(layers):
                values = ", ".join(f"{g:8.2f} (p={p:.2f})" for g, p in zip(layer["goodness"], layer["p_positive"]))
                say(f"    layer {i}: {values}")

        show_call("ff_models", {})
        for card in (await client.call_tool("ff_models", {})).structured_content["models"]:
            say(f"<<< {card['name']}: hidden {card['config'].get('hidden')}, {card['bytes'] / 1e6:.2f} MB, "
                f"test accuracy {_pct(card['metrics'].get('test_accuracy'))}, saved {card['created']}")

        show_call("ff_plot", {"model": MODEL})
        plot = await client.call_tool("ff_plot", {"model": MODEL})
        plot_path = None
        if plot.is_error:
            say(f"<<< no plot: {plot.content[0].text}")
        else:
            image = next(c for c in plot.content if c.type == "image")
            plot_path = home / f"{MODEL}.png"
            plot_path.write_bytes(base64.b64decode(image.data))
            say(f"<<< a {plot.structured_content['width']} x {plot.structured_content['height']} PNG: loss per layer, "
                f"accuracy per epoch, goodness of true vs wrong labels per layer")
    say(f"\ndone in {time.perf_counter() - started:.1f} s. The model stays in {home / 'models'} "
        f"(ff-mcp serve --data-dir {home} serves it again)")
    if plot_path is not None:
        say(f"plot: {plot_path}")
    return 0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"
