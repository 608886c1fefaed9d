"""Training recipes: the defaults of a run, in one place, chosen for the data.

A recipe fills every ``TrainOptions`` field the user left unset (None); what the user sets always
wins. ``auto`` (the default everywhere: CLI, MCP, Python) derives the settings from the training
set's size and kind; the named recipes reproduce recorded results (each names its result file).

The ``auto`` rule, chosen on validation splits held out of the training rows (the search and its
numbers: bench/results/recipe-auto-*.json, docs/ARCHITECTURE.md "Defaults and recipes"):

- batch size N / 50 clamped to [16, 100], so even a few hundred rows give ~50 steps an epoch
  (1,347 digits rows at batch 100 gave 14 steps, and 5 epochs scored below chance);
- epochs: enough for ~10,000 steps in all, clamped to [20, 1000] (digits: 193 epochs, ~20 s on 2 CPU
  cores; MNIST: 20 epochs);
- two hidden layers of 500 below 10,000 rows, Hinton's 3 x 1000 from there; Adam, lr 1e-3;
- rows that are not images are standardised per feature (the "ff" variant's ``standardize`` option:
  FF normalises each row by its RMS, so one large feature would drown the label slots; raw wine
  scored 24 % by goodness, standardised 97 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

# The value of each TrainOptions field no recipe sets (the engine's own defaults)
BASE: dict[str, Any] = {
    "hidden": (1000, 1000, 1000),
    "epochs": 10,
    "batch_size": 100,
    "optimizer": "adam",
    "momentum": 0.9,
    "weight_decay": 0.0,
    "peer_norm": 0.0,
    "activation": "relu",
    "readout_weight_decay": 0.0,
    "readout_cooldown": True,
    "cooldown": True,
}
RECIPE_FIELDS = tuple(BASE) + ("lr", "readout_lr")
# a recipe's "preferred_method" is used when the model has that prediction method (else its own default)
DENSE_ONLY = ("peer_norm", "activation")  # options of the "ff" variant: applied only to it

GRAPH_LR = 1e-2  # chosen on Cora's validation nodes (docs/VARIANTS.md, bench/results/gnn-*)
TARGET_STEPS = 10_000  # mini-batch steps the auto recipe aims for over the whole run
STEPS_PER_EPOCH = 50  # at least this many mini-batches an epoch (until batch 16)


@dataclass(frozen=True)
class DataFacts:
    """What a recipe may look at: training rows, features, classes, whether rows are images."""

    rows: int
    features: int
    classes: int
    image: bool
    graph: bool = False  # node classification: rows = the graph's training nodes


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    settings: Callable[[DataFacts], dict[str, Any]]
    result: str | None = None  # the recorded result it reproduces (bench/results)


def auto_settings(data: DataFacts) -> dict[str, Any]:
    if data.graph:  # forwardgnn's node classification: 128 units, Adam 1e-3 (weight decay 5e-4), up to 1000
        # epochs per layer ended by early stopping on validation, constant learning rate, full batch
        return {"hidden": (128, 128), "epochs": 1000, "optimizer": "adam", "lr": GRAPH_LR, "weight_decay": 5e-4,
                "cooldown": False}
    batch = min(100, max(16, data.rows // STEPS_PER_EPOCH))
    steps = max(1, math.ceil(data.rows / batch))
    epochs = min(1000, max(20, math.ceil(TARGET_STEPS / steps)))
    hidden = (500, 500) if data.rows < 10_000 else (1000, 1000, 1000)
    return {"hidden": hidden, "epochs": epochs, "batch_size": batch, "optimizer": "adam", "lr": 1e-3}


def loewex_settings(data: DataFacts) -> dict[str, Any]:
    # loeweX/Forward-Forward config.yaml; 100 epochs gave 1.50 % (goodness) on MNIST here
    return {"hidden": (1000, 1000, 1000), "epochs": 100, "batch_size": 100, "optimizer": "sgd", "lr": 1e-3,
            "momentum": 0.9, "weight_decay": 3e-4, "peer_norm": 0.03, "activation": "relu_full_grad",
            "readout_weight_decay": 3e-3, "preferred_method": "readout",
            "readout_cooldown": False}  # as recorded (loeweX itself also cools its classifier down)


def hinton_4x2000_settings(data: DataFacts) -> dict[str, Any]:
    return {**loewex_settings(data), "hidden": (2000, 2000, 2000, 2000), "epochs": 60, "preferred_method": "goodness"}


RECIPES: dict[str, Recipe] = {
    "auto": Recipe("auto", "batch and epochs from the training set's size (~50 steps an epoch, ~10,000 in "
                           "all), 2x500 below 10,000 rows else 3x1000, Adam 1e-3", auto_settings),
    "loewex": Recipe("loewex", "loeweX/Forward-Forward: 3x1000, 100 epochs, SGD 1e-3 momentum 0.9 weight decay "
                               "3e-4, peer norm 0.03, ReLU with full gradient, readout weight decay 3e-3",
                     loewex_settings, "accuracy-mnist-3x1000-e100-loewex-recipe.json"),
    "hinton-4x2000": Recipe("hinton-4x2000", "Hinton's paper network 4x2000 with loeweX's recipe, 60 epochs",
                            hinton_4x2000_settings, "accuracy-mnist-4x2000-e60-loewex-recipe.json"),
    "base": Recipe("base", "the engine's plain defaults: 3x1000, 10 epochs, batch 100, Adam 1e-3",
                   lambda data: {}),
}


def recipe_names() -> list[str]:
    return list(RECIPES)


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"recipe must be one of {recipe_names()}, got {name!r}") from None


def recipe_settings(name: str, data: DataFacts, variant: str = "ff") -> dict[str, Any]:
    """Every RECIPE_FIELDS value the recipe gives for ``data`` (BASE where it is silent)."""
    settings = {**BASE, **get_recipe(name).settings(data)}
    if variant != "ff":
        for key in DENSE_ONLY:
            settings.pop(key, None)
    return settings
