"""One place that turns user-level options into a trained, saved model.

The CLI, the MCP server and the benchmarks all call ``train_model`` so a flag means the same
thing everywhere. It knows data sets and checkpoints; the engine below it knows neither.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ff_mcp.data import Dataset
from ff_mcp.data.graphs import GraphDataset
from ff_mcp.history import epoch_record
from ff_mcp.engine import (
    DataSpec,
    DenseOptions,
    FFModel,
    OptimizerConfig,
    Trainer,
    TrainConfig,
    TrainResult,
    build_model,
    get_model_kind,
    parse_options,
    save_checkpoint,
)
from ff_mcp.recipes import BASE, RECIPE_FIELDS, DataFacts, recipe_settings

# TrainOptions fields that are the "ff" variant's options (DenseOptions), kept as flags of their own
DENSE_FIELDS = ("goodness", "threshold", "loss", "label_mode", "label_strength", "norm", "activation", "peer_norm",
                "readout", "skip_first_layer")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    """User-facing options. ``None`` means "the recipe decides for this data set" (ff_mcp/recipes.py:
    ``auto`` by default); ``resolved(data)`` fills them in, and what is set here always wins."""

    hidden: tuple[int, ...] | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None  # None: the recipe's, or 1e-3 for Adam, 0.05 for SGD when the optimizer is not its
    optimizer: str | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    schedule: str = "simultaneous"
    goodness: str = "sum_squares"
    threshold: float | None = None
    loss: str = "softplus"
    negatives: str = "wrong_label"
    label_mode: str | None = None  # None: overlay for images with >= 100 pixels, concat otherwise
    label_strength: float = 1.0  # Matlab labelstrength
    norm: str = "rms"
    activation: str | None = None
    peer_norm: float | None = None
    readout: bool = True
    readout_lr: float | None = None  # None: 10x lr for SGD, lr for Adam
    readout_weight_decay: float | None = None  # loeweX: 3e-3 with SGD
    skip_first_layer: bool = True
    predict_method: str | None = None  # None: the model's preferred method
    seed: int = 0
    device: str = "auto"
    amp: str = "none"
    eval_every: int = 1
    cooldown: bool | None = None  # linear LR decay over the second half; None: the recipe's (on, off for graphs)
    readout_cooldown: bool | None = None  # the readout's LR decays with the layers' (loeweX); None: recipe (on)
    fused: bool | None = None  # torch's fused optimizer kernel (None: where available)
    step: str = "auto"  # auto | autograd | fused | native (compiled, CPU SGD) | cuda_graph (CUDA)
    pipeline: bool = False  # one thread per stage, or one rank per stage under torchrun (docs/SCALING.md)
    pipeline_stages: int | None = None  # None: one per rank under torchrun, else 2
    recipe: str = "auto"  # fills the fields left None (ff_mcp/recipes.py)
    preferred_method: str | None = None  # the recipe's prediction method, used when the model has it
    variant: str = "ff"  # a registered model kind (ff_variants / `ff-mcp variants`)
    backend: str = "torch"  # torch | jax | jax-parallel (ff_mcp/jax_backend.py, variant "ff", extra "jax")
    options: dict[str, Any] = field(default_factory=dict)  # the variant's options (--opt key=value)
    extra: dict[str, Any] = field(default_factory=dict)

    def resolved(self, data: Dataset | GraphDataset) -> "TrainOptions":
        """These options with every field left None filled by the recipe for ``data``."""
        graph = isinstance(data, GraphDataset)
        facts = DataFacts(rows=data.train_size, features=data.in_features, classes=data.num_classes,
                          image=not graph and data.image_shape is not None, graph=graph)
        settings = recipe_settings(self.recipe, facts, self.variant)
        values = {key: getattr(self, key) for key in RECIPE_FIELDS}
        for key, value in settings.items():
            if key != "lr" and values.get(key) is None:
                values[key] = value
        if values["lr"] is None and values["optimizer"] == settings.get("optimizer") and "lr" in settings:
            values["lr"] = settings["lr"]
        values["preferred_method"] = self.preferred_method or settings.get("preferred_method")
        values["hidden"] = tuple(values["hidden"]) if values["hidden"] is not None else None
        return dataclasses.replace(self, **values)

    def _value(self, name: str) -> Any:
        """The field's value, or the engine's base default when no recipe has filled it yet."""
        value = getattr(self, name)
        return BASE[name] if value is None and name in BASE else value

    def variant_options(self) -> Any:
        """The variant's options, validated by its own dataclass. For "ff", the dense flags of
        these options come first and ``options`` overrides them."""
        cls = get_model_kind(self.variant)
        if self.variant == "ff":
            dense = {name: self._value(name) for name in DENSE_FIELDS}
            return parse_options(DenseOptions, {**dense, **self.options}, "ff")
        changed = [name for name in DENSE_FIELDS if getattr(self, name) != getattr(_DEFAULTS, name)]
        if changed:
            raise ValueError(f"{changed[0]} is an option of variant 'ff'; variant {self.variant!r} takes "
                             f"options through options/--opt (see ff_variants)")
        return parse_options(cls.options_class, self.options, self.variant)

    def model_config(self, data: Dataset | GraphDataset) -> Any:
        """The configuration of the model this run builds for ``data``."""
        options = self.resolved(data)
        cls = get_model_kind(options.variant)
        if isinstance(data, GraphDataset):
            spec = DataSpec(data.in_features, data.num_classes, None, "graph", data.graph.num_nodes)
        else:
            spec = DataSpec(data.in_features, data.num_classes, data.image_shape, "rows")
        return cls.build_config(spec, tuple(options.hidden), options.variant_options(), options.train_config())

    network_config = model_config  # the name of the days of one model kind

    def train_config(self) -> TrainConfig:
        """The engine's TrainConfig (call on ``resolved`` options; unresolved fields take the base defaults)."""
        optimizer = self._value("optimizer")
        lr = self.lr if self.lr is not None else (1e-3 if optimizer in ("adam", "adamw") else 0.05)
        return TrainConfig(
            epochs=self._value("epochs"),
            batch_size=self._value("batch_size"),
            optimizer=OptimizerConfig(optimizer, lr, self._value("momentum"), self._value("weight_decay"), self.fused),
            schedule=self.schedule,
            negatives=self.negatives,
            cooldown=self._value("cooldown"),
            readout_cooldown=self._value("readout_cooldown"),
            seed=self.seed,
            device=self.device,
            amp=self.amp,
            predict_method=self.predict_method,
            eval_every=self.eval_every,
            step=self.step,
            readout_lr=self.readout_lr,
            readout_weight_decay=self._value("readout_weight_decay"),
        )


