"""Peak training memory against depth, FF beside backprop, split into model state and working memory.

Each (method, depth) point runs in a fresh subprocess: MLP 784 -> depth x 1000, batch 1000 (so
2000 FF rows: positives and negatives), Adam, a few training steps on random MNIST-shaped data.

- CPU: peak RSS of the subprocess (VmHWM, reset after a warm-up) minus its RSS just before the model
  is built, with glibc's mmap threshold fixed so freed tensors go back to the OS.
- CUDA: torch.cuda.max_memory_allocated minus the allocation before the model is built.

model state = parameters + optimizer state (+ gradients for backprop, which holds all of them at
once; FF frees each layer's gradients right after its step), measured as what the process still
holds after the training steps (``held``: CUDA's allocated bytes, or RSS, minus the baseline).
working memory = peak - held: activations, autograd graphs, temporaries. The claim under test:
FF's working memory stays flat in depth (one layer's graph at a time) while backprop's grows.

Each row also keeps the counted model state (the tensors' own bytes). CUDA's caching allocator
holds model-state tensors in blocks up to 1 MiB larger than asked for when it serves them from
cached free blocks, so on CUDA ``held`` exceeds the counted bytes by 0-16 MiB depending on the
order of allocations; counting that slack as working memory made FF's working memory look like it
grew with depth (30.7 -> 46.6 MiB) while peak - held is flat (30.7 -> 30.7).

    python bench/memory_depth.py [--depths 2,4,8,16,32] [--device cpu|cuda]
    python bench/memory_depth.py --replot bench/results/memory-depth-cuda.json   # derive again, re-plot
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(method: str, depth: int, width: int, batch: int, steps: int, device_name: str) -> dict:
    import torch

    from ff_mcp.engine import NetworkConfig, OptimizerConfig, Trainer, TrainConfig, build_network
    from ff_mcp.engine.backprop import BackpropNet

    device = torch.device(device_name)
    x = torch.rand(batch, 784, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    cfg = NetworkConfig(in_features=784, num_classes=10, hidden=(width,) * depth, readout=False)

    def rss_bytes() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()

    def peak_rss_bytes() -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    # Warm up on a one-layer network of the same width and batch, so thread pools, kernels and
    # lazily imported modules exist before the baseline; then reset the peak-RSS mark.
    warm = build_network(NetworkConfig(in_features=784, num_classes=10, hidden=(width,), readout=False), 0, device)
    warm_trainer = Trainer(warm, TrainConfig(epochs=1, batch_size=batch, device=device_name))
    warm_trainer.session.train_step(x, y, torch.arange(batch, device=device), torch.Generator(device=device).manual_seed(0))
    BackpropNet(NetworkConfig(in_features=784, num_classes=10, hidden=(width,))).to(device)(x).sum().backward()
    del warm, warm_trainer
    if device.type != "cuda":
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM (Linux >= 4.0)

    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        before = rss_bytes()
    opt_cfg = OptimizerConfig("adam", 1e-3)
    if method == "ff":
        net = build_network(cfg, seed=0, device=device)
        trainer = Trainer(net, TrainConfig(epochs=1, batch_size=batch, optimizer=opt_cfg, device=device_name))
        gen = torch.Generator(device=device).manual_seed(0)
        trace: list[tuple[float, float]] = []  # CUDA: (allocated, peak so far) MiB after each layer's step
        if device.type == "cuda":
            layer_step = trainer.session.layer_step

            def traced(*a, **kw):
                result = layer_step(*a, **kw)
                torch.cuda.synchronize()
                trace.append((round((torch.cuda.memory_allocated() - before) / 2**20, 2),
                              round((torch.cuda.max_memory_allocated() - before) / 2**20, 2)))
                return result

            trainer.session.layer_step = traced
        for _ in range(steps):
            trace.clear()  # keep the last step's
            trainer.session.train_step(x, y, torch.arange(batch, device=device), gen)
        params = sum(p.numel() * p.element_size() for p in net.parameters())
        grads = 0  # freed after each layer's step
        optim_state = sum(t.numel() * t.element_size() for opt in trainer.session.optimizers
                          for st in opt.state.values() for t in st.values() if torch.is_tensor(t))
    else:
        net = BackpropNet(cfg).to(device)
        opt = opt_cfg.build(list(net.parameters()))
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            opt.step()  # gradients stay allocated, as in a normal backprop loop with zero_grad() before backward
        params = sum(p.numel() * p.element_size() for p in net.parameters())
        grads = sum(p.grad.numel() * p.grad.element_size() for p in net.parameters() if p.grad is not None)
        optim_state = sum(t.numel() * t.element_size() for st in opt.state.values() for t in st.values()
                          if torch.is_tensor(t))
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = peak_rss_bytes() - before
    model_state = params + grads + optim_state
    if device.type == "cuda":
        held = torch.cuda.memory_allocated() - before
    else:
        held = rss_bytes() - before
    extra = {"last_step_trace_mib": trace} if method == "ff" and trace else {}
    return derive({"method": method, "depth": depth, "peak_bytes": peak, "model_state_bytes": model_state,
                   "held_bytes": held, **extra,
            "params_bytes": params, "grads_bytes": grads, "optimizer_state_bytes": optim_state,
                   })


def derive(row: dict) -> dict:
    """The split of one measured row: working = peak - held (and, for reference, peak - counted state)."""
    row["working_bytes"] = row["peak_bytes"] - row["held_bytes"]
    row["peak_minus_counted_state_bytes"] = row["peak_bytes"] - row["model_state_bytes"]
    return row


def summary(rows: list[dict]) -> dict:
    ff = {r["depth"]: r for r in rows if r["method"] == "ff"}
    bp = {r["depth"]: r for r in rows if r["method"] == "bp"}
    lo, hi = min(ff), max(ff)
    return {
        "ff_working_ratio_deepest_vs_shallowest": round(ff[hi]["working_bytes"] / ff[lo]["working_bytes"], 3),
        "bp_working_ratio_deepest_vs_shallowest": round(bp[hi]["working_bytes"] / bp[lo]["working_bytes"], 3),
    }


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for method, color in (("ff", "#D82626"), ("bp", "#2626D8")):
        pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r["depth"])
        depths = [r["depth"] for r in pts]
        axes[0].plot(depths, [r["held_bytes"] / 2**20 for r in pts], "o-", color=color, label=method.upper())
        axes[1].plot(depths, [r["working_bytes"] / 2**20 for r in pts], "o-", color=color, label=method.upper())
    for ax, title in zip(axes, ("model state held (params + grads + optimizer)", "working memory (peak - held)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("depth (hidden layers of 1000)")
        ax.set_ylabel("MiB")
        ax.set_title(title, fontsize=10)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle("Peak training memory, batch 1000, Adam: FF beside backprop")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description="FF vs BP memory against depth")
    parser.add_argument("--depths", default="2,4,8,16,32")
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--results-dir", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "DEPTH"), help=argparse.SUPPRESS)
    parser.add_argument("--replot", metavar="JSON", help="derive the split again from a results file's rows and re-plot")
    args = parser.parse_args()
    if args.replot:
        path = Path(args.replot)
        doc = json.loads(path.read_text())
        doc["rows"] = [derive(r) for r in doc["rows"]]
        doc.update(summary(doc["rows"]))
        doc["derived_again"] = f"python bench/memory_depth.py --replot {args.replot}"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        plot(doc["rows"], path.with_suffix(".png"))
        print(json.dumps(summary(doc["rows"])))
        return 0
    if args.child:
        result = child(args.child[0], int(args.child[1]), args.width, args.batch, args.steps, args.device)
        print(json.dumps(result))
        return 0
    rows = []
    for depth in [int(d) for d in args.depths.split(",")]:
        for method in ("ff", "bp"):
            cmd = [sys.executable, __file__, "--child", method, str(depth), "--width", str(args.width),
                   "--batch", str(args.batch), "--steps", str(args.steps), "--device", args.device]
            # A fixed mmap threshold makes glibc return every freed large block to the OS, so peak RSS
            # measures live tensors rather than the heap fragmentation left by earlier frees.
            env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"{method} depth {depth:>2}: peak {r['peak_bytes'] / 2**20:8.1f} MiB, model state "
                  f"{r['model_state_bytes'] / 2**20:8.1f} counted, {r['held_bytes'] / 2**20:8.1f} held, "
                  f"working {r['working_bytes'] / 2**20:8.1f}", file=sys.stderr)
    import torch

    from ff_mcp.bench import record, script_command

    out_dir = Path(args.results_dir)
    payload = {"width": args.width, "batch": args.batch, "optimizer": "adam", "device": args.device, "rows": rows,
               **summary(rows)}
    record("memory", f"depth-{args.device}", payload, torch.device(args.device), out_dir, command=script_command())
    plot(rows, out_dir / f"memory-depth-{args.device}.png")
    print(json.dumps({k: v for k, v in payload.items() if k != "rows"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
