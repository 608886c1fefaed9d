"""Contrast strategies: how one mini-batch of data becomes positive and negative rows.

The seam for FF variants is ``Contrast.make_batch``: it receives raw data rows and labels and
returns the *embedded* positive and negative rows the first layer sees. The default
implementation embeds the true label for positives and asks ``negatives`` for negative rows
and their label codes; a variant that changes positives too (Self-Contrastive FF builds
``concat(x, x)`` positives) overrides ``make_batch`` instead.

All randomness comes from the ``torch.Generator`` passed in, never the global RNG.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .labels import LabelEmbedding

NEGATIVE_NAMES = ("wrong_label", "hard", "hybrid", "noise")


@dataclass
class BatchContext:
    """What a contrast strategy may use for one mini-batch.

    x: (B, D) raw data rows; y: (B,) int64 labels; index: (B,) row indices into the training
    set (for per-row state such as hard-negative probabilities).
    """

    x: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    generator: torch.Generator


class Contrast(ABC):
    """Base contrast strategy: true-label positives, subclass-defined negatives."""

    name = "base"
    needs_labels = True  # False for unsupervised negatives (hybrid images)

    def __init__(self, labels: LabelEmbedding, image_shape: tuple[int, ...] | None = None) -> None:
        self.labels = labels
        self.image_shape = image_shape

    def prepare_epoch(self, predict_probs: Callable[[torch.Tensor], torch.Tensor], x_train: torch.Tensor,
                      epoch: int) -> None:
        """Called before every epoch (``epoch`` from 0) with a function giving (N, K) label
        probabilities of the training rows (computed only if called)."""

    @abstractmethod
    def negatives(self, batch: BatchContext) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (x_neg: (B', D) raw rows, code_neg: (B', K) label codes or None = true labels)."""

    def negative_labels(self, batch: BatchContext) -> torch.Tensor | None:
        """(B,) int64: the label each negative carries, when every negative is its positive's own
        data row with another (one-hot) label, so the first layer can share W.x between them;
        else None. Draws the same randomness as ``negatives``: both give the same negatives for
        the same generator state."""
        return None

    def label_only(self) -> bool:
        """True when ``negative_labels`` describes this contrast's batches completely: the class
        that defines ``negatives`` also defines ``negative_labels``, and ``make_batch`` is the base one."""
        cls = type(self)
        labels_from = _defined_in(cls, "negative_labels")
        return (_defined_in(cls, "make_batch") is Contrast and labels_from is not Contrast
                and _defined_in(cls, "negatives") is labels_from)

    def make_batch(self, batch: BatchContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (x_pos, x_neg): embedded rows, (B, D') and (B', D')."""
        code_pos = self.labels.one_hot(batch.y, batch.x.dtype)
        x_neg, code_neg = self.negatives(batch)
        if code_neg is None:
            code_neg = code_pos if x_neg.shape[0] == code_pos.shape[0] else None
        return self.labels.embed(batch.x, code_pos), self.labels.embed(x_neg, code_neg)


def _defined_in(cls: type, name: str) -> type:
    """The class in cls's MRO whose body defines ``name``."""
    return next(k for k in cls.__mro__ if name in k.__dict__)


def wrong_labels(y: torch.Tensor, num_classes: int, generator: torch.Generator) -> torch.Tensor:
    """(B,) -> (B,): a label drawn uniformly from the K-1 labels that are not y.

    (y + U{1..K-1}) mod K never equals y (the fix mpezeshki/pytorch_forward_forward#8 asks for).
    """
    shift = torch.randint(1, num_classes, y.shape, generator=generator, device=y.device)
    return (y + shift) % num_classes


class WrongLabel(Contrast):
    """Negative = the same data with a uniformly drawn wrong label (loeweX)."""

    name = "wrong_label"

    def negative_labels(self, batch: BatchContext) -> torch.Tensor:
        return wrong_labels(batch.y, self.labels.num_classes, batch.generator)

    def negatives(self, batch: BatchContext) -> tuple[torch.Tensor, torch.Tensor | None]:
        return batch.x, self.labels.one_hot(self.negative_labels(batch), batch.x.dtype)


class HardLabel(Contrast):
    """Negative label sampled from the model's own predictions, true label masked (Hinton's Matlab).

    ``prepare_epoch`` stores (N, K) probabilities; before the first call the wrong label is uniform.
    """

    name = "hard"

    def __init__(self, labels: LabelEmbedding, image_shape: tuple[int, ...] | None = None) -> None:
        super().__init__(labels, image_shape)
        self.probs: torch.Tensor | None = None

    def prepare_epoch(self, predict_probs, x_train, epoch: int) -> None:
        if epoch > 0:  # before any training the model's guesses are noise: uniform wrong labels
            self.probs = predict_probs(x_train)

    def negative_labels(self, batch: BatchContext) -> torch.Tensor:
        if self.probs is None:
            y_neg = wrong_labels(batch.y, self.labels.num_classes, batch.generator)
        else:
            probs = self.probs[batch.index].clone()
            probs.scatter_(1, batch.y.unsqueeze(1), 0.0)  # Matlab: labin - 1000*targets
            # Rows whose mass sat entirely on the true label fall back to uniform wrong labels.
            probs = probs + 1e-6 * (1.0 - F.one_hot(batch.y, self.labels.num_classes).to(probs.dtype))
            y_neg = torch.multinomial(probs, 1, generator=batch.generator).squeeze(1)
        return y_neg

    def negatives(self, batch: BatchContext) -> tuple[torch.Tensor, torch.Tensor | None]:
        return batch.x, self.labels.one_hot(self.negative_labels(batch), batch.x.dtype)


def blurred_masks(rows: int, shape: tuple[int, int], generator: torch.Generator, device, blurs: int = 6) -> torch.Tensor:
    """(rows, H*W) masks: random bits blurred with [1/4, 1/2, 1/4] across rows and columns, then > 0.5.

    Hinton 2022 section 3.2; the hinton-problems reproduction blurs 6 times.
    """
    h, w = shape
    mask = torch.randint(0, 2, (rows, 1, h, w), generator=generator, device=device).float()
    kernel = torch.tensor([0.25, 0.5, 0.25], device=device)
    kh, kw = kernel.view(1, 1, 3, 1), kernel.view(1, 1, 1, 3)
    for _ in range(blurs):
        mask = F.conv2d(F.pad(mask, (0, 0, 1, 1), mode="replicate"), kh)
        mask = F.conv2d(F.pad(mask, (1, 1, 0, 0), mode="replicate"), kw)
    return (mask > 0.5).float().view(rows, h * w)


class Hybrid(Contrast):
    """Unsupervised negatives: hybrid images mask*a + (1-mask)*b of two different images."""

    name = "hybrid"
    needs_labels = False

    def negatives(self, batch: BatchContext) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.image_shape is None or len(self.image_shape) != 2:
            raise ValueError("negatives 'hybrid' needs image data with a 2-D image_shape; use 'noise' for other rows")
        rows = batch.x.shape[0]
        partner = torch.randperm(rows, generator=batch.generator, device=batch.x.device)
        mask = blurred_masks(rows, self.image_shape, batch.generator, batch.x.device).to(batch.x.dtype)
        return mask * batch.x + (1.0 - mask) * batch.x[partner], None


class Noise(Contrast):
    """Corrupted rows for non-image data: each feature, with probability 1/2, is taken from
    another row of the batch (marginals are kept, joint structure is broken)."""

    name = "noise"
    needs_labels = False

    def __init__(self, labels: LabelEmbedding, image_shape=None, corrupt_fraction: float = 0.5) -> None:
        super().__init__(labels, image_shape)
        self.corrupt_fraction = corrupt_fraction

    def negatives(self, batch: BatchContext) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = batch.x
        rows = x.shape[0]
        partner = torch.randperm(rows, generator=batch.generator, device=x.device)
        take = torch.rand(x.shape, generator=batch.generator, device=x.device) < self.corrupt_fraction
        return torch.where(take, x[partner], x), None


_REGISTRY: dict[str, type[Contrast]] = {
    "wrong_label": WrongLabel,
    "hard": HardLabel,
    "hybrid": Hybrid,
    "noise": Noise,
}


def register_contrast(name: str, cls: type[Contrast]) -> type[Contrast]:
    """Add a contrast strategy (the seam for SCFF-style negatives)."""
    _REGISTRY[name] = cls
    return cls


def make_contrast(name: str, labels: LabelEmbedding, image_shape: tuple[int, ...] | None = None) -> Contrast:
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"negatives must be one of {sorted(_REGISTRY)}, got {name!r}") from None
    return cls(labels, image_shape)


def negative_names() -> list[str]:
    return sorted(_REGISTRY)


def contrast_needs_labels(name: str) -> bool:
    """Whether the contrast registered as ``name`` builds its rows from labels (else label_mode is 'none')."""
    try:
        return bool(_REGISTRY[name].needs_labels)
    except KeyError:
        raise ValueError(f"negatives must be one of {sorted(_REGISTRY)}, got {name!r}") from None


__all__ = [
    "BatchContext",
    "Contrast",
    "HardLabel",
    "Hybrid",
    "Noise",
    "WrongLabel",
    "blurred_masks",
    "contrast_needs_labels",
    "make_contrast",
    "negative_names",
    "register_contrast",
    "wrong_labels",
]