_DEFAULTS = TrainOptions()


@dataclass
class TrainedModel:
    network: FFModel
    result: TrainResult
    network_config: Any
    train_config: TrainConfig
    path: Path | None
    options: TrainOptions | None = None  # as resolved by the recipe

    def summary(self) -> dict[str, Any]:
        final = self.result.final
        acc = final.get("test_accuracy")
        return {
            "state": self.result.state,
            "test_accuracy": acc,
            "test_error": None if acc is None else 1.0 - acc,
            "train_accuracy": final.get("train_accuracy"),
            **({"val_accuracy": final["val_accuracy"]} if "val_accuracy" in final else {}),
            "train_seconds": round(self.result.train_seconds, 3),
            "epochs": final.get("epoch", 0),
            "samples_per_second": round(self.result.samples_per_second, 1),
            "device": self.result.device,
            "variant": self.network.kind,
            "recipe": self.options.recipe if self.options else None,
            "hidden": list(self.options.hidden) if self.options else list(getattr(self.network_config, "hidden", []) or []),
            "batch_size": self.train_config.batch_size,
            "step": self.result.step,
            "predict_method": final.get("predict_method"),
            "model_path": str(self.path) if self.path else None,
            **({"cuda_graph": self.result.cuda_graph} if self.result.cuda_graph is not None else {}),
            **({"native_steps": self.result.native_steps} if self.result.native_steps is not None else {}),
        }


