"""The ff-mcp Forward-Forward engine: pure PyTorch, no MCP, no file formats but checkpoints.

A new FF method is a model kind: an ``FFModel`` subclass registered with ``register_model_kind``
(engine/protocol.py); the trainer, checkpoints, CLI and MCP tools serve it without an edit. The
dense MLP's own seams: ``register_goodness``, ``register_loss``, ``register_contrast``.
See docs/ARCHITECTURE.md.
"""

from .backprop import BackpropNet, backprop_accuracy, train_backprop
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .device import resolve_device
from .goodness import Goodness, get_goodness, goodness_names, register_goodness
from .labels import LabelEmbedding
from .layers import FFLinear, OptimizerConfig
from .losses import get_loss, loss_names, register_loss
from .negatives import BatchContext, Contrast, make_contrast, negative_names, register_contrast, wrong_labels
from .network import DenseOptions, FFNetwork, NetworkConfig
from .pipeline import PipelineTrainer
from .scff import ScffNet  # noqa: F401  (registers the "scff" kind)
from .gnn import GnnNet  # noqa: F401  (registers the "gnn" kind)
from .recurrent import RecurrentNet  # noqa: F401  (registers the "recurrent" kind)
from .conv import ConvNet  # noqa: F401  (registers the "conv" kind)
from .distance import DistanceNet  # noqa: F401  (registers the "distance" kind)
from .protocol import (
    STEPS,
    Batch,
    DataSpec,
    FFModel,
    Graph,
    Session,
    check_images,
    get_model_kind,
    model_kind_names,
    parse_options,
    register_model_kind,
    variant_catalog,
)
from .trainer import (
    CallbackBase,
    ResumeState,
    Trainer,
    TrainConfig,
    TrainResult,
    accuracy,
    build_model,
    build_network,
    predict_in_chunks,
)

__all__ = [
    "STEPS", "Batch", "DataSpec", "DenseOptions", "FFModel", "Graph", "Session", "check_images", "build_model", "get_model_kind",
    "model_kind_names", "parse_options", "register_model_kind", "variant_catalog",
    "BackpropNet", "BatchContext", "CallbackBase", "CheckpointError", "Contrast", "FFLinear", "FFNetwork",
    "Goodness", "LabelEmbedding", "NetworkConfig", "OptimizerConfig", "PipelineTrainer", "ResumeState", "TrainConfig", "TrainResult", "Trainer",
    "accuracy", "backprop_accuracy", "build_network", "get_goodness", "get_loss", "goodness_names",
    "load_checkpoint", "loss_names", "make_contrast", "negative_names", "predict_in_chunks", "register_contrast",
    "register_goodness", "register_loss", "resolve_device", "save_checkpoint", "train_backprop", "wrong_labels",
]
