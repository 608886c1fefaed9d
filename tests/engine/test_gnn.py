"""The "gnn" model kind (forward-learned GNNs): graph operators, class nodes, losses, copies, Cora."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ff_mcp.data.graphs import graph_from_arrays, load_planetoid, locate_planetoid, split_masks, undirected_edges
from ff_mcp.engine import DataSpec, Graph, OptimizerConfig, Trainer, TrainConfig, build_model, load_checkpoint, save_checkpoint
from ff_mcp.engine.trainer import graph_accuracies
from ff_mcp.engine.gnn import (
    GnnNet,
    GnnOptions,
    gcn_operator,
    graph_ff_loss,
    mean_operator,
    propagate,
    sf_loss,
    with_class_nodes,
)

needs_planetoid = pytest.mark.skipif(locate_planetoid("cora") is None, reason="needs ../shared/data/planetoid")

# a 6-node graph: a triangle 0-1-2, a path 3-4, node 5 alone
EDGES = undirected_edges(torch.tensor([[0, 1, 2, 3], [1, 2, 0, 4]]), 6)


def six_node_graph(y=(0, 1, 0, 1, -1, -1), train=(True, True, False, True, False, False)) -> Graph:
    x = torch.arange(18, dtype=torch.float32).reshape(6, 3) / 10 + 0.1
    y = torch.tensor(y)
    train = torch.tensor(train)
    val = (y >= 0) & ~train
    return Graph(x, EDGES, y, train, val, None)


def model(method: str, layer: str = "gcn", hidden=(4, 4), graph: Graph | None = None, seed: int = 0) -> GnnNet:
    graph = graph or six_node_graph()
    cfg = GnnNet.build_config(DataSpec(graph.x.shape[1], 2, None, "graph", graph.num_nodes), hidden,
                              GnnOptions(method=method, layer=layer))
    return build_model(cfg, seed)


def test_undirected_edges_both_directions_without_loops_or_duplicates():
    edges = undirected_edges(torch.tensor([[0, 1, 1, 2, 2], [1, 0, 1, 3, 3]]), 4)
    assert edges.tolist() == [[0, 1, 2, 3], [1, 0, 3, 2]]


def test_class_nodes_link_each_labelled_node_both_ways_and_nothing_else():
    classes = torch.tensor([0, 1, 0, 1, -1, -1])  # training nodes 0..3; 4 and 5 unlinked
    edges = with_class_nodes(EDGES, 6, classes)
    added = {tuple(e) for e in edges[:, EDGES.shape[1]:].t().tolist()}
    assert added == {(0, 6), (6, 0), (2, 6), (6, 2), (1, 7), (7, 1), (3, 7), (7, 3)}
    assert edges[:, :EDGES.shape[1]].tolist() == EDGES.tolist()  # the graph's own edges unchanged


def test_gcn_operator_is_the_symmetric_normalised_adjacency_with_self_loops():
    n = 6
    a = torch.zeros(n, n)
    a[EDGES[1], EDGES[0]] = 1
    a = a + torch.eye(n)
    d = a.sum(1).pow(-0.5)
    expected = d[:, None] * a * d[None, :]
    assert torch.allclose(gcn_operator(EDGES, n).to_dense(), expected)
    # node 0 (degree 2 + loop = 3) and node 1 (3): 1/3; node 3 (1 + 1 = 2) and 4 (2): 1/2; node 5 alone: 1
    assert math.isclose(expected[0, 1].item(), 1 / 3, rel_tol=1e-6) and math.isclose(expected[3, 4].item(), 0.5, rel_tol=1e-6)
    assert expected[5, 5].item() == 1.0


def test_mean_operator_averages_in_neighbours():
    m = mean_operator(EDGES, 6).to_dense()
    assert m[0].tolist() == [0, 0.5, 0.5, 0, 0, 0] and m[3].tolist() == [0, 0, 0, 0, 1, 0] and m[5].abs().sum() == 0


def test_sf_loss_equals_hand_computed_cross_entropy():
    node = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    cls = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    # logits / 0.5: node 0 -> [2, 0], node 1 -> [4, 4]
    expected = (-math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(2)) / 2
    assert math.isclose(sf_loss(node, cls, y, 0.5).item(), expected, rel_tol=1e-6)


def test_graph_ff_loss_equals_hand_computed_bce():
    h_pos = torch.tensor([[1.0, 1.0], [2.0, 0.0]])  # sum of squares 2, 4 -> logits 0, 2 (theta 2)
    h_neg = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[2.0, 0.0], [1.0, 1.0]]])  # logits -1, -2 | 2, 0
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731  softplus: BCE(l, 1) = sp(-l), BCE(l, 0) = sp(l)
    pos = (sp(-0.0) + sp(-2.0)) / 2
    neg = ((sp(-1.0) + sp(-2.0)) / 2 + (sp(2.0) + sp(0.0)) / 2) / 2
    assert math.isclose(graph_ff_loss(h_pos, h_neg, 2.0).item(), pos + neg, rel_tol=1e-6)


def test_copies_never_exchange_messages():
    """Changing one copy of the graph (a negative) leaves every other copy's output as it was."""
    op = gcn_operator(EDGES, 6)
    h = torch.randn(3, 6, 5, generator=torch.Generator().manual_seed(1))
    before = propagate(op, h)
    changed = h.clone()
    changed[2] += 10.0
    after = propagate(op, changed)
    assert torch.equal(before[:2], after[:2]) and not torch.allclose(before[2], after[2])
    assert torch.allclose(before[1], op @ h[1], atol=1e-6)  # each copy: the graph's operator on itself