def check_variant_data(variant: str, data: Dataset | GraphDataset) -> str:
    """The data's kind (rows or graph); ValueError when ``variant`` does not train on it."""
    kind = get_model_kind(variant)
    data_kind = "graph" if isinstance(data, GraphDataset) else "rows"
    if data_kind not in kind.data_kinds:
        hint = " (graphs train with variant 'gnn')" if data_kind == "graph" else ""
        raise ValueError(f"variant {variant!r} trains on {', '.join(kind.data_kinds)}; data set {data.name!r} "
                         f"is {data_kind}{hint}")
    return data_kind


def train_model(data: Dataset | GraphDataset, options: TrainOptions, out: str | Path | None = None,
                callbacks: list | tuple = (), should_stop: Callable[[], bool] | None = None,
                extra: dict[str, Any] | None = None, stop_after: int | None = None) -> TrainedModel:
    """Build, train on ``data`` (evaluating on its test split; a graph: on its validation and test nodes),
    and save to ``out`` if given (with the state a later ``resume_model`` needs, where the kind keeps one).
    ``stop_after``: end after that many of the planned epochs."""
    options = options.resolved(data)
    data_kind = check_variant_data(options.variant, data)
    net_cfg = options.model_config(data)
    train_cfg = options.train_config()
    session = backend_session(options)
    if session is not None:
        train_cfg = dataclasses.replace(train_cfg, device="cpu")  # the torch side; JAX runs on its own device
    network = build_model(net_cfg, seed=train_cfg.seed)
    if options.predict_method is None and options.preferred_method in network.prediction_methods():
        train_cfg = dataclasses.replace(train_cfg, predict_method=options.preferred_method)
    if options.pipeline:
        from ff_mcp.engine.distributed import is_main_process, pipeline_trainer, shutdown

        if options.variant != "ff":
            raise ValueError(f"pipeline: pipelined training runs variant 'ff' only, got {options.variant!r}")
        trainer = pipeline_trainer(network, train_cfg, options.pipeline_stages, callbacks, should_stop)
        train_cfg = trainer.config  # under torchrun the device is this rank's
    else:
        trainer = Trainer(network, train_cfg, callbacks=callbacks, should_stop=should_stop, session=session)
    if data_kind == "graph":
        result = trainer.fit(data.graph, None, stop_after=stop_after)
    else:
        x_test = data.x_test if data.x_test.shape[0] else None
        y_test = data.y_test if data.y_test.shape[0] else None
        result = trainer.fit(data.x_train, data.y_train, x_test, y_test, stop_after=stop_after)
    saves = out is not None
    if options.pipeline:
        saves = saves and is_main_process()  # every rank holds the whole network; rank 0 writes it
        shutdown()
    path = None
    if saves:
        meta = {"dataset": data.name, "source": data.source, "recipe": options.recipe, "train_rows": data.train_size,
                **({"label_values": list(data.label_values)} if getattr(data, "label_values", None) else {}),
                **({"backend": options.backend} if options.backend != "torch" else {}),
                **(extra or {})}
        resume = None if options.pipeline else trainer.resume_state
        path = save_checkpoint(out, network.cpu(), train_cfg.to_dict(), _checkpoint_metrics(result), meta, resume)
        network.to(trainer.device)
    return TrainedModel(network, result, net_cfg, train_cfg, path, options)


