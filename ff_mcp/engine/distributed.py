"""Pipelined FF training across processes and devices with torch.distributed.

Rank r owns stage r, a contiguous slice of layers (``split_layers`` by default), and runs the
schedule of ``ff_mcp.engine.pipeline``: rank 0 builds every mini-batch (shuffle and negatives from
the seed), each rank takes one local step of its layers and sends the detached positive, negative
and neutral activities forward; the last rank also trains the readout. Because no gradient
crosses layers, the result equals the single-process pipeline (and simultaneous training) for the
same seed, on the same device and intra-op thread count.

At every epoch end the ranks sum their statistics and broadcast each layer from its owner, so every
rank then holds the whole network: rank 0 evaluates it, draws hard negatives from it, and saves it.

Launch (gloo on CPU, nccl on CUDA; the process group comes from torchrun's environment):

    torchrun --nproc-per-node 2 -m ff_mcp train --dataset mnist --pipeline --out m.safetensors

Wire format, per mini-batch from rank s to s+1: an int64 header (``_HEADER``), then z, then (with
a readout) y and the carried features. Sends are asynchronous, so a rank computes mini-batch t+1
while mini-batch t travels.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.distributed as dist

from .device import resolve_device
from .network import FFNetwork, NetworkConfig
from .pipeline import (
    PipelineTrainer,
    StagePacket,
    check_pipeline_config,
    embed_batch,
    layer_widths,
    resolve_stages,
    split_layers,
    train_stage,
)
from .trainer import Callback, Trainer, TrainConfig, TrainResult

log = logging.getLogger(__name__)

# header fields: kind, step, n_pos, n_train, data rows, z rows, z width, z dtype,
# feature width (-1: no readout), feature dtype
_HEADER = 10
_BATCH, _END, _STOPPED = 0, 1, 2
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class LaunchEnv:
    """What torchrun (or any env:// launcher) tells a process about its place."""

    rank: int
    world_size: int
    local_rank: int


def launch_env() -> LaunchEnv | None:
    """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK), or None when not launched by one."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return LaunchEnv(rank, world, int(os.environ.get("LOCAL_RANK", rank)))


def init_from_env(device: str = "auto") -> torch.device:
    """Join the process group torchrun describes (once); returns this rank's device.

    "auto" and "cuda" mean cuda:LOCAL_RANK with nccl where CUDA is present, else CPU with gloo.
    """
    env = launch_env()
    if env is None:
        raise ValueError("no torch.distributed launch found: RANK and WORLD_SIZE are unset (start with torchrun)")
    use_cuda = torch.cuda.is_available() and (device == "auto" or device.startswith("cuda"))
    chosen = torch.device("cuda", env.local_rank) if use_cuda else resolve_device("cpu" if device == "auto" else device)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo", timeout=dt.timedelta(minutes=30))
    return chosen


def is_main_process() -> bool:
    """True outside torch.distributed and on rank 0: the process that reports and saves."""
    return not dist.is_initialized() or dist.get_rank() == 0


def shutdown() -> None:
    """Leave the process group, if this process joined one, once every rank is ready to."""
    if dist.is_initialized():
        dist.barrier()  # a gloo rank whose peer hangs up while it still listens aborts
        dist.destroy_process_group()


class DistributedPipelineTrainer(Trainer):
    """Rank r trains stage r of the network; after ``fit`` every rank holds the whole network.

    stages: None (balanced slices, one per rank) or explicit contiguous ranges, one per rank.
    Callbacks and ``should_stop`` act on rank 0 only; ``on_batch_end`` fires when rank 0 has
    finished its stage of a mini-batch. ``stage_seconds`` is this rank's compute time (thread CPU
    seconds) and ``wait_seconds`` its time blocked on receives, both for the last epoch.
    """

    def __init__(self, network: FFNetwork, config: TrainConfig, stages: Sequence[range] | None = None,
                 callbacks: list[Callback] | tuple = (), should_stop: Callable[[], bool] | None = None) -> None:
        if not dist.is_initialized():
            raise ValueError("DistributedPipelineTrainer needs a torch.distributed process group (see init_from_env)")
        check_pipeline_config(config, network)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        main = self.rank == 0
        super().__init__(network, config, callbacks=callbacks if main else (), should_stop=should_stop if main else None)
        stages = split_layers(layer_widths(network), self.world_size) if stages is None else resolve_stages(stages, network)
        if len(stages) != self.world_size:
            raise ValueError(f"one stage per rank: {self.world_size} ranks, got {len(stages)} stages")
        self.stages = stages
        self.layers = stages[self.rank]
        self.session.draws_negatives = main  # only rank 0 draws negatives (and needs hard-negative predictions)
        # Headers travel on the CPU (gloo) so that reading one never waits for the GPU; all ranks create it.
        self.header_group = dist.new_group(backend="gloo") if self.device.type == "cuda" else None
        self.stage_seconds = 0.0
        self.wait_seconds = 0.0

    # ---- one epoch --------------------------------------------------------------------------

    def _run_epoch(self, x, y, layers, shuffle_gen, negative_gen, stats, epoch) -> tuple[int, int]:
        self.stage_seconds = self.wait_seconds = 0.0
        first, last = self.rank == 0, self.rank == self.world_size - 1
        sender = _Sender(self.rank + 1, self.device, self.header_group) if not last else None
        rows = steps_done = 0
        if first:
            n, bs = x.shape[0], self.config.batch_size
            order = torch.randperm(n, generator=shuffle_gen).to(self.device)
            steps = math.ceil(n / bs)
            end = _END
            for step in range(steps):
                started = time.thread_time()
                index = order[step * bs : (step + 1) * bs]
                packet = embed_batch(self.session, step, x[index], y[index], index, negative_gen)
                packet = train_stage(self.session, self.layers, packet, stats)
                self.stage_seconds += time.thread_time() - started
                if sender is not None:
                    sender.send(packet)
                rows, steps_done = rows + packet.rows, step + 1
                for cb in self.callbacks:
                    if hasattr(cb, "on_batch_end"):
                        cb.on_batch_end(epoch, step + 1, steps)
                if self.should_stop():
                    self._stopped, end = True, _STOPPED
                    break
            if sender is not None:
                sender.send_end(end)
        else:
            while True:
                waited = time.perf_counter()
                packet, kind = _receive(self.rank - 1, self.device, self.header_group)
                self.wait_seconds += time.perf_counter() - waited
                if packet is None:
                    self._stopped = kind == _STOPPED
                    if sender is not None:
                        sender.send_end(kind)
                    break
                started = time.thread_time()
                packet = train_stage(self.session, self.layers, packet, stats)
                self.stage_seconds += time.thread_time() - started
                if sender is not None:
                    sender.send(packet)
                rows, steps_done = rows + packet.rows, steps_done + 1
        if sender is not None:
            sender.wait()
        self._synchronise(stats)
        return rows, steps_done

    def _synchronise(self, stats: torch.Tensor) -> None:
        """Sum the statistics and give every rank every layer (each from the rank that trained it)."""
        dist.all_reduce(stats)
        with torch.no_grad():
            for owner, stage in enumerate(self.stages):
                for i in stage:
                    for tensor in self.network.layers[i].state_dict().values():
                        dist.broadcast(tensor, src=owner)
            for tensor in self.network.readout.state_dict().values():
                dist.broadcast(tensor, src=self.world_size - 1)

    # ---- what only rank 0 does --------------------------------------------------------------

    def _epoch_metrics(self, *args) -> dict:
        metrics = [super()._epoch_metrics(*args) if self.rank == 0 else None]
        dist.broadcast_object_list(metrics, src=0, device=self.device if self.device.type == "cuda" else None)
        return metrics[0]



class _Sender:
    """Asynchronous sends to one rank; the previous mini-batch's sends finish before the next starts."""

    def __init__(self, dst: int, device: torch.device, header_group=None) -> None:
        self.dst, self.device, self.header_group = dst, device, header_group
        self.header_device = torch.device("cpu") if header_group is not None else device
        self.pending: list = []
        self.alive: list[torch.Tensor] = []  # tensors in flight must outlive their sends

    def send(self, packet: StagePacket) -> None:
        z = packet.z.contiguous()
        features = packet.features
        feature_width = -1 if features is None else features.shape[1]
        feature_dtype = 0 if features is None else _DTYPES.index(features.dtype)
        header = torch.tensor([_BATCH, packet.step, packet.n_pos, packet.n_train, packet.rows, z.shape[0], z.shape[1],
                               _DTYPES.index(z.dtype), feature_width, feature_dtype], dtype=torch.int64,
                              device=self.header_device)
        tensors = [z]
        if features is not None:
            tensors.append(packet.y.contiguous())
        if feature_width > 0:
            tensors.append(features.contiguous())
        self.wait()
        self.pending = [dist.isend(header, self.dst, group=self.header_group)]
        self.pending += [dist.isend(t, self.dst) for t in tensors]
        self.alive = [header, *tensors]

    def send_end(self, kind: int) -> None:
        self.wait()
        header = torch.zeros(_HEADER, dtype=torch.int64, device=self.header_device)
        header[0] = kind
        dist.send(header, self.dst, group=self.header_group)

    def wait(self) -> None:
        for work in self.pending:
            work.wait()
        self.pending, self.alive = [], []


