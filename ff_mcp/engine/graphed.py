"""The whole training step as one CUDA graph (``TrainConfig.cuda_graph``).

At batch 100 an MNIST 4x2000 step is ~20 GFLOP, a tenth of a millisecond of an H100's matmul
time, but about 150 kernel launches, each behind Python dispatch: eagerly the GPU waits on the
CPU for most of the step. A CUDA graph records the launches once and replays them with one call.

A graph fixes shapes, addresses and every Python value the step used while it was captured.
The step keeps to that as follows:

- shapes: full mini-batches only; a short last batch runs eagerly;
- addresses: each batch's images, labels, row indices and negative labels are copied into static
  buffers before the replay, from the training set that ``fit`` put on the device;
- randomness: the negative labels are drawn outside the graph by the same contrast call on the
  same generator as the eager step, so a graphed run trains on exactly the eager run's negatives;
- Python floats: learning rates, momentum and weight decay are baked into the captured kernels, so
  the step captures again whenever an optimizer's hyperparameters change (the linear cooldown:
  once an epoch in its second half; a capture costs about one eager step);
- optimizer state: ``WARMUP`` eager steps create it (SGD momentum buffers, Adam moments) before
  the first capture, on the side stream the graph is captured on, so that stream's lazily made
  resources (cuBLAS workspaces) exist before capture (torch's documented warm-up); Adam is captured
  with ``capturable=True`` (the fused Adam keeps its step counts on the device either way);
- statistics: loss and goodness sums accumulate in the graph's own buffer, added to the epoch's
  at its end (``flush_stats``).

The graph's memory is a private pool that lives as long as the graph: the working memory of one
step, held between steps instead of returned to the caching allocator.

If a capture fails (CUDA refuses some operation inside it), nothing of it ran: the step runs
eagerly instead, for the rest of the run, with a warning that names the error (``GraphedStep.error``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Iterator

import torch

from .negatives import BatchContext

log = logging.getLogger(__name__)

GraphFactory = Callable[..., Any]  # (body, optimizers, stream) -> an object with replay()


def cuda_graph(body: Callable[[], None], optimizers: list[torch.optim.Optimizer],
               stream: torch.cuda.Stream | None = None) -> torch.cuda.CUDAGraph:
    """Capture ``body`` as a CUDA graph on ``stream`` (nothing runs until ``replay``), with the
    optimizers' ``capturable`` flag on while capturing."""
    graph = torch.cuda.CUDAGraph()
    flags = [(group, group["capturable"]) for opt in optimizers for group in opt.param_groups if "capturable" in group]
    for group, _ in flags:
        group["capturable"] = True
    try:
        with torch.cuda.graph(graph, stream=stream):
            body()
    finally:
        for group, flag in flags:
            group["capturable"] = flag
    return graph


def graph_problems(session) -> list[str]:
    """What keeps ``session`` from graphing its step: [] when nothing does."""
    problems = []
    if session.device.type != "cuda":
        problems.append(f"a CUDA device, got {session.device.type!r}")
    if session.config.schedule != "simultaneous":
        problems.append(f"schedule 'simultaneous', got {session.config.schedule!r}")
    if not all(session.fused_layers):
        problems.append("the fused step on every layer (ReLU layers with a sum- or mean-of-squares "
                        "goodness)")
    elif not session.shares_first_layer:
        problems.append(f"negatives that only change the label ('wrong_label' or 'hard'), got {session.config.negatives!r}")
    if any(isinstance(opt, torch.optim.Adam) and not opt.param_groups[0].get("fused") for opt in _optimizers(session)):
        problems.append("the fused Adam (optimizer fused=None or True)")
    return problems


def _optimizers(session) -> list[torch.optim.Optimizer]:
    """Every optimizer a training step uses: one per layer, then the readout's if there is one."""
    return [*session.optimizers, *([session.readout_optimizer] if session.readout_optimizer else [])]


class GraphedStep:
    """Full mini-batches of one training set, each step one replay of a captured graph."""

    WARMUP = 3  # eager steps before the first capture

    def __init__(self, session, x_train: torch.Tensor, y_train: torch.Tensor,
                 graph_factory: GraphFactory = cuda_graph) -> None:
        self.session, self.x_train, self.y_train = session, x_train, y_train
        batch, device = session.config.batch_size, x_train.device
        self.x = torch.empty(batch, x_train.shape[1], dtype=x_train.dtype, device=device)
        self.y = torch.empty(batch, dtype=y_train.dtype, device=device)
        self.index = torch.empty(batch, dtype=torch.long, device=device)
        self.negatives = torch.empty(batch, dtype=torch.long, device=device)
        self.stats = torch.zeros(len(session.network.layers) + 1, 3, device=device)
        self.optimizers = _optimizers(session)
        self.graph_factory = graph_factory
        self.graph: Any = None
        self.key: tuple | None = None
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.eager_steps = 0
        self.captures = 0
        self.error: str | None = None  # why capturing failed, if it did (the steps then run eagerly)

    def step(self, index: torch.Tensor, generator: torch.Generator) -> None:
        """One training step on rows ``index`` (batch_size of them) of the training set."""
        torch.index_select(self.x_train, 0, index, out=self.x)
        torch.index_select(self.y_train, 0, index, out=self.y)
        self.index.copy_(index)
        negatives = self.session.contrast.negative_labels(BatchContext(self.x, self.y, self.index, generator))
        self.negatives.copy_(negatives)
        if self.error is not None:
            self._body()
            return
        if self.eager_steps < self.WARMUP:
            self.eager_steps += 1
            with self._on_side_stream():
                self._body()
            return
        key = self._key()
        if self.graph is None or key != self.key:
            self.graph = None  # the old graph's memory goes back before the new one takes its own
            try:
                self.graph = self.graph_factory(self._body, self.optimizers, self.stream)
            except RuntimeError as exc:  # torch.AcceleratorError included
                self.error = str(exc).strip().splitlines()[0]
                log.warning("capturing the training step as a CUDA graph failed (%s); it runs eagerly from here on",
                            self.error)
                self._body()  # nothing of the failed capture ran
                return
            self.key = key
            self.captures += 1
        self.graph.replay()

    def flush_stats(self, into: torch.Tensor) -> None:
        """Add the statistics accumulated since the last flush to ``into`` (L+1, 3) and clear them."""
        into.add_(self.stats)
        self.stats.zero_()

    @contextlib.contextmanager
    def _on_side_stream(self) -> Iterator[None]:
        """Run on the capture stream, ordered after and before the current stream's work."""
        if self.stream is None:
            yield
            return
        current = torch.cuda.current_stream(self.stream.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            yield
        current.wait_stream(self.stream)

    def _body(self) -> None:
        self.session.train_step(self.x, self.y, self.index, None, stats=self.stats, negative_labels=self.negatives)

    def _key(self) -> tuple:
        """Every Python value of the optimizers that a capture bakes in."""
        return tuple(tuple(sorted((k, repr(v)) for k, v in group.items() if k != "params"))
                     for opt in self.optimizers for group in opt.param_groups)