def backend_session(options: TrainOptions):
    """The Trainer's session factory for ``options.backend`` (None: torch, the model's own), after checking
    that the backend can run these options."""
    if options.backend == "torch":
        return None
    if options.backend not in ("jax", "jax-parallel"):
        raise ValueError(f"backend must be one of ['torch', 'jax', 'jax-parallel'], got {options.backend!r}")
    if options.variant != "ff":
        raise ValueError(f"backend {options.backend}: runs variant 'ff' (the dense MLP), got {options.variant!r}")
    if options.pipeline:
        raise ValueError(f"backend {options.backend}: pipelined training is the torch backend's")
    if options.device not in ("auto", "cpu"):
        raise ValueError(f"device: backend {options.backend} runs on JAX's default device; give auto or cpu, "
                         f"got {options.device!r}")
    try:
        from ff_mcp.jax_backend import session_for
    except ImportError as exc:
        raise ValueError(f"backend {options.backend}: {exc}") from None
    return session_for(options.backend)


def resume_model(checkpoint_path: str | Path, data: Dataset, epochs: int, out: str | Path | None = None,
                 callbacks: list | tuple = (), should_stop: Callable[[], bool] | None = None,
                 device: str | None = None, stop_after: int | None = None) -> TrainedModel:
    """Go on with the run saved at ``checkpoint_path`` until ``epochs`` epochs in all: its weights,
    optimizer, learning-rate schedule and random streams. With the epochs it was planned for, on CPU
    the weights end bit-identical to the run that never stopped. Saves to ``out`` (default: the same file)."""
    from ff_mcp.engine import load_checkpoint

    checkpoint = load_checkpoint(checkpoint_path)
    if checkpoint.resume is None:
        raise ValueError(f"--resume: {checkpoint_path} keeps no resume state (written by a server, an older "
                         f"version, a pipelined run or the JAX backend); train it again with --out to get one")
    if checkpoint.resume.partial:
        log.warning("the saved run stopped inside epoch %d: going on from its start, not bit-identical",
                    checkpoint.resume.epoch + 1)
    saved_dataset = checkpoint.extra.get("dataset")
    if saved_dataset and saved_dataset != data.name:
        raise ValueError(f"--resume: the run trained on {saved_dataset!r}, not {data.name!r}")
    rows = checkpoint.extra.get("train_rows")
    if rows is not None and rows != data.train_size:
        raise ValueError(f"--resume: the run trained on {rows} rows of {data.name!r}, this data has {data.train_size} "
                         f"(give the same --limit-train)")
    saved_epochs = checkpoint.train_config.get("epochs")
    if checkpoint.train_config.get("schedule") == "greedy" and epochs != saved_epochs:
        raise ValueError(f"--resume: a greedy run trains each layer for --epochs in turn, so it can only go on with "
                         f"its own --epochs {saved_epochs}, got {epochs}")
    train_cfg = TrainConfig.from_dict({**checkpoint.train_config, "epochs": epochs,
                                       **({"device": device} if device else {})})
    network = checkpoint.model.train()
    trainer = Trainer(network, train_cfg, callbacks=callbacks, should_stop=should_stop)
    x_test = data.x_test if data.x_test.shape[0] else None
    y_test = data.y_test if data.y_test.shape[0] else None
    result = trainer.fit(data.x_train, data.y_train, x_test, y_test, resume=checkpoint.resume, stop_after=stop_after)
    target = Path(out) if out is not None else Path(checkpoint_path)
    meta = {**checkpoint.extra, "resumed_from_epoch": checkpoint.resume.epoch}
    path = save_checkpoint(target, network.cpu(), train_cfg.to_dict(), _checkpoint_metrics(result), meta,
                           trainer.resume_state)
    network.to(trainer.device)
    return TrainedModel(network, result, network.config, train_cfg, path, None)


def _checkpoint_metrics(result: TrainResult) -> dict[str, Any]:
    final = dict(result.final)
    return {
        "state": result.state,
        "final": final,
        "history": [epoch_record(h) for h in result.history],  # ff_mcp/history.py: one record an epoch
        "train_seconds": result.train_seconds,
        "samples_per_second": result.samples_per_second,
        "device": result.device,
        "torch": torch.__version__,
    }
