"""Data checks before training (ff_mcp/data/checks.py) and the label mapping round trip over MCP."""

from __future__ import annotations

import pytest
import torch
from mcp import Client

from ff_mcp.data.checks import checked_arrays, to_class_indices, to_user_labels
from ff_mcp.server import Limits, ServerConfig, build_server

pytestmark = pytest.mark.anyio


def rows(n: int, features: int = 4, seed: int = 0) -> list[list[float]]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, features, generator=generator).tolist()


@pytest.mark.parametrize(("y", "message"), [
    ([3] * 10, "y holds one class only (3): Forward-Forward learns by contrasting classes"),
    ([0, 1, 1, 1, 1, 2], "y has fewer than 2 rows of classes 0, 2 (6 rows, 3 classes): give at least two rows"),
    ([0, 1], "y has fewer than 2 rows of classes 0, 1"),
])
def test_data_that_cannot_train_is_refused_saying_what_to_do(y, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        checked_arrays(rows(len(y)), y)


def test_a_class_left_out_of_the_training_split_is_refused():
    y = [0] * 20 + [1] * 2  # the seeded split may hold both rows of class 1 out
    for seed in range(50):
        try:
            checked_arrays(rows(22), y, seed=seed)
        except ValueError as exc:
            assert "class 1 got no row in the training split" in str(exc)
            return
    pytest.fail("no seed held out both rows of the small class")


def test_labels_that_are_not_0_to_k_are_mapped_and_constant_features_warned():
    x = rows(40)
    for row in x:
        row[2] = 5.0
    data = checked_arrays(x, [3, 7] * 20)
    assert data.label_values == (3, 7) and data.num_classes == 2
    assert set(data.y_train.tolist()) == {0, 1}
    assert data.warnings == ("x has 1 constant feature (column 2): they carry no information; drop them if you can",)
    assert to_user_labels([1, 0, 1], data.label_values) == [7, 3, 7]
    assert to_class_indices([7, 3], data.label_values, "labels") == [1, 0]
    with pytest.raises(ValueError, match=r"labels\[1\] is 5; this model's labels are 3, 7"):
        to_class_indices([3, 5], data.label_values, "labels")
    assert checked_arrays(rows(10), [0, 1] * 5).label_values is None  # 0..K-1 stays as it is


async def test_labels_3_and_7_in_come_back_as_3_and_7(tmp_path):
    noise = torch.rand(40, 4, generator=torch.Generator().manual_seed(0)) * 0.4 - 0.2
    x = [[(1.0 if j % 2 == i % 2 else 0.0) + float(noise[i, j]) for j in range(4)] for i in range(40)]
    y = [7 if i % 2 else 3 for i in range(40)]  # class "3" is high in features 0 and 2, class "7" in 1 and 3
    server = build_server(ServerConfig(home=tmp_path, limits=Limits(max_epochs=50)))
    async with Client(server) as client:
        trained = (await client.call_tool("ff_train", {"name": "m", "x": x, "y": y, "hidden": [8, 8], "epochs": 10,
                                                       "batch_size": 8, "lr": 0.01, "seed": 1,
                                                       "wait_seconds": 60})).structured_content
        assert trained["state"] == "done" and trained["metrics"]["test_accuracy"] >= 0.75
        pred = (await client.call_tool("ff_predict", {"model": "m", "x": x[:4]})).structured_content
        assert pred["labels"] == y[:4] and pred["label_values"] == [3, 7]
        good = (await client.call_tool("ff_goodness", {"model": "m", "x": x[:2], "labels": [3, 7]})).structured_content
        assert len(good["layers"][0]["goodness"]) == 2
        bad = await client.call_tool("ff_goodness", {"model": "m", "x": x[:1], "labels": [4]})
        assert bad.is_error and "labels[0] is 4; this model's labels are 3, 7" in bad.content[0].text
        one = await client.call_tool("ff_train", {"name": "one", "x": x[:10], "y": [5] * 10})
        assert one.is_error and "y holds one class only (5)" in one.content[0].text