@pytest.mark.parametrize("layer", ["gcn", "sage"])
def test_label_appending_first_layer_equals_the_concatenated_rows(layer):
    """FF-LA's shared-x first layer gives the numbers of conv(l2norm([x, label block]))."""
    graph = six_node_graph()
    net = model("ff", layer)
    op = gcn_operator(EDGES, 6) if layer == "gcn" else mean_operator(EDGES, 6)
    labels = torch.tensor([[0, 1, -1, 1, -1, 0], [1, 1, 0, -1, -1, -1]])
    fast = net.layer_output(0, (graph.x, labels), op)
    rows = net.label_features_from(graph.x, labels)
    slow = F.relu(net.layers[0](rows / (rows.norm(dim=-1, keepdim=True) + 1e-8), op))
    assert torch.allclose(fast, slow, atol=1e-5)
    assert torch.allclose(rows[1, 5, 3:], torch.full((2,), 0.5))  # unlabelled: uniform 1/C


def cora_run(method: str, epochs: int, lr: float = 1e-2, seed: int = 0, layer: str = "gcn"):
    data = load_planetoid("cora")
    cfg = GnnNet.build_config(DataSpec(data.in_features, data.num_classes, None, "graph", data.graph.num_nodes),
                              (64, 64), GnnOptions(method=method, layer=layer))
    net = build_model(cfg, seed)
    train = TrainConfig(epochs=epochs, optimizer=OptimizerConfig("adam", lr, weight_decay=5e-4), cooldown=False,
                        seed=seed, eval_every=epochs)
    result = Trainer(net, train).fit(data.graph, None)
    return net, result, data


@needs_planetoid
def test_planetoid_split_and_citeseer_isolated_nodes():
    cora = load_planetoid("cora")
    g = cora.graph
    assert (g.num_nodes, g.x.shape[1], cora.num_classes, g.edge_index.shape[1]) == (2708, 1433, 7, 10556)
    assert [int(m.sum()) for m in (g.train_mask, g.val_mask, g.test_mask)] == [140, 500, 1000]
    assert g.y[g.train_mask].bincount().tolist() == [20] * 7
    assert torch.allclose(g.x.sum(1), torch.ones(2708))  # row-normalised
    citeseer = load_planetoid("citeseer").graph
    assert citeseer.num_nodes == 3327 and int((citeseer.x.sum(1) == 0).sum()) == 15
    isolated = citeseer.x.sum(1) == 0
    assert bool((citeseer.y[isolated] == -1).all()) and not bool((citeseer.test_mask & isolated).any())
    assert int(citeseer.test_mask.sum()) == 1000 and int(citeseer.train_mask.sum()) == 120


