"""Recipes fill what the user leaves unset, from the data's size; what the user sets wins."""

from __future__ import annotations

import pytest

from ff_mcp.data import load_dataset
from ff_mcp.recipes import DataFacts, auto_settings, recipe_names, recipe_settings
from ff_mcp.training import TrainOptions


@pytest.mark.parametrize("facts, expected", [
    # digits: 1,347 rows -> batch 26, 52 steps an epoch, 193 epochs for ~10,000 steps
    (DataFacts(1347, 64, 10, True), {"batch_size": 26, "epochs": 193, "hidden": (500, 500)}),
    # MNIST: batch 100, 600 steps an epoch, at least 20 epochs, Hinton's 3x1000
    (DataFacts(60000, 784, 10, True), {"batch_size": 100, "epochs": 20, "hidden": (1000, 1000, 1000)}),
    # a hundred rows: batch 16 (7 steps an epoch), epochs capped at 1000
    (DataFacts(100, 12, 3, False), {"batch_size": 16, "epochs": 1000, "hidden": (500, 500)}),
    # 10,000 rows: 3x1000 from here
    (DataFacts(10000, 20, 2, False), {"batch_size": 100, "epochs": 100, "hidden": (1000, 1000, 1000)}),
])
def test_auto_sizes_the_run_from_the_data(facts, expected):
    settings = auto_settings(facts)
    assert {k: settings[k] for k in expected} == expected
    assert (settings["optimizer"], settings["lr"]) == ("adam", 1e-3)


def test_what_the_user_sets_wins_and_the_rest_comes_from_the_recipe():
    digits = load_dataset("digits")
    options = TrainOptions(epochs=3, hidden=(32,)).resolved(digits)
    assert (options.epochs, options.hidden, options.batch_size, options.lr) == (3, (32,), 26, 1e-3)
    # another optimizer than the recipe's keeps its own default learning rate, not Adam's
    sgd = TrainOptions(optimizer="sgd").resolved(digits)
    assert (sgd.optimizer, sgd.lr, sgd.train_config().optimizer.lr) == ("sgd", None, 0.05)
    assert TrainOptions().resolved(digits).resolved(digits) == TrainOptions().resolved(digits)  # idempotent
    # --optimizer adamw keeps Adam's default learning rate; --no-cooldown beats the recipe's cooldown
    from ff_mcp.cli import build_parser
    from ff_mcp.train_args import options_from_args

    args = build_parser().parse_args(["train", "--dataset", "digits", "--optimizer", "adamw", "--no-cooldown"])
    config = options_from_args(args).resolved(digits).train_config()
    assert (config.optimizer.name, config.optimizer.lr, config.cooldown) == ("adamw", 1e-3, False)
    assert options_from_args(build_parser().parse_args(["train", "--dataset", "digits"])).resolved(digits).cooldown


def test_named_recipes_reproduce_their_recorded_runs():
    mnist = DataFacts(60000, 784, 10, True)
    loewex = recipe_settings("loewex", mnist)
    assert loewex["hidden"] == (1000, 1000, 1000) and loewex["epochs"] == 100 and loewex["optimizer"] == "sgd"
    assert (loewex["peer_norm"], loewex["activation"], loewex["readout_weight_decay"]) == (0.03, "relu_full_grad", 3e-3)
    assert recipe_settings("hinton-4x2000", mnist)["hidden"] == (2000, 2000, 2000, 2000)
    assert recipe_settings("base", mnist)["hidden"] == (1000, 1000, 1000)
    assert "peer_norm" not in recipe_settings("loewex", mnist, variant="other")  # dense options stay with "ff"


def test_an_unknown_recipe_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"recipe must be one of \['auto', 'loewex', 'hinton-4x2000', 'base'\], "
                                         r"got 'fast'"):
        TrainOptions(recipe="fast").resolved(load_dataset("digits"))
    assert recipe_names()[0] == "auto"


def test_rows_that_are_not_images_are_standardised_and_images_are_not():
    import torch

    from ff_mcp.data import from_arrays

    rows = from_arrays(torch.rand(60, 5) * torch.tensor([1.0, 10.0, 100.0, 1000.0, 1.0]), torch.arange(60) % 3)
    assert TrainOptions().model_config(rows).standardize is True
    assert TrainOptions().model_config(load_dataset("digits")).standardize is False
    assert TrainOptions(options={"standardize": False}).model_config(rows).standardize is False


def test_label_mode_none_given_as_text_is_the_mode_not_a_missing_value():
    data = load_dataset("digits")
    assert TrainOptions(label_mode="none", negatives="noise").model_config(data).label_mode == "none"
    assert TrainOptions(options={"label_mode": "none"}, negatives="noise").model_config(data).label_mode == "none"
    with pytest.raises(ValueError, match="need a label embedding; label_mode is 'none'"):
        from ff_mcp.training import train_model

        train_model(data, TrainOptions(label_mode="none", hidden=(8,), epochs=1, device="cpu"))


def test_a_recipes_prediction_method_is_a_preference_the_model_may_not_have():
    from ff_mcp.data import from_arrays
    import torch

    from ff_mcp.training import train_model

    rows = from_arrays(torch.rand(80, 6), torch.arange(80) % 2)
    # loewex prefers the readout; without one the run predicts by goodness instead of failing
    trained = train_model(rows, TrainOptions(recipe="loewex", readout=False, hidden=(8,), epochs=1, device="cpu"))
    assert trained.result.final["predict_method"] == "goodness"
    trained = train_model(rows, TrainOptions(recipe="loewex", hidden=(8,), epochs=1, device="cpu"))
    assert trained.result.final["predict_method"] == "readout"
    assert trained.train_config.readout_cooldown is False  # as the recorded loewex runs trained


def test_standardising_is_fitted_once_and_floors_nearly_constant_features():
    import torch

    from ff_mcp.engine import NetworkConfig, build_network
    from ff_mcp.engine.network import standardizer_stats

    x = torch.zeros(100, 3)
    x[:, 0] = torch.arange(100.0)  # std ~29
    x[0, 1] = 1.0  # nearly constant: std 0.1, floored at a tenth of the mean std of the varying features
    mean, std = standardizer_stats(x)
    assert std[2] == 1.0 and std[1] >= 0.1 * (std[0] + 0.1) / 2 - 1e-6
    net = build_network(NetworkConfig(in_features=3, num_classes=2, hidden=(4,), label_mode="concat", standardize=True))
    net.fit_standardizer(x)
    net.fit_standardizer(x * 100)  # a second fit keeps the first statistics
    assert torch.allclose(net.input_mean, mean) and bool(net.input_fitted)
