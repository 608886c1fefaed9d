"""The backprop baseline: the same layers, normalisation, data path and budget, trained end to end.

Every FF number in ``bench/`` is reported beside this one. The network is the FF network's
stack (normalise -> linear -> activation per layer) plus a linear softmax head, with no
label embedding; one cross-entropy loss is back-propagated through all layers.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ff_mcp import seeds

from .device import autocast, resolve_device
from .layers import FFLinear
from .network import NetworkConfig, standardizer_stats
from .norms import normalize
from .trainer import TrainConfig, TrainResult


class BackpropNet(nn.Module):
    """x: (B, D) -> logits (B, K) through the FF architecture's hidden stack."""

    def __init__(self, config: NetworkConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        widths = [config.in_features, *config.hidden]
        self.layers = nn.ModuleList(
            FFLinear(widths[i], widths[i + 1], activation=config.activation, norm=config.norm,
                     bias=config.bias, generator=generator)
            for i in range(len(config.hidden))
        )
        self.head = nn.Linear(config.hidden[-1], config.num_classes)
        self.norm = config.norm
        self.standardize = config.standardize  # the FF network's input standardisation, the same way
        if config.standardize:
            self.register_buffer("input_mean", torch.zeros(config.in_features))
            self.register_buffer("input_std", torch.ones(config.in_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.standardize:
            x = (x - self.input_mean) / self.input_std
        for layer in self.layers:
            x = layer(x)
        return self.head(normalize(x, self.norm))


def train_backprop(config: NetworkConfig, train: TrainConfig, x_train: torch.Tensor, y_train: torch.Tensor,
                   x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                   on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> tuple[BackpropNet, TrainResult]:
    """Train the baseline with the FF run's optimizer, batch size, epochs, cooldown and seed."""
    device = resolve_device(train.device)
    generator = seeds.generator(train.seed, "init")
    net = BackpropNet(config, generator).to(device)
    opt = train.optimizer.build(list(net.parameters()))
    shuffle_gen = seeds.generator(train.seed, "shuffle")
    x_train, y_train = x_train.to(device, torch.float32), y_train.to(device, torch.long)
    if net.standardize:  # the statistics FFNetwork.fit_standardizer takes
        mean, std = standardizer_stats(x_train)
        net.input_mean.copy_(mean)
        net.input_std.copy_(std)
    n, bs = x_train.shape[0], train.batch_size
    history, seconds = [], 0.0
    for epoch in range(train.epochs):
        factor = 2.0 * (1 + train.epochs - epoch) / train.epochs if train.cooldown and epoch > train.epochs // 2 else 1.0
        for group in opt.param_groups:
            group["lr"] = train.optimizer.lr * factor
        started = time.perf_counter()
        order = torch.randperm(n, generator=shuffle_gen).to(device)
        total = torch.zeros((), device=device)
        net.train()
        for step in range(math.ceil(n / bs)):
            index = order[step * bs : (step + 1) * bs]
            with autocast(device, train.amp):
                loss = F.cross_entropy(net(x_train[index]), y_train[index])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            total += loss.detach()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds += time.perf_counter() - started
        metrics: dict[str, Any] = {"epoch": epoch + 1, "epochs": train.epochs,
                                   "loss": total.item() / math.ceil(n / bs), "train_seconds": round(seconds, 4)}
        if x_test is not None and (epoch + 1 == train.epochs or (epoch + 1) % train.eval_every == 0):
            metrics["test_accuracy"] = backprop_accuracy(net, x_test, y_test)
        history.append(metrics)
        if on_epoch_end is not None:
            on_epoch_end(metrics)
    return net, TrainResult("done", history, seconds, n * train.epochs, str(device))


@torch.no_grad()
def backprop_accuracy(net: BackpropNet, x: torch.Tensor, y: torch.Tensor, chunk: int = 2000) -> float:
    net.eval()
    device = next(net.parameters()).device
    correct = 0
    for i in range(0, x.shape[0], chunk):
        pred = net(x[i : i + chunk].to(device, torch.float32)).argmax(dim=1)
        correct += (pred == y[i : i + chunk].to(device)).sum().item()
    return correct / max(x.shape[0], 1)