@needs_planetoid
def test_single_forward_on_cora_above_a_floor_and_deterministic():
    net, result, data = cora_run("sf", 40)
    final = result.final
    assert final["val_accuracy"] >= 0.72 and final["test_accuracy"] >= 0.72, final
    again, _, _ = cora_run("sf", 40)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    # per-layer phases: two layers, each a phase of its own
    assert {h["layers"][0]["layer"] for h in result.history} == {0, 1}


@needs_planetoid
def test_backprop_gcn_on_cora_above_a_floor():
    _, result, _ = cora_run("bp", 60)
    assert result.final["test_accuracy"] >= 0.75, result.final


@needs_planetoid
def test_graph_ff_on_cora_separates_positive_from_negative_nodes():
    """Graph FF learns slowly on Cora's 140 labels (bench/results/gnn-accuracy-*: hundreds of epochs a
    layer); in 60 full-batch steps its first layer's loss falls well below where it starts."""
    _, result, _ = cora_run("ff", 60)
    first = [h["layers"][0] for h in result.history if h["layers"][0]["layer"] == 0]
    assert first[-1]["loss"] < first[0]["loss"] - 0.5, (first[0], first[-1])


def test_checkpoint_round_trip_predicts_alike_and_keeps_the_training_labels(tmp_path):
    graph = six_node_graph()
    net = model("sf", graph=graph)
    train = TrainConfig(epochs=4, optimizer=OptimizerConfig("adam", 1e-2), cooldown=False)
    Trainer(net, train).fit(graph, None)
    path = save_checkpoint(tmp_path / "g.safetensors", net, train.to_dict(), {}, {})
    loaded = load_checkpoint(path).model
    assert loaded.kind == "gnn" and torch.allclose(loaded.predict_scores(graph), net.predict_scores(graph))
    # the same graph without labels: the stored training labels anchor the class nodes
    bare = Graph(graph.x, graph.edge_index, torch.full((6,), -1), torch.zeros(6, dtype=torch.bool))
    assert loaded.anchor_labels.tolist() == [0, 1, -1, 1, -1, -1]
    assert torch.allclose(loaded.predict_scores(bare), net.predict_scores(graph))


@pytest.mark.parametrize("method", ["sf", "ff", "ff-vn", "bp"])
def test_every_method_trains_predicts_and_reports_goodness(method):
    graph = six_node_graph()
    net = model(method, graph=graph)
    result = Trainer(net, TrainConfig(epochs=3, optimizer=OptimizerConfig("adam", 1e-2), cooldown=False)).fit(graph, None)
    assert result.state == "done" and "val_accuracy" in result.final
    assert net.predict(graph).shape == (6,)
    layers = net.layer_goodness(graph)
    assert len(layers) == (1 if method == "bp" else 2)
    assert all(part["goodness"].shape == (6,) and bool(((0 <= part["p_positive"]) & (part["p_positive"] <= 1)).all())
               for part in layers)


def test_training_refuses_a_graph_without_validation_nodes():
    graph = six_node_graph()
    bare = Graph(graph.x, graph.edge_index, graph.y, graph.train_mask, None, None)
    with pytest.raises(ValueError, match="val_mask"):
        Trainer(model("sf"), TrainConfig(epochs=1)).fit(bare, None)


