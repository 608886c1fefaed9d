"""The training loop, once for every model kind: epochs, phases, learning-rate cooldown, callbacks,
cancellation, evaluation and metrics.

The trainer knows a model only through the protocol (``engine/protocol.py``): the model's
``training_session`` owns the optimizers and takes each mini-batch's step, the model's
``batches`` cuts an epoch into mini-batches, and its named ``prediction_methods`` score the
evaluation. A new model kind trains here without an edit.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

import torch

from ff_mcp import seeds

from .device import AMP_CHOICES, resolve_device
from .layers import OptimizerConfig
from .protocol import STEPS, Batch, FFModel, Graph, Session, kind_of_config

log = logging.getLogger(__name__)

SCHEDULES = ("simultaneous", "greedy")
# TrainConfig fields of checkpoints written before the step selector: each maps to a step
_LEGACY_STEP_FLAGS = ("fused_step", "cuda_graph", "native_step")


@dataclass(frozen=True)
class TrainConfig:
    """How to train; stored beside the model config in every checkpoint."""

    epochs: int = 10
    batch_size: int = 100  # loeweX and Hinton's Matlab: 100
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: str = "simultaneous"  # loeweX/Matlab; "greedy" = mpezeshki's layer after layer
    negatives: str = "wrong_label"
    cooldown: bool = True  # linear LR decay to 0 over the second half (Matlab, loeweX)
    readout_cooldown: bool = True  # the readout's LR follows the same cooldown (loeweX decays its classifier too)
    readout_lr: float | None = None  # None: 10x lr for SGD (loeweX 1e-2 vs 1e-3), lr for Adam
    readout_weight_decay: float = 0.0  # loeweX: 3e-3 with SGD
    seed: int = 0
    device: str = "auto"
    amp: str = "none"
    predict_method: str | None = None  # what test_accuracy reports; None: the model's preferred method
    eval_every: int = 1  # epochs between test evaluations (the last epoch is always evaluated)
    train_eval_rows: int = 2000  # training rows scored for train_accuracy (0 = skip)
    # auto: the fastest step the model kind has for this run (the dense MLP: fused where a layer
    # allows, else autograd); autograd | fused | native (compiled, CPU SGD) | cuda_graph (CUDA)
    step: str = "auto"

    def __post_init__(self) -> None:
        if not (1 <= self.epochs <= 100_000):
            raise ValueError(f"epochs must be in [1, 100000], got {self.epochs}")
        if not (1 <= self.batch_size <= 1_000_000):
            raise ValueError(f"batch_size must be in [1, 1000000], got {self.batch_size}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {list(SCHEDULES)}, got {self.schedule!r}")
        if self.amp not in AMP_CHOICES:
            raise ValueError(f"amp must be one of {list(AMP_CHOICES)}, got {self.amp!r}")
        if self.predict_method is not None and (not isinstance(self.predict_method, str) or not self.predict_method):
            raise ValueError(f"predict_method must be a method name or None, got {self.predict_method!r}")
        if not (0 <= self.seed < 2**63):
            raise ValueError(f"seed must be in [0, 2**63), got {self.seed}")
        if self.eval_every < 1:
            raise ValueError(f"eval_every must be >= 1, got {self.eval_every}")
        if self.readout_lr is not None and not (0 < self.readout_lr <= 10):
            raise ValueError(f"readout_lr must be in (0, 10], got {self.readout_lr}")
        if not (0.0 <= self.readout_weight_decay <= 1.0):
            raise ValueError(f"readout_weight_decay must be in [0, 1], got {self.readout_weight_decay}")
        if self.step not in STEPS:
            raise ValueError(f"step must be one of {list(STEPS)}, got {self.step!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    def readout_optimizer(self) -> OptimizerConfig:
        """The optimizer of a readout trained beside the layers: the layers' kind, ``readout_lr`` (default
        10x lr for SGD, as loeweX's 1e-2 vs 1e-3; lr otherwise) and ``readout_weight_decay``."""
        opt = self.optimizer
        lr = self.readout_lr or (opt.lr * 10 if opt.name == "sgd" else opt.lr)
        return OptimizerConfig(opt.name, lr, opt.momentum, self.readout_weight_decay, opt.fused)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """From ``to_dict``'s output, also as written before the step selector (fused_step,
        cuda_graph, native_step booleans)."""
        d = dict(d)
        if isinstance(d.get("optimizer"), dict):
            d["optimizer"] = OptimizerConfig(**d["optimizer"])
        legacy = {key: d.pop(key) for key in _LEGACY_STEP_FLAGS if key in d}
        if legacy and "step" not in d:
            d["step"] = legacy_step(**legacy)
        return cls(**d)


