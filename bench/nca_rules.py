"""The NCA's update rule learned forward-only beside back-propagation through time, same targets, same run.

For each committed target (ff_mcp/nca/images: smiley, ring; 32x32 RGBA on a 40x40 grid) and each
rule, a fresh process trains the rule and scores it: RGBA mean squared error to the target after 96
steps from the seed (4 runs), and after a fixed disk of damage and 96 more steps the fraction of the
damaged target pixels within 0.15 of the target (beside the fraction that was right before the
damage), training seconds and the process's peak resident memory. Rules:

- bptt: the Distill paper's training at CPU scale (ff_mcp/nca/rules.py: train_bptt);
- ff: the forward-only rule (FF hidden layer, delta-rule output, teacher forcing, no gradient through time);
- ff-fixed-hidden: the same with the hidden layer left at its random start (does FF's layer matter?);
- onestep-backprop: the same teacher forcing with the one-step error back-propagated through both
  layers (a diagnostic: FF's locality removed, still no gradient through time).

The empty grid's MSE is given per target as the floor a rule must beat to have grown anything.

    python bench/nca_rules.py --record
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RULES = {
    "bptt": {"rule": "bptt"},
    "ff": {"rule": "ff"},
    "ff-fixed-hidden": {"rule": "ff", "hidden_rule": "fixed"},
    "onestep-backprop": {"rule": "ff", "hidden_rule": "backprop"},
}


def one(target_name: str, rule_name: str, iterations: int, strips: Path | None) -> dict:
    import jax.numpy as jnp

    from ff_mcp.nca import core, measure, rules
    from ff_mcp.nca.targets import NAMES, path_of

    target = core.load_target(path_of(target_name), 4)
    other_name = next(n for n in NAMES if n != target_name)
    other = core.load_target(path_of(other_name), 4)
    config = rules.NcaConfig(iterations=iterations, **RULES[rule_name])
    params, losses, seconds = rules.train(target, config, other=other if config.rule == "ff" else None)
    scores = measure.growth_and_regeneration(params, target)
    if strips is not None:
        strips.mkdir(parents=True, exist_ok=True)
        (strips / f"{target_name}-{rule_name}.png").write_bytes(measure.png_bytes(measure.strip(params, target)))
    return {"target": target_name, "rule": rule_name, "config": config.__dict__, "train_seconds": round(seconds, 1),
            "final_loss": round(losses[-1], 6), "empty_grid_mse": round(float(jnp.mean(target ** 2)), 6),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), **scores}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="smiley,ring")
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--bptt-iterations", type=int, default=1000)
    parser.add_argument("--ff-iterations", type=int, default=2000)
    parser.add_argument("--record", action="store_true", help="write bench/results/nca-rules-....json and the strips")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: "target:rule:iterations:strip-dir"
    args = parser.parse_args()
    if args.one:
        target, rule, iterations, strip_dir = args.one.split(":", 3)
        print("RESULT " + json.dumps(one(target, rule, int(iterations), Path(strip_dir) if strip_dir else None)))
        return 0
    rules = args.rules.split(",")
    unknown = set(rules) - set(RULES)
    if unknown:
        parser.error(f"--rules: unknown {sorted(unknown)}; choose from {list(RULES)}")
    from ff_mcp.bench import RESULTS_DIR, record, script_command

    import datetime as dt

    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M")
    strips = RESULTS_DIR / "nca" / stamp if args.record else None  # a new folder a run: never overwritten
    runs = []
    for target in args.targets.split(","):
        for rule in rules:
            iterations = args.bptt_iterations if rule == "bptt" else args.ff_iterations
            out = subprocess.run([sys.executable, __file__, "--one", f"{target}:{rule}:{iterations}:{strips or ''}"],
                                 check=True, capture_output=True, text=True).stdout
            run = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
            runs.append(run)
            print(json.dumps({k: run[k] for k in ("target", "rule", "train_seconds", "growth_mse", "empty_grid_mse",
                                                  "right_before_damage", "restored_after_damage", "peak_rss_mb")}),
                  flush=True)
    if args.record:
        import jax
        import torch

        payload = {"jax_version": jax.__version__, "grid": "32x32 targets padded by 4: 40x40, 16 channels",
                   "scores": "growth_mse after 96 steps from the seed (4 runs); restored_after_damage: fraction of "
                             "the damaged target pixels (a disk of radius H/5 left of centre) within 0.15 of the "
                             "target after 96 more steps", "runs": runs,
                   "strips": f"{strips}/<target>-<rule>.png"}
        path = record("nca-rules", f"{'-'.join(args.targets.split(','))}-bptt{args.bptt_iterations}-ff{args.ff_iterations}",
                      payload, torch.device("cpu"), command=script_command())
        print(f"recorded {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