def test_user_graph_validation_names_the_field():
    x = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    with pytest.raises(ValueError, match=r"edges\[1\] = \[2, 3\]: node ids must be in \[0, 3\)"):
        graph_from_arrays(x, [[0, 1], [2, 3]], [0, 1, -1])
    with pytest.raises(ValueError, match=r"x\[1\] holds NaN"):
        graph_from_arrays([[0.0, 1.0], [float("nan"), 0.0]], [[0, 1]], [0, 1])
    with pytest.raises(ValueError, match="y labels must be whole numbers >= 0, or -1"):
        graph_from_arrays(x, [[0, 1]], [0, -2, 1])
    with pytest.raises(ValueError, match="one label per node"):
        graph_from_arrays(x, [[0, 1]], [0, 1])
    graph = graph_from_arrays(x, [[0, 1], [1, 2]], [0, 1, -1]).graph
    assert graph.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]] and graph.train_mask.tolist() == [True, True, False]


def test_user_graph_refuses_ragged_rows_words_odd_masks_and_overlapping_splits():
    x = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    cases = [
        (dict(x=[[0.0, 1.0], [1.0]], edges=[[0, 1]], y=[0, 1]), "x must be rows of node features"),
        (dict(x=x, edges=[["a", 1]], y=[0, 1, -1]), r"edges must be \[source, target\] node-id pairs"),
        (dict(x=x, edges=[[0, 1]], y=["cat", 1, -1]), "y must be one whole-number label per node"),
        (dict(x=x, edges=[[0, 1, 2], [1, 2, 5]], y=[0, 1, -1]),
         r"edges\[0\]\[2\], edges\[1\]\[2\] = \[2, 5\]: node ids must be in \[0, 3\)"),
        (dict(x=x, edges=[[0, 1]], y=[0, 1, 1], train_mask=[1, 0, 2]), r"train_mask\[2\] must be true or false"),
        (dict(x=x, edges=[[0, 1]], y=[0, 1, 1], train_mask=["yes", "no", "no"]), "train_mask must be one true/false"),
        (dict(x=x, edges=[[0, 1]], y=[0, 1, 1], train_mask=[True, True, False], val_mask=[False, True, True]),
         "train_mask and val_mask both select node 1; a node belongs to one split"),
    ]
    for arguments, message in cases:
        with pytest.raises(ValueError, match=message):
            graph_from_arrays(**arguments)


def test_stored_training_labels_anchor_only_the_graph_they_came_from():
    graph = six_node_graph()
    net = model("sf", graph=graph)
    Trainer(net, TrainConfig(epochs=2, optimizer=OptimizerConfig("adam", 1e-2), cooldown=False)).fit(graph, None)
    unlabelled = torch.full((6,), -1)
    none = torch.zeros(6, dtype=torch.bool)
    same = Graph(graph.x, graph.edge_index, unlabelled, none)
    assert net.anchors(same).tolist() == [0, 1, -1, 1, -1, -1]
    shuffled = Graph(graph.x, graph.edge_index[:, torch.randperm(graph.edge_index.shape[1])], unlabelled, none)
    assert net.anchors(shuffled).tolist() == [0, 1, -1, 1, -1, -1]  # the same edges in another order
    other_features = Graph(graph.x + 1.0, graph.edge_index, unlabelled, none)  # six nodes too, another graph
    other_edges = Graph(graph.x, undirected_edges(torch.tensor([[0, 2], [5, 4]]), 6), unlabelled, none)
    assert net.anchors(other_features).tolist() == [-1] * 6 and net.anchors(other_edges).tolist() == [-1] * 6
    # sf links each training node to its class node: its own score is no prediction, so none is reported
    scores = graph_accuracies(net, graph)
    assert "train_accuracy" not in scores and "val_accuracy" in scores


