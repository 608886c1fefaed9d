"""Pictures of a training run (matplotlib, the ``plot`` extra): loss per layer and accuracy per epoch
from the history (ff_mcp/history.py), and, with test data, each layer's goodness of positive data
(the true label embedded) against negative data (a wrong label): what Forward-Forward learns is to
pull those two apart.

``ff-mcp train --plot FILE.png``, ``ff-mcp plot MODEL --out FILE.png`` and the MCP tool ``ff_plot`` draw
the same figure: 1200 x 400 pixels with goodness, 800 x 400 without.
"""

from __future__ import annotations

import io
from typing import Any

import torch

from ff_mcp.history import history_records

DPI = 100
PANEL_INCHES = (4.0, 4.0)
GOODNESS_ROWS = 1000  # test rows scored for the goodness panel


def require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, never a window
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("plots need matplotlib: pip install 'ff-mcp[plot]' (make setup installs it)") from None
    return plt


@torch.no_grad()
def goodness_of_pairs(model: Any, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> list[tuple[list[float], list[float]]]:
    # x, y: the model's own test rows (callers check with trained_on that they are its data set's)
    """Per layer, (goodness with the true label, goodness with a seeded wrong label) of up to
    ``GOODNESS_ROWS`` rows; empty for a model that has no per-layer goodness of labelled input."""
    if not hasattr(model, "layer_goodness") or getattr(model, "num_classes", 0) < 2:
        return []
    if getattr(getattr(model, "labels", None), "mode", "none") == "none":
        return []
    if x.shape[0] == 0 or x.shape[1:] != (model.in_features,) or int(y.max()) >= model.num_classes or int(y.min()) < 0:
        return []  # not this model's data: no goodness panel rather than goodness of unrelated rows
    x, y = x[:GOODNESS_ROWS].to(model.device), y[:GOODNESS_ROWS].to(model.device)
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, model.num_classes, (y.shape[0],), generator=generator).to(y.device)
    wrong = (y + shift) % model.num_classes
    was_training = model.training
    model.eval()
    try:
        positive = model.layer_goodness(x, y)
        negative = model.layer_goodness(x, wrong)
    except (NotImplementedError, TypeError, ValueError, RuntimeError):
        return []
    finally:
        model.train(was_training)
    return [(p["goodness"].float().cpu().tolist(), n["goodness"].float().cpu().tolist())
            for p, n in zip(positive, negative)]


def training_figure(history: list[dict[str, Any]], goodness: list[tuple[list[float], list[float]]] | None = None,
                    title: str = "") -> bytes:
    """The PNG bytes of the run's figure (see the module docstring)."""
    plt = require_matplotlib()
    records = history_records(history)
    panels = 3 if goodness else 2
    fig, axes = plt.subplots(1, panels, figsize=(PANEL_INCHES[0] * panels, PANEL_INCHES[1]), dpi=DPI)
    try:
        epochs = [r["epoch"] for r in records]
        loss_axis, acc_axis = axes[0], axes[1]
        layers = max((len(r.get("layer_loss") or []) for r in records), default=0)
        for layer in range(layers):
            values = [(e, r["layer_loss"][layer]) for e, r in zip(epochs, records)
                      if len(r.get("layer_loss") or []) > layer and r["layer_loss"][layer] is not None]
            if values:
                loss_axis.plot(*zip(*values), label=f"layer {layer}")
        if not layers:
            loss_axis.plot(epochs, [r.get("loss") for r in records], label="loss")
        loss_axis.set(title="loss per layer", xlabel="epoch", ylabel="loss")
        if layers or records:
            loss_axis.legend(fontsize=8)
        for key, label in (("train_accuracy", "train"), ("test_accuracy", "test")):
            values = [(e, r[key]) for e, r in zip(epochs, records) if r.get(key) is not None]
            if values:
                acc_axis.plot(*zip(*values), marker="o", markersize=3, label=label)
        acc_axis.set(title="accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
        acc_axis.legend(fontsize=8)
        if goodness:
            ax = axes[2]
            for layer, (pos, neg) in enumerate(goodness):
                parts = ax.violinplot([pos, neg], positions=[2 * layer, 2 * layer + 0.8], widths=0.7,
                                      showmedians=True)
                for body, color in zip(parts["bodies"], ("tab:green", "tab:red")):
                    body.set_facecolor(color)
                for key in ("cmedians", "cmins", "cmaxes", "cbars"):
                    if key in parts:
                        parts[key].set_color("black")
            ax.set_xticks([2 * i + 0.4 for i in range(len(goodness))], [f"layer {i}" for i in range(len(goodness))])
            ax.set(title="goodness: true label (green) vs wrong label (red)", ylabel="goodness")
            ax.title.set_fontsize(9)
        if title:
            fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=DPI)
        return out.getvalue()
    finally:
        plt.close(fig)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def trained_on(extra: dict[str, Any], dataset: str) -> bool:
    """Whether a checkpoint's ``extra`` says it trained on the named data set (not on rows a user gave
    under a model name that happens to be a data set's)."""
    return extra.get("dataset") == dataset and not str(extra.get("source", "")).startswith("user arrays")
