"""The model protocol: what one kind of FF model gives the trainer, checkpoints, CLI and MCP tools.

A model kind is an ``FFModel`` subclass registered under a name (``register_model_kind``):

- ``kind``, ``description``: its registered name and one line for ``ff_variants``;
- ``config_class``: a frozen dataclass with ``to_dict``/``from_dict`` (stored in every checkpoint,
  so the model rebuilds itself); ``options_class``: the variant options a user may set
  (``--opt key=value``, ``ff_train(options={...})``), validated by that dataclass;
  ``build_config(data, hidden, options)`` turns data facts and options into a config;
- its local units (``local_units``): each trains on its own loss with its own optimizer;
- ``training_session(config, device)``: the object that owns the optimizers and takes one training
  step on a mini-batch (``Session``), and says which fast paths (``STEPS``) it has and why not others;
- named prediction methods (``prediction_methods``) and ``predict_scores(x, method)`` -> (B, K);
- ``layer_goodness`` for the goodness tool; ``data_kinds`` and ``batches`` for what it trains on.

``Trainer`` runs the loop once for every kind: epochs, learning-rate schedule, callbacks,
cancellation, evaluation and metrics. Nothing outside a kind's module knows its internals.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, ABCMeta, abstractmethod
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

# The training step a run asks for. "auto": the fastest the model kind supports for this run.
STEPS = ("auto", "autograd", "fused", "native", "cuda_graph")


@dataclass(frozen=True)
class DataSpec:
    """What a model is built for: row width, classes, image shape (None for plain rows), data kind."""

    in_features: int
    num_classes: int
    image_shape: tuple[int, ...] | None = None
    data_kind: str = "rows"  # rows | images | graph
    nodes: int = 0  # graph: the training graph's node count


@dataclass(frozen=True, eq=False)
class Graph:
    """A graph for node classification: the data type of graph model kinds.

    x: (N, F) float32 node features; edge_index: (2, E) int64 source/target node ids; y: (N,) int64
    labels, -1 for unlabelled nodes; train/val/test masks: (N,) bool. Validated on construction, so a
    kind receives only a well-formed graph. ``Trainer.fit(graph)`` trains on it: the rows of an
    epoch are the training nodes (``Batch.x`` is the whole graph, ``Batch.index`` the nodes), and
    evaluation scores the whole graph once, reading the validation and test nodes from their masks.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor
    train_mask: torch.Tensor
    val_mask: torch.Tensor | None = None
    test_mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or not self.x.is_floating_point():
            raise ValueError(f"x must be (nodes, features) floats, got {tuple(self.x.shape)} {self.x.dtype}")
        n = self.x.shape[0]
        if not torch.isfinite(self.x).all():
            raise ValueError("x must hold finite numbers (no NaN or inf)")
        if self.edge_index.ndim != 2 or self.edge_index.shape[0] != 2 or self.edge_index.dtype != torch.int64:
            raise ValueError(f"edge_index must be (2, edges) int64, got {tuple(self.edge_index.shape)} "
                             f"{self.edge_index.dtype}")
        if self.edge_index.numel() and not (0 <= int(self.edge_index.min()) and int(self.edge_index.max()) < n):
            raise ValueError(f"edge_index node ids must be in [0, {n}), got {int(self.edge_index.min())}.."
                             f"{int(self.edge_index.max())}")
        if self.y.shape != (n,) or self.y.dtype != torch.int64:
            raise ValueError(f"y must be ({n},) int64 with -1 for unlabelled nodes, got {tuple(self.y.shape)}")
        if self.y.numel() and int(self.y.min()) < -1:
            raise ValueError(f"y labels must be >= 0, or -1 for an unlabelled node; got {int(self.y.min())}")
        for name in ("train_mask", "val_mask", "test_mask"):
            mask = getattr(self, name)
            if mask is None:
                continue
            if mask.shape != (n,) or mask.dtype != torch.bool:
                raise ValueError(f"{name} must be ({n},) bool, got {tuple(mask.shape)} {mask.dtype}")
            if bool((self.y[mask] < 0).any()):
                raise ValueError(f"{name} selects unlabelled nodes (y = -1)")

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    def to(self, device: torch.device | str) -> "Graph":
        """This graph with every tensor on ``device`` (itself when they are there already)."""
        if self.x.device == torch.device(device):
            return self
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Graph(move(self.x), move(self.edge_index), move(self.y), move(self.train_mask), move(self.val_mask),
                     move(self.test_mask))


