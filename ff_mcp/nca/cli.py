"""`ff-mcp nca train` and `ff-mcp nca grow`: a cellular automaton's rule learned for a target image,
and the pictures of what it grows."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

TARGET_NAMES = ("smiley", "ring")  # ff_mcp/nca/targets.py; kept here so the parser needs no JAX


def add_parser(sub: argparse._SubParsersAction) -> None:
    nca = sub.add_parser("nca", help="a neural cellular automaton whose rule is learned (forward-only or BPTT)")
    commands = nca.add_subparsers(dest="nca_command", required=True)
    train = commands.add_parser("train", help="learn a rule that grows (and regrows) a target image")
    train.add_argument("--target", required=True,
                       help=f"an RGBA PNG (at most 128x128), or a committed target: {', '.join(TARGET_NAMES)}")
    train.add_argument("--rule", choices=("ff", "bptt"), default="ff",
                       help="ff: forward-only (FF hidden layer, delta-rule output, no gradient through time); "
                            "bptt: back-propagation through 32-48 steps (the Distill paper's training)")
    train.add_argument("--out", required=True, help="directory for rule.safetensors, strip.png and metrics.json")
    train.add_argument("--name", default=None,
                       help="also save the rule as NAME in the server's home (HOME/nca), for the MCP tool ff_nca_grow")
    train.add_argument("--home", default=None,
                       help="the server's home for --name: what `ff-mcp serve --data-dir` was given (default: "
                            "FF_MCP_HOME, else the user data directory)")
    train.add_argument("--iterations", type=int, default=None, help="default: 2000 (ff), 1000 (bptt)")
    train.add_argument("--pad", type=int, default=4, help="empty cells around the target (default 4)")
    train.add_argument("--other", default="auto",
                       help="ff: another target whose states are negatives (auto: the other committed target; none)")
    train.add_argument("--hidden-rule", choices=("ff", "fixed", "backprop"), default="ff",
                       help="ff rule: how its hidden layer learns: ff (default), fixed (left random: an ablation), "
                            "backprop (the one-step error through both layers: a diagnostic, not forward-only)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--json", action="store_true", help="print the result as one JSON line")
    train.add_argument("--quiet", action="store_true", help="no progress on stderr")
    train.set_defaults(func=cmd_train)
    grow = commands.add_parser("grow", help="grow a trained rule from the seed (and regrow it after damage)")
    grow.add_argument("--model", required=True, help="a rule.safetensors written by ff-mcp nca train")
    grow.add_argument("--steps", type=int, default=96, help="growth steps, and as many after the damage (1-1000)")
    grow.add_argument("--no-damage", action="store_true", help="growth only")
    grow.add_argument("--out", required=True, help="the PNG strip to write")
    grow.add_argument("--seed", type=int, default=0)
    grow.add_argument("--json", action="store_true")
    grow.set_defaults(func=cmd_grow)


def _target_path(target: str) -> Path:
    from ff_mcp.nca.targets import path_of

    if target in TARGET_NAMES:
        return path_of(target)
    path = Path(target)
    if not path.is_file():
        raise ValueError(f"--target: {target!r} is neither a PNG file nor one of {', '.join(TARGET_NAMES)}")
    return path


def _load_jax():
    try:
        from ff_mcp.nca import core, measure, rules
    except ImportError as exc:
        raise ValueError(f"ff-mcp nca: {exc}") from None
    return core, measure, rules


def cmd_train(args: argparse.Namespace) -> int:
    core, measure, rules = _load_jax()
    if not 0 <= args.pad <= 64:
        raise ValueError(f"--pad must be in [0, 64], got {args.pad}")
    if args.name is not None:
        from ff_mcp.tools import validate_name

        validate_name(args.name, "--name")
    target_path = _target_path(args.target)
    target = core.load_target(target_path, args.pad)
    other = None
    if args.rule == "ff" and args.other != "none":
        name = next((n for n in TARGET_NAMES if n != args.target), TARGET_NAMES[0]) if args.other == "auto" else None
        other_path = _target_path(name or args.other)
        other = _fit(core.load_target(other_path, 0), target.shape[:2])
    if args.iterations is not None and not 1 <= args.iterations <= 100_000:
        raise ValueError(f"--iterations must be in [1, 100000], got {args.iterations}")
    iterations = args.iterations or (2000 if args.rule == "ff" else 1000)
    if args.rule == "bptt" and args.other not in ("auto", "none"):
        raise ValueError(f"--other {args.other}: only the ff rule uses another target (as negatives)")
    if args.rule == "bptt" and args.hidden_rule != "ff":
        raise ValueError(f"--hidden-rule {args.hidden_rule}: only the ff rule has one (bptt trains both layers)")
    config = rules.NcaConfig(rule=args.rule, iterations=iterations, seed=args.seed, hidden_rule=args.hidden_rule)
    started = time.perf_counter()

    def progress(iteration: int, loss: float) -> None:
        if not args.quiet and (iteration % 50 == 0 or iteration == iterations):
            print(f"iteration {iteration}/{iterations}  loss {loss:.5f}  {time.perf_counter() - started:.0f} s",
                  file=sys.stderr, flush=True)

    params, losses, seconds = rules.train(target, config, other, progress)
    result = measure.growth_and_regeneration(params, target)
    out = Path(args.out)
    meta: dict[str, Any] = {"rule": args.rule, "hidden_rule": args.hidden_rule if args.rule == "ff" else None,
                            "target": str(args.target), "pad": args.pad,
                            "iterations": iterations, "seed": args.seed, "train_seconds": round(seconds, 1),
                            "target_rgba": _encode(target)}
    rule_path = measure.save_rule(out / "rule.safetensors", params, meta)
    if args.name is not None:
        from ff_mcp.server.state import default_home

        home = Path(args.home).expanduser() if args.home else default_home()
        published = measure.save_rule(home / "nca" / f"{args.name}.safetensors", params, meta)
    picture = measure.strip(params, target)
    strip_path = out / "strip.png"
    strip_path.write_bytes(measure.png_bytes(picture))
    summary = {"rule": args.rule, "target": str(args.target), "iterations": iterations,
               "train_seconds": round(seconds, 1), "final_loss": round(losses[-1], 6), **result,
               "model": str(rule_path), "strip": str(strip_path),
               **({"served_as": args.name, "served_file": str(published)} if args.name is not None else {})}
    (out / "metrics.json").write_text(json.dumps({**summary, "loss_every_50": losses[::50]}, indent=1) + "\n")
    if args.json:
        print(json.dumps(summary))
    else:
        print("\n".join(f"{k:<22}{v}" for k, v in summary.items()))
    return 0


def cmd_grow(args: argparse.Namespace) -> int:
    core, measure, _ = _load_jax()
    if not 1 <= args.steps <= 1000:
        raise ValueError(f"--steps must be in [1, 1000], got {args.steps}")
    params, meta = measure.load_rule(args.model)
    target = _decode(meta)
    picture = measure.strip(params, target, steps=args.steps, damage=not args.no_damage, seed=args.seed)
    Path(args.out).write_bytes(measure.png_bytes(picture))
    result = {"strip": args.out, "steps": args.steps, "damage": not args.no_damage, "rule": meta.get("rule")}
    print(json.dumps(result) if args.json else f"wrote {args.out}")
    return 0


def _fit(image, shape):
    """``image`` (h, w, 4) centred on a zero grid of ``shape`` (cropped where larger)."""
    import jax.numpy as jnp
    import numpy as np

    h, w = shape
    out = np.zeros((h, w, 4), np.float32)
    src = np.asarray(image)
    top, left = max(0, (src.shape[0] - h) // 2), max(0, (src.shape[1] - w) // 2)
    src = src[top : top + h, left : left + w]
    top, left = (h - src.shape[0]) // 2, (w - src.shape[1]) // 2
    out[top : top + src.shape[0], left : left + src.shape[1]] = src
    return jnp.asarray(out)


def _encode(target) -> dict[str, Any]:
    import numpy as np

    values = np.asarray(target, np.float32)
    return {"shape": list(values.shape), "values": np.round(values, 4).ravel().tolist()}


def _decode(meta: dict[str, Any]):
    import jax.numpy as jnp
    import numpy as np

    try:
        spec = meta["target_rgba"]
        target = np.asarray(spec["values"], np.float32).reshape(spec["shape"])
    except (KeyError, ValueError, TypeError):
        raise ValueError("model: the rule's file keeps no target picture (not written by ff-mcp nca train)") from None
    if target.ndim != 3 or target.shape[2] != 4 or not (3 <= min(target.shape[:2]) and max(target.shape[:2]) <= 256):
        raise ValueError(f"model: the rule's target picture has shape {target.shape}; an RGBA grid (H, W, 4) is needed")
    return jnp.asarray(target)
