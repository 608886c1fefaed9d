"""The ff-mcp Forward-Forward engine: pure PyTorch, no MCP, no file formats but checkpoints.

Seams for new FF variants (see docs/ARCHITECTURE.md): ``register_goodness``, ``register_loss``,
``register_contrast`` and new layer classes used by an FFNetwork.
"""

from .backprop import BackpropNet, backprop_accuracy, train_backprop
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .device import resolve_device
from .goodness import Goodness, get_goodness, goodness_names, register_goodness
from .labels import LabelEmbedding
from .layers import FFLinear, OptimizerConfig
from .losses import get_loss, loss_names, register_loss
from .negatives import BatchContext, Contrast, make_contrast, negative_names, register_contrast, wrong_labels
from .network import FFNetwork, NetworkConfig
from .pipeline import PipelineTrainer
from .trainer import CallbackBase, Trainer, TrainConfig, TrainResult, accuracy, build_network, predict_in_chunks

__all__ = [
    "BackpropNet", "BatchContext", "CallbackBase", "CheckpointError", "Contrast", "FFLinear", "FFNetwork",
    "Goodness", "LabelEmbedding", "NetworkConfig", "OptimizerConfig", "PipelineTrainer", "TrainConfig", "TrainResult", "Trainer",
    "accuracy", "backprop_accuracy", "build_network", "get_goodness", "get_loss", "goodness_names",
    "load_checkpoint", "loss_names", "make_contrast", "negative_names", "predict_in_chunks", "register_contrast",
    "register_goodness", "register_loss", "resolve_device", "save_checkpoint", "train_backprop", "wrong_labels",
]
