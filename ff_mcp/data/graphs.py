"""Graphs for node classification: Cora and CiteSeer from the Planetoid files, and a user's own graph.

The Planetoid files (``ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index}``, Yang et al. 2016, byte-identical
to tkipf/gcn) are read from disk, never downloaded, in the places MNIST is looked for (``data_dir``,
``FF_MCP_DATA``, ``../shared/data/planetoid``). They are Python pickles, so each file's SHA-256 is checked
against the published copy before it is opened, and the unpickler accepts only the numpy, scipy and
collections classes those files hold. The split is the standard one (as in Kipf & Welling and torch-geometric's
``Planetoid``): the first 20 labelled nodes per class train (140 Cora, 120 CiteSeer), the next 500 validate,
the 1,000 of ``test.index`` test. CiteSeer's 15 isolated test-range nodes with no features are added as
zero rows (torch-geometric's handling); nodes without a label get y = -1 and are in no split.
Features are row-normalised (each row sums to 1), as the GCN paper and torch-geometric's examples do.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ff_mcp.data.base import DatasetInfo, DatasetNotFoundError
from ff_mcp.engine.protocol import Graph

log = logging.getLogger(__name__)

GRAPH_DATASETS: tuple[str, ...] = ("cora", "citeseer")
PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
# the published files' SHA-256 (../shared/data/planetoid/SHA256SUMS): pickles are opened only when they match
SHA256 = {
    "citeseer": {
        "allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
        "ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
        "graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
        "test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
        "tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
        "ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
        "x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
        "y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
    },
    "cora": {
        "allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
        "ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
        "graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
        "test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
        "tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
        "ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
        "x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
        "y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
    },
}
FACTS = {  # nodes, features, classes, train/val/test sizes (the standard split)
    "cora": (2708, 1433, 7, 140, 500, 1000,
             "Cora citation graph: 2,708 papers, 1,433 bag-of-words features, 7 topics (Planetoid split)"),
    "citeseer": (3327, 3703, 6, 120, 500, 1000,
                 "CiteSeer citation graph: 3,327 papers (15 isolated), 3,703 features, 6 topics (Planetoid split)"),
}
# user graphs through MCP or the API: bounds that keep one request's graph in memory
MAX_NODES = 200_000
MAX_EDGES = 5_000_000


@dataclass(frozen=True, eq=False)
class GraphDataset:
    """A node-classification data set: one graph with its split masks."""

    name: str
    graph: Graph
    num_classes: int
    source: str

    @property
    def in_features(self) -> int:
        return int(self.graph.x.shape[1])

    @property
    def train_size(self) -> int:
        return int(self.graph.train_mask.sum())

    def __repr__(self) -> str:
        g = self.graph
        return (f"GraphDataset(name={self.name!r}, nodes={g.num_nodes}, edges={g.edge_index.shape[1]}, "
                f"features={self.in_features}, classes={self.num_classes}, train={self.train_size}, "
                f"val={int(g.val_mask.sum()) if g.val_mask is not None else 0}, "
                f"test={int(g.test_mask.sum()) if g.test_mask is not None else 0})")


class _PlanetoidUnpickler(pickle.Unpickler):
    """Only the classes the Planetoid files hold; anything else is refused."""

    def find_class(self, module: str, name: str):  # noqa: D401
        import scipy.sparse

        allowed = {
            ("scipy.sparse.csr", "csr_matrix"): scipy.sparse.csr_matrix,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("collections", "defaultdict"): __import__("collections").defaultdict,
            ("__builtin__", "list"): list,
            ("builtins", "list"): list,
        }
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own _reconstruct, wherever it lives
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a Planetoid file")


def _search_dirs(data_dir: str | os.PathLike[str] | None) -> list[Path]:
    from ff_mcp.data.mnist import data_dirs

    return data_dirs("planetoid", data_dir)


def locate_planetoid(name: str, data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The first directory holding all eight files of ``name``, or None."""
    for place in _search_dirs(data_dir):
        if all((place / f"ind.{name}.{part}").is_file() for part in PARTS):
            return place
    return None


