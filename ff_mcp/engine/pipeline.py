"""Pipelined FF training in one process: each stage (a contiguous slice of layers) runs in its own
thread, so layer i works on mini-batch t while layer i+1 works on t-1.

The schedule. At tick k, stage s takes one local step on mini-batch k - s, using the activities
stage s-1 produced for that mini-batch at tick k-1 (with stage s-1's weights *before* its own step
on it). Stage 0 builds mini-batches exactly as ``Trainer`` does (same shuffle and negatives
streams); the readout lives in the last stage.

Why it is exact. An FF layer's update for mini-batch t needs only its input for t and its own state
after t-1: no gradient crosses layers. In simultaneous training (``Trainer.train_step``) layer i+1
also reads layer i's output for t computed before layer i steps on t. So the pipeline computes the
same tensors in a different order, and gives the same weights as simultaneous training, bit for bit
on the same device and intra-op thread count (tested). Only the timing differs: the pipeline fills
and drains once per epoch (S-1 idle ticks per stage out of steps + S-1), so the learning-rate
cooldown, hard negatives and evaluation all see a network on which every layer has seen the same
mini-batches.

Threads, not processes: torch ops release the GIL, and every stage owns its layers' parameters and
optimizers, so stages share no mutable state. On CUDA every stage runs on its own stream and hands
its activities on with an event. ``ff_mcp.engine.distributed`` runs the same stages in separate
processes.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .dense import DenseSession
from .network import FFNetwork
from .trainer import Callback, Trainer, TrainConfig

_POLL_SECONDS = 0.05  # how often a blocked thread checks whether another one failed


# ---- stages --------------------------------------------------------------------------------


def layer_widths(network: FFNetwork) -> list[int]:
    """[input width, hidden_1, ..., hidden_L] of the embedded rows the layers see."""
    return [network.layers[0].in_features, *(layer.out_features for layer in network.layers)]


def split_layers(widths: Sequence[int], stages: int) -> list[range]:
    """Contiguous slices of the ``len(widths) - 1`` layers into ``stages`` parts whose costliest part
    is as cheap as possible; a layer costs fan_in * fan_out (its forward and weight-gradient matmuls).

    split_layers([784, 2000, 2000, 2000, 2000], 2) -> [range(0, 2), range(2, 4)]
    """
    n_layers = len(widths) - 1
    if not (1 <= stages <= n_layers):
        raise ValueError(f"stages must be in [1, {n_layers}] (one layer at least per stage), got {stages}")
    cost = [widths[i] * widths[i + 1] for i in range(n_layers)]
    prefix = [0]
    for c in cost:
        prefix.append(prefix[-1] + c)
    # best[s][j]: the smallest possible costliest part when the first j layers form s parts.
    best = [[math.inf] * (n_layers + 1) for _ in range(stages + 1)]
    cut = [[0] * (n_layers + 1) for _ in range(stages + 1)]
    best[0][0] = 0
    for s in range(1, stages + 1):
        for j in range(s, n_layers + 1):
            for i in range(s - 1, j):
                worst = max(best[s - 1][i], prefix[j] - prefix[i])
                if worst < best[s][j]:
                    best[s][j], cut[s][j] = worst, i
    bounds, j = [], n_layers
    for s in range(stages, 0, -1):
        bounds.append(range(cut[s][j], j))
        j = cut[s][j]
    return bounds[::-1]


def resolve_stages(stages: int | Sequence[range], network: FFNetwork) -> list[range]:
    """An int becomes balanced slices (``split_layers``); a list of ranges must cover every layer in order."""
    n_layers = len(network.layers)
    if isinstance(stages, int):
        return split_layers(layer_widths(network), stages)
    stages = [range(r.start, r.stop) for r in stages]
    starts = [0] + [r.stop for r in stages[:-1]]
    if not stages or any(r.start != s or r.stop <= r.start for r, s in zip(stages, starts)) or stages[-1].stop != n_layers:
        shown = [(r.start, r.stop) for r in stages]
        raise ValueError(f"stages must be non-empty contiguous ranges covering layers 0..{n_layers - 1} in order, got {shown}")
    return stages


def check_pipeline_config(config: TrainConfig, network=None) -> None:
    if network is not None and not isinstance(network, FFNetwork):
        raise ValueError(f"pipelined training runs the dense MLP (variant 'ff') only, got {network.kind!r}")
    if config.schedule != "simultaneous":
        raise ValueError(f"pipelined training needs schedule 'simultaneous', got {config.schedule!r}")


# ---- one stage's step ----------------------------------------------------------------------


@dataclass
class StagePacket:
    """What one stage hands the next for one mini-batch.

    z: (B+ + B- [+ B0], H) float, activities of the stage's last layer: positive, negative and (with
    a readout) neutral-label rows, detached. y: (B0,) int64 labels for the readout. features:
    (B0, F) normalised neutral activities of the scored layers below the last one (the last one is
    recomputed from z by the receiver), or None without a readout. rows: data rows in the batch.
    """

    step: int
    z: torch.Tensor
    y: torch.Tensor
    n_pos: int
    n_train: int
    rows: int
    features: torch.Tensor | None
    ready: Any = None  # a torch.cuda.Event recorded after z was written (CUDA streams only)


def embed_batch(session: DenseSession, step: int, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor,
                generator: torch.Generator) -> StagePacket:
    """Stage 0's input: x (B, D) raw rows -> the embedded rows ``DenseSession.train_step`` builds."""
    with_readout = session.readout_optimizer is not None
    z, n_pos, n_train = session.embed_rows(x, y, index, generator, with_readout, share=session.fused_layers[0])
    features = x.new_zeros(x.shape[0], 0) if with_readout else None
    return StagePacket(step, z, y, n_pos, n_train, x.shape[0], features)


