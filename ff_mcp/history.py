"""Training history: one plain record per epoch, the same everywhere it is shown.

``ff-mcp train --json`` prints one per line as epochs end, ff_job_status and the model card carry the
list, and plots read it. A record is made from the trainer's per-epoch metrics by ``epoch_record``.
"""

from __future__ import annotations

import math
from typing import Any

RECORD_KEYS = ("epoch", "epochs", "loss", "layer_loss", "goodness_pos", "goodness_neg", "train_accuracy",
               "test_accuracy", "seconds", "samples_per_second")


def epoch_record(metrics: dict[str, Any]) -> dict[str, Any]:
    """{epoch, epochs, loss, layer_loss: [per layer], goodness_pos / goodness_neg: [per layer],
    train_accuracy, test_accuracy (None when the epoch was not evaluated), seconds, samples_per_second}."""
    layers = metrics.get("layers") or []
    return {
        "epoch": metrics.get("epoch"),
        "epochs": metrics.get("epochs"),
        "loss": _round(metrics.get("loss")),
        "layer_loss": [_round(layer.get("loss")) for layer in layers],
        "goodness_pos": [_round(layer.get("goodness_pos")) for layer in layers],
        "goodness_neg": [_round(layer.get("goodness_neg")) for layer in layers],
        "train_accuracy": _round(metrics.get("train_accuracy")),
        "test_accuracy": _round(metrics.get("test_accuracy")),
        "seconds": _round(metrics.get("epoch_seconds")),
        "samples_per_second": _round(metrics.get("samples_per_second"), 1),
    }


def history_records(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records of a stored history: the trainer's metrics (checkpoints of this version and earlier) or
    records already (left as they are)."""
    return [h if "layer_loss" in h else epoch_record(h) for h in history]


def epoch_line(record: dict[str, Any], held_out: str = "test") -> str:
    """One human line: 'epoch 3/10  loss 0.4123  train 93.10 %  test 92.40 %  1.2 s  9,876 rows/s'.
    ``held_out`` names the rows the trainer evaluated on ("val" where they are a validation split)."""
    parts = [f"epoch {record['epoch']}/{record['epochs']}"]
    if record.get("loss") is not None:
        parts.append(f"loss {record['loss']:.4f}")
    for key, label in (("train_accuracy", "train"), ("test_accuracy", held_out)):
        if record.get(key) is not None:
            parts.append(f"{label} {100 * record[key]:.2f} %")
    if record.get("seconds") is not None:
        parts.append(f"{record['seconds']:.1f} s")
    if record.get("samples_per_second"):
        parts.append(f"{record['samples_per_second']:,.0f} rows/s")
    return "  ".join(parts)


def _round(value: Any, digits: int = 6) -> Any:
    """Floats rounded; NaN and infinities (a diverged loss) become None, so every record is valid JSON."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    return value