def legacy_step(fused_step: bool = True, cuda_graph: bool = False, native_step: bool = False) -> str:
    """The step selected by the three booleans of earlier versions (``--native-step``, ``--cuda-graph``)."""
    if native_step and cuda_graph:
        raise ValueError("step: native_step and cuda_graph cannot both be on; choose one step")
    if native_step:
        return "native"
    if cuda_graph:
        return "cuda_graph"
    return "auto" if fused_step else "autograd"


class Callback(Protocol):
    """Receives progress. Both methods are optional in practice (see ``CallbackBase``)."""

    def on_batch_end(self, epoch: int, step: int, steps: int) -> None: ...

    def on_epoch_end(self, metrics: dict[str, Any]) -> None: ...


class CallbackBase:
    def on_batch_end(self, epoch: int, step: int, steps: int) -> None:
        return None

    def on_epoch_end(self, metrics: dict[str, Any]) -> None:
        return None


@dataclass
class TrainResult:
    state: str  # "done", "cancelled", or "stopped" (after fit's stop_after epochs)
    history: list[dict[str, Any]]
    train_seconds: float
    samples_seen: int  # positive rows processed by training steps
    device: str
    cuda_graph: dict[str, Any] | None = None  # with step cuda_graph: captures, eager steps, error
    native_steps: int | None = None  # with step native: mini-batches the compiled step ran
    step: str | None = None  # the step the session ran

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1] if self.history else {}

    @property
    def samples_per_second(self) -> float:
        return self.samples_seen / self.train_seconds if self.train_seconds > 0 else 0.0


@dataclass
class ResumeState:
    """Where a run stands after ``epoch`` finished epochs (across phases): what a later ``fit`` needs to
    go on as if it had never stopped. ``session``: the session's ``state_dict`` (optimizer states);
    ``rng``: the shuffle and negatives generators' states; ``history``: the epochs so far."""

    epoch: int
    session: dict[str, Any]
    rng: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    partial: bool = False  # stopped inside an epoch: the weights hold part of epoch + 1 (not bitwise)