def _receive(src: int, device: torch.device, header_group=None) -> tuple[StagePacket | None, int]:
    header = torch.empty(_HEADER, dtype=torch.int64, device="cpu" if header_group is not None else device)
    dist.recv(header, src, group=header_group)
    kind, step, n_pos, n_train, rows, z_rows, z_width, z_dtype, feature_width, feature_dtype = header.tolist()
    if kind != _BATCH:
        return None, kind
    z = torch.empty(z_rows, z_width, dtype=_DTYPES[z_dtype], device=device)
    dist.recv(z, src)
    y = features = None
    if feature_width >= 0:
        y = torch.empty(rows, dtype=torch.int64, device=device)
        dist.recv(y, src)
        features = torch.empty(rows, feature_width, dtype=_DTYPES[feature_dtype], device=device)
        if feature_width > 0:
            dist.recv(features, src)
    return StagePacket(step, z, y, n_pos, n_train, rows, features), kind


# ---- choosing a trainer --------------------------------------------------------------------


def pipeline_trainer(network: FFNetwork, config: TrainConfig, stages: int | Sequence[range] | None = None,
                     callbacks: list[Callback] | tuple = (), should_stop: Callable[[], bool] | None = None,
                     threads_per_stage: int | None = None) -> Trainer:
    """The distributed pipeline under torchrun (one stage per rank), else the threaded one.

    stages: None means one per rank under torchrun and 2 (capped at the layer count) otherwise.
    Under torchrun the process group is joined here and the config's device becomes this rank's.
    """
    if launch_env() is not None:
        device = init_from_env(config.device)
        config = TrainConfig.from_dict({**config.to_dict(), "device": str(device)})
        if isinstance(stages, int) and stages != dist.get_world_size():
            raise ValueError(f"under torchrun the stages are the ranks: {dist.get_world_size()}, got stages={stages}")
        if threads_per_stage is not None:
            torch.set_num_threads(threads_per_stage)
        explicit = None if stages is None or isinstance(stages, int) else stages
        return DistributedPipelineTrainer(network, config, explicit, callbacks, should_stop)
    if stages is None:
        stages = min(2, len(network.layers))
    return PipelineTrainer(network, config, stages, callbacks, should_stop, threads_per_stage)