def load_planetoid(name: str, data_dir: str | os.PathLike[str] | None = None, normalize: bool = True) -> GraphDataset:
    """Cora or CiteSeer with the standard Planetoid split (see the module docstring)."""
    key = name.strip().lower() if isinstance(name, str) else ""
    if key not in GRAPH_DATASETS:
        raise ValueError(f"unknown graph data set {name!r}; choose one of: {', '.join(GRAPH_DATASETS)}")
    place = locate_planetoid(key, data_dir)
    if place is None:
        searched = [str(p) for p in _search_dirs(data_dir)]
        raise DatasetNotFoundError(
            f"{key} data not found: need the eight Planetoid files ind.{key}.{{{','.join(PARTS)}}} in one directory; "
            f"searched {', '.join(searched)}. Pass --data-dir DIR or set FF_MCP_DATA=DIR (DIR/planetoid or DIR). "
            f"Nothing is downloaded.", name=key, missing_files=[f"ind.{key}.{p}" for p in PARTS], searched=searched)
    parts = {}
    for part in PARTS:
        path = place / f"ind.{key}.{part}"
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != SHA256[key][part]:
            raise ValueError(f"{path}: SHA-256 {digest[:12]}... is not the published file's; refusing to unpickle it")
        if part == "test.index":
            parts[part] = np.array([int(line) for line in data.decode().split()], dtype=np.int64)
        else:
            parts[part] = _PlanetoidUnpickler(io.BytesIO(data), encoding="latin1").load()
    graph = _assemble(key, parts, normalize)
    return GraphDataset(key, graph, FACTS[key][2], str(place))


def _assemble(name: str, parts: dict, normalize: bool) -> Graph:
    allx, ally = parts["allx"].toarray(), np.asarray(parts["ally"])
    tx, ty = parts["tx"].toarray(), np.asarray(parts["ty"])
    test_index = parts["test.index"]
    sorted_test = np.sort(test_index)
    if name == "citeseer":  # isolated nodes in the test range have no row in tx: zero rows, no label
        span = int(sorted_test[-1] - sorted_test[0]) + 1
        tx_ext = np.zeros((span, tx.shape[1]), dtype=tx.dtype)
        ty_ext = np.zeros((span, ty.shape[1]), dtype=ty.dtype)
        tx_ext[sorted_test - sorted_test[0]] = tx
        ty_ext[sorted_test - sorted_test[0]] = ty
        tx, ty = tx_ext, ty_ext
    features = np.concatenate([allx, tx]).astype(np.float32)
    onehot = np.concatenate([ally, ty])
    features[test_index] = features[sorted_test]  # tx rows are in sorted test order; put them at their ids
    onehot[test_index] = onehot[sorted_test]
    labels = np.where(onehot.sum(axis=1) > 0, onehot.argmax(axis=1), -1).astype(np.int64)
    n = features.shape[0]
    if normalize:
        sums = features.sum(axis=1, keepdims=True)
        features = features / np.where(sums > 0, sums, 1.0)
    edges = [(int(a), int(b)) for a, neighbours in parts["graph"].items() for b in neighbours]
    edge_index = undirected_edges(torch.tensor(edges, dtype=torch.int64).t(), n)
    n_train = int(np.asarray(parts["y"]).shape[0])
    train = torch.zeros(n, dtype=torch.bool)
    train[:n_train] = True
    val = torch.zeros(n, dtype=torch.bool)
    val[n_train:n_train + 500] = True
    test = torch.zeros(n, dtype=torch.bool)
    test[torch.from_numpy(test_index)] = True
    y = torch.from_numpy(labels)
    test &= y >= 0
    return Graph(torch.from_numpy(features), edge_index, y, train, val, test)