def _copied(value: Any) -> Any:
    """``value`` with every tensor cloned (dicts and lists rebuilt): a snapshot that later steps cannot change."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(v) for v in value)
    return value


def scale_learning_rates(optimizers: list[torch.optim.Optimizer], base_lrs: list[float], factor: float,
                         readout_follows: bool = True) -> None:
    """Each optimizer's learning rate to its base times ``factor``; with ``readout_follows`` False the last
    optimizer (a readout's) keeps its base (``TrainConfig.readout_cooldown`` off)."""
    for i, (optimizer, base) in enumerate(zip(optimizers, base_lrs)):
        scale = factor if (readout_follows or i < len(optimizers) - 1) else 1.0
        for group in optimizer.param_groups:
            group["lr"] = base * scale


def build_model(config: Any, seed: int = 0, device: torch.device | str = "cpu") -> FFModel:
    """A freshly initialised model of the kind ``config`` belongs to; the same seed, the same weights."""
    cls = kind_of_config(config)
    return cls(config, generator=seeds.generator(seed, "init")).to(device)


build_network = build_model  # the name of the days of one model kind


class EvaluationStopped(Exception):
    """Raised by a ``check`` between prediction chunks: the caller asked the work to stop."""


@torch.no_grad()
def predict_in_chunks(model: FFModel, x: torch.Tensor, method: str | None = None, chunk: int = 1000,
                      check: Callable[[], None] | None = None) -> torch.Tensor:
    """(N, ...) -> (N, K) scores, computed ``chunk`` rows at a time (bounded memory). ``check`` runs
    before each chunk and may raise to stop the work (cancellation, a time limit)."""
    was_training = model.training
    model.eval()
    try:
        parts = []
        for i in range(0, x.shape[0], chunk):
            if check is not None:
                check()
            parts.append(model.predict_scores(x[i : i + chunk], method))
        return torch.cat(parts)
    finally:
        model.train(was_training)


def graph_accuracies(model: FFModel, graph: Graph, method: str | None = None) -> dict[str, float]:
    """{train,val,test}_accuracy over the graph's masks (those it has), the whole graph scored once."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            predicted = model.predict_scores(graph.to(model.device), method).argmax(dim=1)
    finally:
        model.train(was_training)
    y = graph.y.to(predicted.device)
    out = {}
    # a model that keeps the training nodes' labels in its input at prediction (graph FF) cannot score them
    splits = ("val", "test") if getattr(model, "labels_fixed_on_train_nodes", False) else ("train", "val", "test")
    for split in splits:
        mask = getattr(graph, f"{split}_mask")
        if mask is not None and bool(mask.any()):
            mask = mask.to(predicted.device)
            out[f"{split}_accuracy"] = (predicted[mask] == y[mask]).float().mean().item()
    return out


def accuracy(model: FFModel, x: torch.Tensor, y: torch.Tensor, method: str | None = None,
             check: Callable[[], None] | None = None) -> float:
    """Fraction of rows whose predicted label equals y."""
    if x.shape[0] == 0:
        return float("nan")
    scores = predict_in_chunks(model, x.to(model.device), method, check=check)
    return (scores.argmax(dim=1) == y.to(scores.device)).float().mean().item()


class Trainer:
    """Trains a model of any registered kind in place.

    ``should_stop`` is polled once per mini-batch; when it returns True the trainer stops after
    the current step, leaving the model in a consistent state (every optimizer step is whole).
    """

    def __init__(
        self,
        network: FFModel,
        config: TrainConfig,
        callbacks: list[Callback] | tuple = (),
        should_stop: Callable[[], bool] | None = None,
        session: Callable[[FFModel, TrainConfig, torch.device], Session] | None = None,
    ) -> None:
        """``session``: a training procedure other than the model's own (``model.training_session``),
        e.g. color learning's one-layer step on positive and negative colors."""
        self.model = network
        self.config = config
        self.callbacks = list(callbacks)
        self.should_stop = should_stop or (lambda: False)
        self.device = resolve_device(config.device)
        self.model.to(self.device)
        if config.predict_method is not None:
            network.check_method(config.predict_method)
        if config.step not in network.steps:
            raise ValueError(f"step {config.step!r} is not available for model kind {network.kind!r}; "
                             f"it has {list(network.steps)}")
        if config.step in ("native", "cuda_graph") and type(self)._run_epoch is not Trainer._run_epoch:
            # the graphed and the compiled step take each whole mini-batch of Trainer's own loop;
            # pipelined and distributed training schedule the layers themselves
            raise ValueError(f"step {config.step!r} needs the single-process Trainer (pipelined and distributed "
                             f"training run their own schedule)")
        self.session: Session = (session(network, config, self.device) if session is not None
                                 else network.training_session(config, self.device))
        self._stopped = False
        self._epoch_whole = False  # the last epoch ran all its steps (subclasses that schedule steps leave it False)
        self._stop_after: int | None = None
        self.resume_state: ResumeState | None = None

    @property
    def network(self) -> FFModel:
        return self.model

    # ---- the loop ---------------------------------------------------------------------------

    def fit(self, x_train: torch.Tensor, y_train: torch.Tensor,
            x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
            resume: ResumeState | None = None, stop_after: int | None = None) -> TrainResult:
        """x_train: (N, ...) float, y_train: (N,) int64; or x_train a ``Graph`` (y_train None): its
        training nodes are the rows, validation and test accuracy come from its masks (``val_accuracy``,
        ``test_accuracy``), and x_test is not used. Data moves to the device once.

        ``resume``: go on from a ``ResumeState`` (the model holds its weights); on CPU the result is
        bit-identical to the run that never stopped. ``stop_after``: end cleanly after that many epochs
        in all (of the planned ``epochs``, whose learning-rate schedule stays as planned).
        ``resume_state`` holds where the run stands when fit returns."""
        cfg, model, session = self.config, self.model, self.session
        model.check_data(x_train, y_train, "train")
        if isinstance(x_train, Graph):
            if x_test is not None:
                raise ValueError("x_test: a graph holds its test nodes (test_mask); give no x_test")
            x_train = x_train.to(self.device)
            y_train = x_train.y
            self._train_nodes = x_train.train_mask.nonzero().squeeze(1)
        else:
            if x_test is not None:
                model.check_data(x_test, y_test, "test")
            x_train = x_train.to(self.device, torch.float32)
            y_train = y_train.to(self.device, torch.long)
        if x_test is not None:
            x_test, y_test = x_test.to(self.device, torch.float32), y_test.to(self.device, torch.long)
        shuffle_gen = seeds.generator(cfg.seed, "shuffle")
        negative_gen = seeds.generator(cfg.seed, "negatives", self.device)
        phases = session.phases()
        per_phase = session.phase_epochs(cfg.epochs)
        if len(per_phase) != len(phases) or any(not isinstance(e, int) or e < 1 for e in per_phase):
            raise ValueError(f"model kind {model.kind!r}: phase_epochs must give one count >= 1 per phase, "
                             f"got {per_phase} for {len(phases)} phases")
        offsets = [sum(per_phase[:i]) for i in range(len(phases))]
        history: list[dict[str, Any]] = list(resume.history) if resume is not None else []
        done = resume.epoch if resume is not None else 0
        train_seconds, samples = 0.0, 0
        total_epochs = sum(per_phase)
        if resume is not None and not 0 <= done < total_epochs:
            raise ValueError(f"epochs: the saved run has finished {done} epochs; give more than that to go on "
                             f"(the plan now has {total_epochs})")
        if stop_after is not None and not done < stop_after <= total_epochs:
            raise ValueError(f"stop_after must be in ({done}, {total_epochs}], got {stop_after}")
        model.train()
        session.begin_fit(x_train, y_train)
        if resume is not None:
            session.load_state_dict(_copied(resume.session))  # the saved state stays as it was
            shuffle_gen.set_state(resume.rng["shuffle"])
            try:
                negative_gen.set_state(resume.rng["negatives"].to(negative_gen.get_state().device))
            except RuntimeError:  # saved on another kind of device: its generator state does not fit here
                log.warning("resume: the run was saved on another kind of device; its negatives are drawn from a "
                            "fresh stream from here on (the weights will not be bit-identical to an unstopped run)")
                negative_gen = seeds.generator(cfg.seed, f"negatives-resumed-{done}", self.device)
        self.resume_state = None
        self._stop_after = stop_after

        def keep(global_epoch: int, partial: bool = False) -> None:
            """Where the run stands, copied (the live optimizer state goes on changing); only at the end."""
            state = session.state_dict()
            records = history[:-1] if partial else history  # a partial epoch is trained again on resume
            self.resume_state = None if state is None else ResumeState(
                global_epoch, _copied(state), {"shuffle": shuffle_gen.get_state(),
                                               "negatives": negative_gen.get_state()},
                list(records), partial)

        try:
            for phase_index, units in enumerate(phases):
                for epoch in range(per_phase[phase_index]):
                    global_epoch = offsets[phase_index] + epoch + 1
                    if global_epoch <= done:
                        continue  # finished before the run was resumed
                    started = time.perf_counter()
                    self._lr_factor = self.lr_factor(epoch, per_phase[phase_index])
                    session.set_lr_factor(self._lr_factor, units)
                    session.begin_epoch(global_epoch - 1, units, x_train, y_train)
                    stats = torch.zeros(session.units + 1, 3, device=self.device)
                    try:
                        rows, steps = self._run_epoch(x_train, y_train, units, shuffle_gen, negative_gen, stats,
                                                      global_epoch)
                    finally:
                        session.end_epoch(stats)
                    ends_phase = epoch + 1 == per_phase[phase_index] or session.phase_finished(units)
                    if ends_phase and not self._stopped:
                        session.end_phase(units)  # e.g. the best-validation weights back: the record shows them
                    self._run_ends = ends_phase and phase_index == len(phases) - 1  # evaluate it, early or not
                    if self.device.type == "cuda":
                        torch.cuda.synchronize(self.device)
                    epoch_seconds = time.perf_counter() - started
                    train_seconds += epoch_seconds
                    samples += rows
                    metrics = self._epoch_metrics(global_epoch, total_epochs, units, stats, rows, steps,
                                                  x_train, y_train, x_test, y_test)
                    metrics["train_seconds"] = round(train_seconds, 4)
                    metrics["epoch_seconds"] = round(epoch_seconds, 4)  # training only, not evaluation
                    metrics["samples_per_second"] = round(rows / epoch_seconds, 1) if epoch_seconds > 0 else 0.0
                    history.append(metrics)
                    for cb in self.callbacks:
                        if hasattr(cb, "on_epoch_end"):
                            cb.on_epoch_end(metrics)
                    if self._stopped:
                        whole = self._epoch_whole  # stopped after the epoch's last step, or in its evaluation
                        keep(global_epoch if whole else global_epoch - 1, partial=not whole)
                        return self._result("cancelled", history, train_seconds, samples)
                    if stop_after is not None and global_epoch >= stop_after:
                        keep(global_epoch)
                        return self._result("stopped", history, train_seconds, samples)
                    if ends_phase:
                        break  # the phase's last epoch, or the session ended it early (early stopping)
            keep(total_epochs)
            return self._result("done", history, train_seconds, samples)
        finally:
            session.end_fit()

    def lr_factor(self, epoch: int, epochs: int) -> float:
        """Linear cooldown to 0 over the second half (loeweX ``get_linear_cooldown_lr``), epoch from 0."""
        if self.config.cooldown and epoch > epochs // 2:
            return 2.0 * (1 + epochs - epoch) / epochs
        return 1.0

    def _result(self, state: str, history: list[dict[str, Any]], train_seconds: float, samples: int) -> TrainResult:
        report = self.session.report()
        return TrainResult(state, history, train_seconds, samples, str(self.device), report.get("cuda_graph"),
                           report.get("native_steps"), self.session.step_kind)

    def _run_epoch(self, x, y, units, shuffle_gen, negative_gen, stats, epoch) -> tuple[int, int]:
        """One epoch of mini-batches in the model's order; returns (rows, steps) trained."""
        graph = isinstance(x, Graph)
        n = self._train_nodes.shape[0] if graph else x.shape[0]
        batches = list(self.session.batches(n, self.config.batch_size, shuffle_gen, self.device))
        steps, rows = len(batches), 0
        self._epoch_whole = False
        for step, index in enumerate(batches):
            if graph:  # the whole graph, and the training nodes of this batch
                nodes = self._train_nodes[index]
                batch = Batch(x, y[nodes], nodes)
            else:
                batch = Batch(x[index], y[index], index)
            self.session.step(batch, negative_gen, units, stats)
            rows += index.shape[0]
            for cb in self.callbacks:
                if hasattr(cb, "on_batch_end"):
                    cb.on_batch_end(epoch, step + 1, steps)
            if self.should_stop():
                self._stopped = True
                self._epoch_whole = step + 1 == steps
                return rows, step + 1
        self._epoch_whole = True
        return rows, steps

    def _epoch_metrics(self, epoch, epochs, units, stats, rows, steps, x_train, y_train, x_test, y_test) -> dict:
        cfg, model = self.config, self.model
        stats = stats.cpu()  # the one host synchronisation of the epoch
        unit_metrics = []
        for i in units:
            # goodness sums are over rows; the contrast decides how many negatives a batch has, so
            # report means per positive row and per negative row assuming equal counts
            unit_metrics.append({
                "layer": i,
                "loss": stats[i, 0].item() / max(steps, 1),
                "goodness_pos": stats[i, 1].item() / max(rows, 1),
                "goodness_neg": stats[i, 2].item() / max(rows, 1),
            })
        metrics: dict[str, Any] = {
            "epoch": epoch,
            "epochs": epochs,
            "layers": unit_metrics,
            "lr_factor": self.session.applied_lr_factor(getattr(self, "_lr_factor", 1.0), units),
            "loss": sum(m["loss"] for m in unit_metrics) / max(len(unit_metrics), 1),
        }
        extra_loss = self.session.extra_loss_name(units)
        if extra_loss:
            metrics[extra_loss] = stats[-1, 0].item() / max(steps, 1)
        methods = self.session.methods(units)
        method = cfg.predict_method if cfg.predict_method in methods else (methods[0] if methods else None)
        last = (epoch == epochs or self._stopped or getattr(self, "_run_ends", False)
                or (self._stop_after is not None and epoch >= self._stop_after))
        evaluate = method is not None and (last or epoch % cfg.eval_every == 0)
        try:
            if evaluate and isinstance(x_train, Graph):  # the whole graph once per method, split by its masks
                metrics.update(graph_accuracies(model, x_train, method))
            elif evaluate and cfg.train_eval_rows > 0:
                k = min(cfg.train_eval_rows, x_train.shape[0])
                metrics["train_accuracy"] = accuracy(model, x_train[:k], y_train[:k], method, self._check_stop)
            if evaluate and x_test is not None:
                metrics["test_accuracy"] = accuracy(model, x_test, y_test, method, self._check_stop)
                for other in methods:
                    if other != method:
                        metrics[f"test_accuracy_{other}"] = accuracy(model, x_test, y_test, other, self._check_stop)
        except EvaluationStopped:  # cancelled or out of time mid-evaluation: the weights are whole, the scores partial
            self._stopped = True
            metrics["evaluation"] = "stopped"
        metrics["predict_method"] = method
        return metrics

    def _check_stop(self) -> None:
        """Between evaluation chunks: stop when ``should_stop`` says so (cancel, a time limit)."""
        if self.should_stop():
            raise EvaluationStopped