# ---- a local launcher for tests and benchmarks -----------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_local_processes(network_config: NetworkConfig, train_config: TrainConfig, x_train: torch.Tensor,
                          y_train: torch.Tensor, nprocs: int = 2, stages: Sequence[range] | None = None,
                          x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                          threads_per_rank: int = 1, init_seed: int | None = None,
                          ) -> tuple[dict[str, torch.Tensor], TrainResult, list[dict[str, float]]]:
    """Train with ``nprocs`` gloo processes on 127.0.0.1 (CPU), as torchrun would run them.

    Returns rank 0's state dict, its TrainResult and each rank's timings (stage and wait seconds
    of the last epoch). The network is ``build_network(network_config, init_seed or train seed)``.
    """
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory(prefix="ff-pipeline-") as tmp:
        args = (nprocs, free_port(), network_config.to_dict(), train_config.to_dict(), x_train, y_train, x_test, y_test,
                [(r.start, r.stop) for r in stages] if stages is not None else None, threads_per_rank,
                train_config.seed if init_seed is None else init_seed, tmp)
        torch.multiprocessing.spawn(_local_rank, args=args, nprocs=nprocs, join=True)
        state = load_file(str(Path(tmp) / "state.safetensors"))
        report = json.loads((Path(tmp) / "result.json").read_text())
        timings = [json.loads((Path(tmp) / f"timing-{r}.json").read_text()) for r in range(nprocs)]
    result = TrainResult(report["state"], report["history"], report["train_seconds"], report["samples_seen"],
                         report["device"])
    return state, result, timings


def _local_rank(rank, world_size, port, net_cfg, train_cfg, x_train, y_train, x_test, y_test, stages, threads,
                init_seed, out_dir) -> None:
    from safetensors.torch import save_file

    from .trainer import build_network

    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                            timeout=dt.timedelta(minutes=10))
    try:
        config = TrainConfig.from_dict({**train_cfg, "device": "cpu"})
        network = build_network(NetworkConfig.from_dict(net_cfg), seed=init_seed)
        ranges = None if stages is None else [range(a, b) for a, b in stages]
        trainer = DistributedPipelineTrainer(network, config, ranges)
        result = trainer.fit(x_train, y_train, x_test, y_test)
        out = Path(out_dir)
        (out / f"timing-{rank}.json").write_text(json.dumps(
            {"rank": rank, "layers": [trainer.layers.start, trainer.layers.stop],
             "stage_seconds": trainer.stage_seconds, "wait_seconds": trainer.wait_seconds}))
        if rank == 0:
            save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(out / "state.safetensors"))
            (out / "result.json").write_text(json.dumps(
                {"state": result.state, "history": result.history, "train_seconds": result.train_seconds,
                 "samples_seen": result.samples_seen, "device": result.device}, default=str))
    except BaseException:
        dist.destroy_process_group()  # no barrier: the other ranks may never reach it
        raise
    shutdown()