def train_stage(session: DenseSession, layers: range, packet: StagePacket, stats: torch.Tensor) -> StagePacket:
    """One local step of every layer in ``layers`` on one mini-batch, as in ``DenseSession.train_step``;
    the last stage also steps the readout. stats: (L+1, 3) accumulates loss, goodness sums."""
    net = session.network
    last_stage = layers.stop == len(net.layers)
    with_readout = packet.features is not None
    first_scored, n_pos, n_train = net.first_scored_layer, packet.n_pos, packet.n_train
    features = [packet.features] if with_readout and packet.features.shape[1] > 0 else []
    z = packet.z
    sumsq = None
    # the sender's last layer scaled its rows for this stage's first layer when it could: the
    # single-process trainer hands them over the same way, so the bits agree
    scaled = layers.start > 0 and session.hands_off(layers.start - 1)
    if layers.start > 0 and session.fused_layers[layers.start - 1] and not scaled:
        # what the sender's fused step reported: the same op on the same rows, so the same bits
        sumsq = torch.linalg.vector_norm(z, dim=1).square_()
    if with_readout and 0 < layers.start and layers.start - 1 >= first_scored:
        # the sender's last layer
        features.append(z[n_train:] if scaled else session.readout_features(z, sumsq, n_train))
    z, sumsq = session.step_layers(layers, z, n_pos, n_train, sumsq, stats, features if with_readout else None,
                                   score_last=last_stage, scaled_input=scaled, scale_output=not last_stage)
    if last_stage:
        if with_readout:
            stats[-1, 0] += session.readout_update(torch.cat(features, dim=1), packet.y).float()
        return StagePacket(packet.step, z, packet.y, n_pos, n_train, packet.rows, None)
    carried = None
    if with_readout:
        carried = torch.cat(features, dim=1) if features else z.new_zeros(packet.rows, 0)
    return StagePacket(packet.step, z, packet.y, n_pos, n_train, packet.rows, carried)


# ---- the threaded pipeline -----------------------------------------------------------------


class _Aborted(Exception):
    """Another pipeline thread failed; this one stops quietly."""


def _get(q: queue.Queue, abort: threading.Event):
    while True:
        try:
            return q.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if abort.is_set():
                raise _Aborted from None


def _put(q: queue.Queue, item, abort: threading.Event) -> None:
    while True:
        try:
            return q.put(item, timeout=_POLL_SECONDS)
        except queue.Full:
            if abort.is_set():
                raise _Aborted from None


