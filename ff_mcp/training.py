"""One place that turns user-level options into a trained, saved model.

The CLI, the MCP server and the benchmarks all call ``train_model`` so a flag means the same
thing everywhere. It knows data sets and checkpoints; the engine below it knows neither.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ff_mcp.data import Dataset
from ff_mcp.engine import (
    NetworkConfig,
    OptimizerConfig,
    Trainer,
    TrainConfig,
    TrainResult,
    build_network,
    save_checkpoint,
)
from ff_mcp.engine.network import FFNetwork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    """User-facing options with sane defaults; ``None`` means "pick for this data set"."""

    hidden: tuple[int, ...] = (1000, 1000, 1000)
    epochs: int = 10
    batch_size: int = 100
    lr: float | None = None  # None: 1e-3 for Adam (loeweX-style scale), 0.05 for SGD
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "simultaneous"
    goodness: str = "sum_squares"
    threshold: float | None = None
    loss: str = "softplus"
    negatives: str = "wrong_label"
    label_mode: str | None = None  # None: overlay for images with >= 100 pixels, concat otherwise
    label_strength: float = 1.0  # Matlab labelstrength
    norm: str = "rms"
    activation: str = "relu"
    peer_norm: float = 0.0
    readout: bool = True
    readout_lr: float | None = None  # None: 10x lr for SGD, lr for Adam
    readout_weight_decay: float = 0.0  # loeweX: 3e-3 with SGD
    skip_first_layer: bool = True
    predict_method: str = "goodness"
    seed: int = 0
    device: str = "auto"
    amp: str = "none"
    eval_every: int = 1
    cooldown: bool = True
    fused: bool | None = None  # torch's fused optimizer kernel (None: where available)
    fused_step: bool = True  # closed-form FF step where the layer allows (engine/fused.py)
    cuda_graph: bool = False  # CUDA: replay each full mini-batch's step as a captured graph (engine/graphed.py)
    native_step: bool = False  # CPU, SGD: the compiled step (engine/native.py)
    pipeline: bool = False  # one thread per stage, or one rank per stage under torchrun (docs/SCALING.md)
    pipeline_stages: int | None = None  # None: one per rank under torchrun, else 2
    extra: dict[str, Any] = field(default_factory=dict)

    def network_config(self, data: Dataset) -> NetworkConfig:
        label_mode = self.label_mode
        if label_mode is None:
            big_image = data.image_shape is not None and data.in_features >= 100
            label_mode = "overlay" if big_image else "concat"
        if self.negatives in ("hybrid", "noise") and self.label_mode is None:
            label_mode = "none"  # unsupervised negatives: no label in the input
        return NetworkConfig(
            in_features=data.in_features,
            num_classes=data.num_classes,
            hidden=tuple(self.hidden),
            activation=self.activation,
            norm=self.norm,
            goodness=self.goodness,
            threshold=self.threshold,
            loss=self.loss,
            label_mode=label_mode,
            label_strength=self.label_strength,
            peer_norm=self.peer_norm,
            readout=self.readout or label_mode == "none",
            skip_first_layer=self.skip_first_layer,
            image_shape=data.image_shape,
        )

    def train_config(self) -> TrainConfig:
        lr = self.lr if self.lr is not None else (1e-3 if self.optimizer == "adam" else 0.05)
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=OptimizerConfig(self.optimizer, lr, self.momentum, self.weight_decay, self.fused),
            schedule=self.schedule,
            negatives=self.negatives,
            cooldown=self.cooldown,
            seed=self.seed,
            device=self.device,
            amp=self.amp,
            predict_method=self.predict_method if self.label_mode != "none" else "readout",
            eval_every=self.eval_every,
            fused_step=self.fused_step,
            cuda_graph=self.cuda_graph,
            native_step=self.native_step,
            readout_lr=self.readout_lr,
            readout_weight_decay=self.readout_weight_decay,
        )


@dataclass
class TrainedModel:
    network: FFNetwork
    result: TrainResult
    network_config: NetworkConfig
    train_config: TrainConfig
    path: Path | None

    def summary(self) -> dict[str, Any]:
        final = self.result.final
        acc = final.get("test_accuracy")
        return {
            "state": self.result.state,
            "test_accuracy": acc,
            "test_error": None if acc is None else 1.0 - acc,
            "train_accuracy": final.get("train_accuracy"),
            "train_seconds": round(self.result.train_seconds, 3),
            "epochs": final.get("epoch", 0),
            "samples_per_second": round(self.result.samples_per_second, 1),
            "device": self.result.device,
            "model_path": str(self.path) if self.path else None,
            **({"cuda_graph": self.result.cuda_graph} if self.result.cuda_graph is not None else {}),
            **({"native_steps": self.result.native_steps} if self.result.native_steps is not None else {}),
        }


def train_model(data: Dataset, options: TrainOptions, out: str | Path | None = None,
                callbacks: list | tuple = (), should_stop: Callable[[], bool] | None = None,
                extra: dict[str, Any] | None = None) -> TrainedModel:
    """Build, train on ``data`` (evaluating on its test split), and save to ``out`` if given."""
    net_cfg = options.network_config(data)
    train_cfg = options.train_config()
    network = build_network(net_cfg, seed=train_cfg.seed)
    if options.pipeline:
        from ff_mcp.engine.distributed import is_main_process, pipeline_trainer, shutdown

        trainer = pipeline_trainer(network, train_cfg, options.pipeline_stages, callbacks, should_stop)
        train_cfg = trainer.config  # under torchrun the device is this rank's
    else:
        trainer = Trainer(network, train_cfg, callbacks=callbacks, should_stop=should_stop)
    x_test = data.x_test if data.x_test.shape[0] else None
    y_test = data.y_test if data.y_test.shape[0] else None
    result = trainer.fit(data.x_train, data.y_train, x_test, y_test)
    saves = out is not None
    if options.pipeline:
        saves = saves and is_main_process()  # every rank holds the whole network; rank 0 writes it
        shutdown()
    path = None
    if saves:
        meta = {"dataset": data.name, "source": data.source, **(extra or {})}
        path = save_checkpoint(out, network.cpu(), train_cfg.to_dict(), _checkpoint_metrics(result), meta)
        network.to(trainer.device)
    return TrainedModel(network, result, net_cfg, train_cfg, path)


def _checkpoint_metrics(result: TrainResult) -> dict[str, Any]:
    final = dict(result.final)
    return {
        "state": result.state,
        "final": final,
        "history": result.history,
        "train_seconds": result.train_seconds,
        "samples_per_second": result.samples_per_second,
        "device": result.device,
        "torch": torch.__version__,
    }