def undirected_edges(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """(2, E) -> (2, E') both directions of every edge, self loops and duplicates dropped, sorted by source."""
    if edge_index.numel() == 0:
        return torch.zeros(2, 0, dtype=torch.int64)
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    both = both[:, both[0] != both[1]]
    keys = torch.unique(both[0] * num_nodes + both[1])
    return torch.stack([keys // num_nodes, keys % num_nodes])


def graph_from_arrays(x, edges, y, train_mask=None, val_mask=None, test_mask=None, num_classes: int | None = None,
                      name: str = "user-graph", directed: bool = False, labels_needed: bool = True) -> GraphDataset:
    """A user's graph: x (N, F) numbers, edges (E, 2) or (2, E) node ids, y (N,) labels (-1: unlabelled),
    optional boolean masks (default: every labelled node trains). Errors name the field and what is allowed.
    Edges are made undirected unless ``directed``; self loops and duplicates are dropped. ``labels_needed``
    False: a graph to predict on, where every label may be -1 (``num_classes`` then required)."""
    xt = _numbers(x, np.float32, "x", "rows of node features, one list of numbers per node")
    if xt.ndim != 2 or xt.shape[0] < 2 or xt.shape[1] < 1:
        raise ValueError(f"x must be a list of node feature rows (nodes >= 2, features >= 1), got shape {tuple(xt.shape)}")
    n = int(xt.shape[0])
    if n > MAX_NODES:
        raise ValueError(f"x has {n} nodes; at most {MAX_NODES} are allowed")
    if not torch.isfinite(xt).all():
        bad = int((~torch.isfinite(xt)).any(dim=1).nonzero()[0])
        raise ValueError(f"x[{bad}] holds NaN or infinity; node features must be finite numbers")
    et = _numbers(edges if len(edges) else np.zeros((0, 2)), np.float64, "edges", "[source, target] node-id pairs")
    if et.ndim != 2 or (et.shape[1] != 2 and et.shape[0] != 2):
        raise ValueError(f"edges must be a list of [source, target] node-id pairs, got shape {tuple(et.shape)}")
    columns = et.shape[1] != 2  # given as (2, E): two lists, sources then targets
    if columns:
        et = et.t()
    if et.shape[0] > MAX_EDGES:
        raise ValueError(f"edges has {et.shape[0]} pairs; at most {MAX_EDGES} are allowed")
    if et.numel() and (not torch.isfinite(et).all() or bool((et != et.round()).any())):
        raise ValueError("edges must hold whole node ids (no fractions, NaN or infinity)")
    if et.numel() and (et.min() < 0 or et.max() >= n):
        row = int(((et < 0) | (et >= n)).any(dim=1).nonzero()[0])
        where = f"edges[0][{row}], edges[1][{row}]" if columns else f"edges[{row}]"
        raise ValueError(f"{where} = {et[row].long().tolist()}: node ids must be in [0, {n}) (x has {n} nodes)")
    edge_index = et.long().t().contiguous()
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    edge_index = (torch.unique(edge_index[0] * n + edge_index[1]) if directed else None)
    if directed:
        edge_index = torch.stack([edge_index // n, edge_index % n])
    else:
        edge_index = undirected_edges(et.long().t().contiguous(), n)
    yt = _numbers(y, np.float64, "y", "one whole-number label per node, -1 for unlabelled")
    if yt.shape != (n,):
        raise ValueError(f"y must give one label per node ({n}), got shape {tuple(yt.shape)}")
    if not torch.isfinite(yt).all() or bool((yt != yt.round()).any()) or bool((yt < -1).any()):
        raise ValueError("y labels must be whole numbers >= 0, or -1 for an unlabelled node")
    yt = yt.long()
    labelled = yt >= 0
    if labels_needed and not bool(labelled.any()):
        raise ValueError("y: at least one node needs a label (all are -1)")
    classes = int(yt.max()) + 1
    if num_classes is not None:
        if classes > num_classes:
            raise ValueError(f"y labels must be in [0, {num_classes}) or -1, got {int(yt.max())}")
        classes = num_classes
    if classes < 2:
        raise ValueError("y needs at least 2 classes among its labels")
    masks = []
    for field, mask in (("train_mask", train_mask), ("val_mask", val_mask), ("test_mask", test_mask)):
        if mask is None:
            masks.append(None)
            continue
        m = _numbers(mask, np.float64, field, f"one true/false per node ({n})")
        if m.shape != (n,):
            raise ValueError(f"{field} must give one true/false per node ({n}), got shape {tuple(m.shape)}")
        if bool(((m != 0) & (m != 1)).any()):
            raise ValueError(f"{field}[{int(((m != 0) & (m != 1)).nonzero()[0])}] must be true or false (or 1 / 0)")
        m = m.bool()
        if bool((m & ~labelled).any()):
            raise ValueError(f"{field} selects node {int((m & ~labelled).nonzero()[0])}, which has no label (y = -1)")
        masks.append(m)
    names = ("train_mask", "val_mask", "test_mask")
    for i in range(3):
        for j in range(i + 1, 3):
            if masks[i] is not None and masks[j] is not None and bool((masks[i] & masks[j]).any()):
                node = int((masks[i] & masks[j]).nonzero()[0])
                raise ValueError(f"{names[i]} and {names[j]} both select node {node}; a node belongs to one split")
    if masks[0] is None:
        masks[0] = labelled & ~(masks[1] if masks[1] is not None else torch.zeros(n, dtype=torch.bool)) & ~(
            masks[2] if masks[2] is not None else torch.zeros(n, dtype=torch.bool))
    if labels_needed and not bool(masks[0].any()):
        raise ValueError("train_mask selects no node; at least one labelled node must train")
    return GraphDataset(name, Graph(xt.contiguous(), edge_index, yt, *masks), classes, "arrays")


def _numbers(value, dtype, field: str, what: str) -> torch.Tensor:
    """``value`` (nested lists, an array or a tensor) as a tensor of ``dtype``; ValueError naming ``field``
    when it is ragged or holds something that is not a number."""
    if isinstance(value, torch.Tensor):
        return value.to(torch.float32 if dtype == np.float32 else torch.float64)
    try:
        return torch.as_tensor(np.asarray(value, dtype=dtype))
    except (TypeError, ValueError):
        raise ValueError(f"{field} must be {what}: numbers in lists of equal length") from None


SPLITS = ("train", "val", "test", "none")


def split_masks(split: list[str] | None, y: torch.Tensor | list, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(train, val, test) masks from one word per node (train | val | test | none), or, without ``split``,
    a seeded 60 / 20 / 20 % split of the labelled nodes (stratified by class)."""
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    n = yt.shape[0]
    if split is not None:
        if len(split) != n:
            raise ValueError(f"split must give one of {list(SPLITS)} per node ({n}), got {len(split)} entries")
        bad = next((i for i, s in enumerate(split) if s not in SPLITS), None)
        if bad is not None:
            raise ValueError(f"split[{bad}] is {split[bad]!r}; each entry must be one of {list(SPLITS)}")
        return tuple(torch.tensor([s == part for s in split], dtype=torch.bool) for part in SPLITS[:3])
    generator = torch.Generator().manual_seed(seed)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    for c in torch.unique(yt[yt >= 0]).tolist():
        nodes = (yt == c).nonzero().squeeze(1)
        nodes = nodes[torch.randperm(nodes.shape[0], generator=generator)]
        k = nodes.shape[0]
        n_val, n_test = round(0.2 * k), round(0.2 * k)
        if k - n_val - n_test < 1:  # a class with one or two nodes: they train
            n_val = n_test = 0 if k < 3 else 1
        masks[1][nodes[:n_val]] = True
        masks[2][nodes[n_val:n_val + n_test]] = True
        masks[0][nodes[n_val + n_test:]] = True
    return tuple(masks)


def graph_infos(data_dir: str | os.PathLike[str] | None = None) -> list[DatasetInfo]:
    """What ``list_datasets`` says about the graph data sets."""
    infos = []
    for name in GRAPH_DATASETS:
        place = locate_planetoid(name, data_dir)
        nodes, features, classes, train, val, test, description = FACTS[name]
        infos.append(DatasetInfo(
            name=name, available=place is not None, location=str(place) if place else None,
            searched=[str(p) for p in _search_dirs(data_dir)], num_classes=classes, in_features=features,
            train_size=train, test_size=test, image_shape=None, description=description,
            detail=None if place else "the eight Planetoid files are in none of the searched directories",
            data_kind="graph", nodes=nodes, val_size=val))
    return infos