def check_images(x: torch.Tensor, image_shape: tuple[int, ...]) -> None:
    """Raise ValueError unless x is (N, C, H, W) floats of ``image_shape`` (C, H, W): image kinds' rows."""
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(image_shape) or not x.is_floating_point():
        raise ValueError(f"x must be images (N, {', '.join(map(str, image_shape))}) of floats, got "
                         f"{tuple(x.shape)} {x.dtype}")


@dataclass(frozen=True, eq=False)
class Batch:
    """One mini-batch: x (B, ...) data, y (B,) int64 labels, index (B,) rows of the training set."""

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor


class Session(ABC):
    """One model's training state for one run: optimizers, the chosen step, per-unit statistics.

    The trainer calls, in order: ``begin_fit`` once; per phase and epoch ``set_lr_factor``,
    ``begin_epoch``, ``step`` per mini-batch, ``end_epoch``; ``end_fit`` once (also on errors).
    ``stats`` is a (units + 1, 3) tensor on the device: per unit the summed loss, positive and
    negative goodness; the last row is the readout's (or any extra) loss. Hot loops stay on the device.
    """

    step_kind: str = "autograd"  # the step this session runs (one of STEPS but "auto")

    def __init__(self, model: "FFModel", config: Any, device: torch.device) -> None:
        self.model = model
        self.config = config
        self.device = device

    # ---- what the trainer asks ---------------------------------------------------------------
    @property
    def units(self) -> int:
        return len(self.model.local_units())

    def phases(self) -> list[range]:
        """The units trained together, phase after phase (simultaneous: one phase of every unit)."""
        n = self.units
        if getattr(self.config, "schedule", "simultaneous") == "greedy":
            return [range(i, i + 1) for i in range(n)]
        return [range(0, n)]

    def phase_epochs(self, epochs: int) -> list[int]:
        """Epochs of each phase for a run of ``epochs`` (by default every phase gets them all; a method
        whose paper trains its layers for different counts, or ends with a probe, says so here)."""
        return [epochs] * len(self.phases())

    def set_lr_factor(self, factor: float, units: range) -> None:
        """Scale the learning rate of ``units`` (and anything trained with them) by ``factor``."""

    def applied_lr_factor(self, factor: float, units: range) -> float:
        """The factor ``units`` actually trained with this epoch, for the history (``factor``, the trainer's,
        unless the session schedules them itself)."""
        return factor

    def begin_fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        """Before the first epoch, with the training data already on the device."""

    def begin_epoch(self, epoch: int, units: range, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
        """Before each epoch (epoch counts from 0 across phases)."""

    def batches(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
        """Row indices of each mini-batch of one epoch; by default the model's ``batches``."""
        return self.model.batches(n, batch_size, generator, device)

    @abstractmethod
    def step(self, batch: Batch, generator: torch.Generator, units: range, stats: torch.Tensor) -> None:
        """One mini-batch: every unit in ``units`` takes its local step; sums go into ``stats``."""

    def end_epoch(self, stats: torch.Tensor) -> None:
        """After each epoch's last step, before the statistics are read."""

    def phase_finished(self, units: range) -> bool:
        """After each epoch: True ends the phase early (e.g. early stopping on validation)."""
        return False

    def end_phase(self, units: range) -> None:
        """After a phase's last epoch (also one ended early): e.g. restore the best-validation weights."""

    def end_fit(self) -> None:
        """After training, also when it failed: release what the run held."""

    def extra_loss_name(self, units: range) -> str | None:
        """Metric name for the loss summed in the last row of ``stats`` (e.g. "readout_loss"), or None."""
        return None

    def methods(self, units: range) -> list[str]:
        """Prediction methods that make sense after training ``units`` (greedy phases may lack some)."""
        return list(self.model.prediction_methods())

    def state_dict(self) -> dict[str, Any] | None:
        """What a resumed run needs besides the weights (optimizer states), or None: this session's runs
        cannot be resumed. Tensors and plain values only (checkpoint.py stores them)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what ``state_dict`` gave, after ``begin_fit``."""
        raise ValueError(f"model kind {self.model.kind!r} cannot resume a run: its session keeps no state to restore")

    def report(self) -> dict[str, Any]:
        """Facts about the run for the result (e.g. compiled steps, CUDA-graph captures)."""
        return {}


class _ModelMeta(ABCMeta, type(nn.Module)):
    """nn.Module's metaclass with abstract methods: a kind missing a required method cannot be built."""


class FFModel(nn.Module, metaclass=_ModelMeta):
    """Base of every model kind (see the module docstring)."""

    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    config_class: ClassVar[type]
    options_class: ClassVar[type | None] = None
    data_kinds: ClassVar[tuple[str, ...]] = ("rows",)
    # the training steps this kind has; its session refuses one of these it cannot run for a given
    # run with a ValueError naming what is missing, and the trainer refuses any other
    steps: ClassVar[tuple[str, ...]] = ("auto", "autograd")

    config: Any

    # ---- building ----------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def build_config(cls, data: DataSpec, hidden: tuple[int, ...], options: Any, train: Any = None) -> Any:
        """The config for ``data`` with these hidden sizes and (validated) options; ``train`` is the
        run's TrainConfig, for kinds whose shape depends on how they train."""

    @property
    def num_classes(self) -> int:
        return int(self.config.num_classes)

    @property
    def in_features(self) -> int:
        return int(self.config.in_features)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @abstractmethod
    def local_units(self) -> list[nn.Module]:
        """The parts trained each on its own loss (one optimizer each), bottom first."""

    # ---- training ----------------------------------------------------------------------------
    @abstractmethod
    def training_session(self, config: Any, device: torch.device) -> Session:
        """The Session that trains this model for one run with TrainConfig ``config``."""

    def check_data(self, x: torch.Tensor, y: torch.Tensor, split: str = "train") -> None:
        """Raise ValueError naming the field when x, y do not fit this model."""
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x_{split} must be (rows, {self.in_features}), got {tuple(x.shape)}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"y_{split} must have one label per row ({x.shape[0]}), got {tuple(y.shape)}")
        if y.numel() and not (0 <= int(y.min()) and int(y.max()) < self.num_classes):
            raise ValueError(f"y_{split} labels must be in [0, {self.num_classes}), got {int(y.min())}..{int(y.max())}")

    def batches(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> Iterator[torch.Tensor]:
        """Row indices of each mini-batch of one epoch: a fresh permutation cut in ``batch_size`` pieces
        (rows and images alike: x[index] selects along the first dimension). A kind that trains
        full-batch, or in another order, overrides this."""
        order = torch.randperm(n, generator=generator).to(device)
        for step in range(math.ceil(n / batch_size)):
            yield order[step * batch_size : (step + 1) * batch_size]

    # ---- prediction --------------------------------------------------------------------------
    @abstractmethod
    def prediction_methods(self) -> dict[str, str]:
        """Methods this model predicts with, the preferred one first: name -> one-line description."""

    @abstractmethod
    def predict_scores(self, x: torch.Tensor, method: str | None = None) -> torch.Tensor:
        """(B, ...) -> (B, K): one score per label, higher is more likely."""

    def predict(self, x: torch.Tensor, method: str | None = None) -> torch.Tensor:
        """(B, ...) -> (B,) int64: one label per row."""
        return self.predict_scores(x, method).argmax(dim=1)

    def check_method(self, method: str | None) -> str:
        """``method`` if this model has it (None: the preferred one); else ValueError naming the choices."""
        methods = self.prediction_methods()
        if method is None:
            return next(iter(methods))
        if method not in methods:
            raise ValueError(f"method must be one of {list(methods)} for this {self.kind!r} model, got {method!r}")
        return method

    @abstractmethod
    def layer_goodness(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """Per unit: {"goodness": (B,), "p_positive": (B,)} for each row."""


# ---- the registry of model kinds ---------------------------------------------------------------

_KINDS: dict[str, type[FFModel]] = {}


def register_model_kind(cls: type[FFModel]) -> type[FFModel]:
    """Register a model kind under ``cls.kind`` (usable as a class decorator). Re-registering a name
    replaces it (a test module or a notebook may define a kind again)."""
    if not cls.kind or not isinstance(cls.kind, str):
        raise ValueError(f"{cls.__name__}.kind must be a non-empty name")
    for attr in ("to_dict", "from_dict"):
        if not hasattr(cls.config_class, attr):
            raise ValueError(f"{cls.__name__}.config_class needs {attr}")
    _KINDS[cls.kind] = cls
    return cls


def get_model_kind(kind: str) -> type[FFModel]:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(f"model kind must be one of {sorted(_KINDS)}, got {kind!r}") from None


def model_kind_names() -> list[str]:
    return sorted(_KINDS)


def kind_of_config(config: Any) -> type[FFModel]:
    for cls in _KINDS.values():
        if type(config) is cls.config_class:
            return cls
    raise ValueError(f"no registered model kind has config class {type(config).__name__}")


# ---- variant options ------------------------------------------------------------------------


def parse_options(options_class: type | None, values: dict[str, Any] | None, variant: str) -> Any:
    """A validated ``options_class`` instance from ``values`` (None: the defaults). Unknown keys and
    wrong types are refused with the key's name and what is allowed."""
    values = dict(values or {})
    if options_class is None:
        if values:
            raise ValueError(f"variant {variant!r} takes no options, got {sorted(values)}")
        return None
    fields = {f.name: f for f in dataclasses.fields(options_class)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for variant {variant!r}; its options are {sorted(fields)}")
    hints = typing.get_type_hints(options_class)
    converted = {key: coerce_option(key, value, hints[key], variant) for key, value in values.items()}
    return options_class(**converted)


def coerce_option(key: str, value: Any, hint: Any, variant: str) -> Any:
    """``value`` (a Python value or the text of ``--opt key=value``) as type ``hint``."""
    allowed = _type_text(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:  # a string type takes "none" as itself (label_mode="none" is a mode)
            if arg is type(None):
                continue
            try:
                return coerce_option(key, value, arg, variant)
            except ValueError:
                continue
        if type(None) in args and isinstance(value, str) and value.lower() in ("none", "null"):
            return None
        raise ValueError(f"option {key!r} of variant {variant!r} must be {allowed}, got {_shown(value)}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ValueError(f"option {key!r} of variant {variant!r} must be one of {list(args)}, got {_shown(value)}")
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"option {key!r} of variant {variant!r} must be {allowed}, got {_shown(value)}")
        item_type = args[0] if args else str
        return tuple(coerce_option(key, item, item_type, variant) for item in items if item != "")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                return float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number
    elif hint is str:
        if isinstance(value, str):
            return value
    raise ValueError(f"option {key!r} of variant {variant!r} must be {allowed}, got {_shown(value)}")


def _shown(value: Any) -> str:
    """repr of a user's value for an error message, cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_text(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        return f"a comma-separated list of {_type_text(args[0]) if args else 'values'}"
    if hint is type(None):
        return "none"
    return {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}.get(hint, str(hint))


def describe_options(options_class: type | None) -> list[dict[str, Any]]:
    """[{name, type, default, help}] for ``ff_variants`` and ``--help``: the help is the comment
    given as ``metadata={"help": ...}`` on the field."""
    if options_class is None:
        return []
    hints = typing.get_type_hints(options_class)
    out = []
    for f in dataclasses.fields(options_class):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        if isinstance(default, tuple):
            default = list(default)
        out.append({"name": f.name, "type": _type_text(hints[f.name]), "default": default,
                    "help": f.metadata.get("help", "")})
    return out


def options_to_dict(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    d = dataclasses.asdict(options)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def variant_catalog() -> list[dict[str, Any]]:
    """Every registered kind: name, description, data kinds, prediction methods and options."""
    return [{"name": name, "description": cls.description, "data_kinds": list(cls.data_kinds),
             "options": describe_options(cls.options_class)}
            for name, cls in sorted(_KINDS.items())]
