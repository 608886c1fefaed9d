"""--step selects the training step; --native-step and --cuda-graph are its aliases; conflicts are refused."""

from __future__ import annotations

import argparse

import pytest

from ff_mcp.cli import add_train_arguments, options_from_args


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return parser.parse_args(["--dataset", "digits", *argv])


@pytest.mark.parametrize("argv, step", [
    ((), "auto"),
    (("--step", "autograd"), "autograd"),
    (("--native-step",), "native"),
    (("--cuda-graph",), "cuda_graph"),
    (("--step", "native", "--native-step"), "native"),
])
def test_the_step_and_its_aliases(argv, step):
    assert options_from_args(parse(*argv)).train_config().step == step


def test_a_step_that_disagrees_with_an_alias_is_refused():
    with pytest.raises(ValueError, match="--step fused disagrees with --native-step/--cuda-graph"):
        options_from_args(parse("--step", "fused", "--native-step"))


def test_options_are_collected_and_a_repeated_key_is_refused():
    assert options_from_args(parse("--opt", "peer_norm=0.03", "--opt", "norm=l2")).options == {
        "peer_norm": "0.03", "norm": "l2"}
    with pytest.raises(ValueError, match="--opt peer_norm is given twice"):
        options_from_args(parse("--opt", "peer_norm=0.03", "--opt", "peer_norm=0.1"))
    with pytest.raises(SystemExit):
        parse("--opt", "novalue")


def test_an_explicit_fused_step_names_the_layer_it_cannot_fuse():
    from ff_mcp.engine import NetworkConfig, Trainer, TrainConfig, build_network

    net = build_network(NetworkConfig(in_features=8, num_classes=3, hidden=(4, 4), activation="gelu"))
    with pytest.raises(ValueError, match=r"step 'fused' needs layer 0 with ReLU or relu_full_grad.*activation 'gelu'"):
        Trainer(net, TrainConfig(device="cpu", step="fused"))