def test_a_run_stopped_inside_a_layer_keeps_that_layers_best_validation_weights():
    graph = six_node_graph()
    net = model("sf", graph=graph)
    train = TrainConfig(epochs=30, optimizer=OptimizerConfig("adam", 5e-2), cooldown=False)
    trainer = Trainer(net, train)
    kept = {}
    original = type(trainer.session).end_epoch

    def spy(session, stats):  # the best weights the session holds after each epoch
        original(session, stats)
        if session.best[1] is not None:
            kept["best"] = {k: v.clone() for k, v in session.best[1].items()}

    type(trainer.session).end_epoch = spy
    try:
        result = trainer.fit(graph, None, stop_after=7)  # inside the first layer's 30 epochs
    finally:
        type(trainer.session).end_epoch = original
    assert result.state == "stopped"
    assert all(torch.equal(net.layers[0].state_dict()[k], v) for k, v in kept["best"].items())


def test_split_masks_default_is_seeded_and_stratified():
    y = [0] * 10 + [1] * 10 + [-1] * 3
    train, val, test = split_masks(None, y, seed=3)
    assert [int(m.sum()) for m in (train, val, test)] == [12, 4, 4]
    assert not bool((train & val).any() or (train & test).any() or (val & test).any())
    assert [m.tolist() for m in split_masks(None, y, seed=3)] == [m.tolist() for m in (train, val, test)]
    with pytest.raises(ValueError, match=r"split\[1\] is 'tran'"):
        split_masks(["train", "tran"], [0, 1])


@needs_planetoid
def test_cli_trains_and_evaluates_a_graph(tmp_path, capsys):
    import json

    from ff_mcp.cli import main

    out = tmp_path / "cora.safetensors"
    assert main(["train", "--dataset", "cora", "--epochs", "6", "--hidden", "16", "--quiet", "--json",
                 "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["variant"] == "gnn" and summary["val_accuracy"] is not None and out.exists()
    assert main(["eval", "--model", str(out), "--dataset", "cora", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["test_accuracy"] == pytest.approx(summary["test_accuracy"])
    assert main(["train", "--dataset", "cora", "--variant", "ff", "--epochs", "1", "--quiet"]) == 2
    assert "variant 'ff' trains on rows" in capsys.readouterr().err


def test_dropout_is_seeded_and_leaves_the_global_random_stream_alone():
    graph = six_node_graph()

    def run():
        cfg = GnnNet.build_config(DataSpec(3, 2, None, "graph", 6), (4,), GnnOptions(method="sf", dropout=0.5))
        net = build_model(cfg, 0)
        Trainer(net, TrainConfig(epochs=5, optimizer=OptimizerConfig("adam", 1e-2), cooldown=False)).fit(graph, None)
        return net

    torch.manual_seed(123)
    state = torch.get_rng_state()
    a, b = run(), run()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_hide_labels_trains_sf_only_and_is_deterministic():
    graph = six_node_graph()

    def run():
        cfg = GnnNet.build_config(DataSpec(3, 2, None, "graph", 6), (4, 4), GnnOptions(method="sf", hide_labels=0.5))
        net = build_model(cfg, 0)
        Trainer(net, TrainConfig(epochs=4, optimizer=OptimizerConfig("adam", 1e-2), cooldown=False)).fit(graph, None)
        return net

    a, b = run(), run()
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match="hide_labels .* method 'sf' only"):
        GnnNet.build_config(DataSpec(3, 2, None, "graph", 6), (4,), GnnOptions(method="ff", hide_labels=0.5))


def test_a_run_ended_by_early_stopping_evaluates_its_last_epoch():
    graph = six_node_graph()
    cfg = GnnNet.build_config(DataSpec(3, 2, None, "graph", 6), (4,), GnnOptions(method="sf", patience=1, val_every=1))
    train = TrainConfig(epochs=500, optimizer=OptimizerConfig("adam", 1e-2), cooldown=False, eval_every=1000)
    result = Trainer(build_model(cfg, 0), train).fit(graph, None)
    assert len(result.history) < 500 and "val_accuracy" in result.final  # stopped early, yet scored