class PipelineTrainer(Trainer):
    """Trains an FFNetwork in place with one thread per stage; same weights as ``Trainer``.

    stages: how many (balanced by ``split_layers``) or explicit contiguous ranges of layer indices.
    threads_per_stage: intra-op threads each stage's ops use (None: this process's torch threads
    divided by the number of stages, at least 1). torch's thread count is process-wide, so it is
    set for the epoch and restored after it.

    ``should_stop`` is polled each time a mini-batch leaves the last stage; the mini-batches already
    in the pipeline (at most stages + 1) still finish, so every layer has seen the same batches.
    ``stage_seconds`` holds each stage's compute time (thread CPU seconds) of the last epoch.
    """

    def __init__(self, network: FFNetwork, config: TrainConfig, stages: int | Sequence[range] = 2,
                 callbacks: list[Callback] | tuple = (), should_stop: Callable[[], bool] | None = None,
                 threads_per_stage: int | None = None) -> None:
        check_pipeline_config(config, network)
        super().__init__(network, config, callbacks=callbacks, should_stop=should_stop)
        self.stages = resolve_stages(stages, network)
        if threads_per_stage is not None and threads_per_stage < 1:
            raise ValueError(f"threads_per_stage must be >= 1, got {threads_per_stage}")
        self.threads_per_stage = threads_per_stage
        self.stage_seconds: list[float] = [0.0] * len(self.stages)

    def _run_epoch(self, x, y, layers, shuffle_gen, negative_gen, stats, epoch) -> tuple[int, int]:
        n, bs, n_stages = x.shape[0], self.config.batch_size, len(self.stages)
        order = torch.randperm(n, generator=shuffle_gen).to(self.device)
        steps = math.ceil(n / bs)
        inboxes = [queue.Queue(maxsize=1) for _ in range(n_stages)]  # inboxes[0] gets step numbers
        finished: queue.Queue = queue.Queue()
        abort = threading.Event()
        stage_stats = [torch.zeros_like(stats) for _ in range(n_stages)]
        self.stage_seconds = [0.0] * n_stages
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)  # order, data and stats are ready for the stage streams

        def work(s: int) -> None:
            stream = torch.cuda.Stream(self.device) if cuda else None
            try:
                with _stream_context(stream):
                    while True:
                        item = _get(inboxes[s], abort)
                        if item is None:
                            if s + 1 < n_stages:
                                _put(inboxes[s + 1], None, abort)
                            return
                        started = time.thread_time()
                        if s == 0:
                            index = order[item * bs : (item + 1) * bs]
                            packet = embed_batch(self.session, item, x[index], y[index], index, negative_gen)
                        else:
                            packet = _receive_on_stream(item, stream)
                        packet = train_stage(self.session, self.stages[s], packet, stage_stats[s])
                        if stream is not None:
                            packet.ready = torch.cuda.Event()
                            packet.ready.record(stream)
                        self.stage_seconds[s] += time.thread_time() - started
                        if s + 1 < n_stages:
                            _put(inboxes[s + 1], packet, abort)
                        else:
                            finished.put(packet.rows)
            except _Aborted:
                return
            except BaseException as exc:  # handed to the main thread, which re-raises it
                finished.put(exc)
                abort.set()

        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads_per_stage or max(1, previous_threads // n_stages))
        workers = [threading.Thread(target=work, args=(s,), name=f"ff-stage-{s}", daemon=True) for s in range(n_stages)]
        for worker in workers:
            worker.start()
        fed = done = rows = 0
        stopping = False
        try:
            while done < fed or (fed < steps and not stopping):
                while fed < steps and not stopping and fed - done <= n_stages:
                    _put(inboxes[0], fed, abort)
                    fed += 1
                message = _get(finished, abort)
                if isinstance(message, BaseException):
                    raise message
                done += 1
                rows += message
                for cb in self.callbacks:
                    if hasattr(cb, "on_batch_end"):
                        cb.on_batch_end(epoch, done, steps)
                if not stopping and self.should_stop():
                    stopping = self._stopped = True
            _put(inboxes[0], None, abort)
        except _Aborted:
            raise _first_error(finished) from None
        except BaseException:
            abort.set()
            raise
        finally:
            for worker in workers:
                worker.join()
            torch.set_num_threads(previous_threads)
        if cuda:
            torch.cuda.synchronize(self.device)
        for part in stage_stats:
            stats += part
        return rows, done


def _first_error(finished: queue.Queue) -> BaseException:
    while True:
        message = finished.get()  # the failing thread put its error before raising the alarm
        if isinstance(message, BaseException):
            return message


def _stream_context(stream):
    return torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext()


def _receive_on_stream(packet: StagePacket, stream) -> StagePacket:
    """Make ``stream`` wait for the producer's event and keep the packet's memory alive for it."""
    if stream is None or packet.ready is None:
        return packet
    stream.wait_event(packet.ready)
    for t in (packet.z, packet.y, packet.features):
        if t is not None:
            t.record_stream(stream)
    return packet
