"""Forward-learned graph neural networks (model kind "gnn"; Park et al., "Forward Learning of Graph Neural
Networks", ICLR 2024), with the backprop GNN of the same layers as a method for comparison.

Node classification on one graph (``protocol.Graph``), full batch. Each layer is ``relu(conv(l2norm(h)))``
with a GCN (symmetric-normalised, self loops) or GraphSAGE (mean) convolution; ``l2norm`` divides each
row by its L2 norm. Methods (``--opt method=``):

- ``sf`` (single-forward): one virtual node per class, with fixed random features, linked both ways to
  the training nodes of its class. Layer i's loss is cross-entropy over (training-node embedding x class-node
  embedding) / temperature; layers train one after another, each on the detached output of the frozen
  layers below, with its own Adam and early stopping on validation accuracy (best weights kept). Prediction
  sums every layer's class probabilities.
- ``ff`` (graph FF with label appending, FF-LA): the one-hot label is appended to the features of the
  training nodes (uniform 1/C for every other node); a negative copy gives each training node one wrong
  label (all C - 1 wrong labels, in a random order drawn once). Loss: BCE-with-logits on (sum of squares
  - theta), positives 1, negatives 0. Prediction tries every label on the unlabelled nodes at once and
  sums each layer's goodness (mean of squares).
- ``ff-vn`` (graph FF with virtual nodes, FF-VN): the positive graph links each training node to its own
  class node, negative graph k to a wrong one; same loss; prediction links every unlabelled node to class
  node c in turn.
- ``bp``: the same convolution layers and an output convolution to the classes, trained end to end by
  backpropagation (the standard GCN / SAGE: ReLU and dropout between layers, no row normalisation).

The copies of one graph (positive, negatives, one per candidate label) are stacked along a leading axis
and each is propagated with its own graph's operator, so no message passes between copies.
docs/VARIANTS.md lists the mechanics read from facebookresearch/forwardgnn and the choices made here.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .protocol import Batch, DataSpec, FFModel, Graph, Session, register_model_kind
from .trainer import TrainConfig

METHODS = ("sf", "ff", "ff-vn", "bp")
LAYERS = ("gcn", "sage")


# ---- graph operators --------------------------------------------------------------------------


def gcn_operator(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """D^-1/2 (A + I) D^-1/2 as a sparse (n, n) COO matrix (messages flow source -> target)."""
    loops = torch.arange(n, device=edge_index.device)
    src = torch.cat([edge_index[0], loops])
    dst = torch.cat([edge_index[1], loops])
    degree = torch.zeros(n, device=edge_index.device).index_add_(0, dst, torch.ones_like(dst, dtype=torch.float32))
    inv_sqrt = degree.pow(-0.5)
    values = inv_sqrt[src] * inv_sqrt[dst]
    return torch.sparse_coo_tensor(torch.stack([dst, src]), values, (n, n), check_invariants=False).coalesce()


def mean_operator(edge_index: torch.Tensor, n: int) -> torch.Tensor:
    """Row i averages the in-neighbours of node i (zero row without any): SAGE's mean aggregation."""
    src, dst = edge_index[0], edge_index[1]
    degree = torch.zeros(n, device=edge_index.device).index_add_(0, dst, torch.ones_like(dst, dtype=torch.float32))
    values = 1.0 / degree[dst].clamp(min=1)
    return torch.sparse_coo_tensor(torch.stack([dst, src]), values, (n, n), check_invariants=False).coalesce()


def operator(kind: str, edge_index: torch.Tensor, n: int) -> torch.Tensor:
    return gcn_operator(edge_index, n) if kind == "gcn" else mean_operator(edge_index, n)


def propagate(op: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """op (n, n) sparse applied to every copy of h (n, d) or (R, n, d): messages stay inside each copy."""
    if h.ndim == 2:
        return op @ h
    r, n, d = h.shape
    return (op @ h.permute(1, 0, 2).reshape(n, r * d)).reshape(n, r, d).permute(1, 0, 2)


def l2_rows(h: torch.Tensor) -> torch.Tensor:
    """Each row divided by its L2 norm (forwardgnn's LayerNormalization)."""
    return h / (h.norm(dim=-1, keepdim=True) + 1e-8)


def dropout(h: torch.Tensor, p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout with masks from ``generator`` (the run's seeded stream, not torch's global one)."""
    if p <= 0 or generator is None:
        return h
    keep = torch.rand(h.shape, generator=generator) >= p
    return h * keep.to(h.device) / (1 - p)


def with_class_nodes(edge_index: torch.Tensor, n: int, classes: torch.Tensor) -> torch.Tensor:
    """The edges plus node ``n + classes[i]`` <-> node i for every i with classes[i] >= 0 (both directions)."""
    nodes = (classes >= 0).nonzero().squeeze(1)
    virtual = n + classes[nodes]
    return torch.cat([edge_index, torch.stack([nodes, virtual]), torch.stack([virtual, nodes])], dim=1)


class GraphConv(nn.Module):
    """One GCN (``lin`` then propagate, then bias: torch-geometric's GCNConv) or SAGE-mean layer
    (``lin_neigh`` on the neighbours' mean, with bias, plus ``lin_root`` on the node: SAGEConv)."""

    def __init__(self, in_features: int, out_features: int, kind: str, generator: torch.Generator | None) -> None:
        super().__init__()
        self.kind = kind
        self.in_features, self.out_features = in_features, out_features
        bound = math.sqrt(6.0 / (in_features + out_features))  # glorot (GCNConv); SAGE: nn.Linear's
        if kind == "gcn":
            self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound, generator=generator))
            self.bias = nn.Parameter(torch.zeros(out_features))
        else:
            b = 1.0 / math.sqrt(in_features)
            self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-b, b, generator=generator))
            self.bias = nn.Parameter(torch.empty(out_features).uniform_(-b, b, generator=generator))
            self.root = nn.Parameter(torch.empty(out_features, in_features).uniform_(-b, b, generator=generator))

    def forward(self, h: torch.Tensor, op: torch.Tensor) -> torch.Tensor:
        """h (n, d) or (R, n, d) -> same leading shape with ``out_features``; op: the graph's operator."""
        out = propagate(op, h @ self.weight.t()) + self.bias  # A (h W) == (A h) W, the cheaper order
        if self.kind == "sage":
            out = out + h @ self.root.t()
        return out


# ---- losses ---------------------------------------------------------------------------------------


def sf_loss(node_emb: torch.Tensor, class_emb: torch.Tensor, y: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Single-forward loss: cross-entropy of (node_emb @ class_emb^T) / temperature against y."""
    return F.cross_entropy(node_emb @ class_emb.t() / temperature, y)


def graph_ff_loss(h_pos: torch.Tensor, h_negs: torch.Tensor, theta: float) -> torch.Tensor:
    """BCE-with-logits on (sum of squares - theta): positive rows (n, d) toward 1, each negative copy
    (k, n, d) toward 0; loss = positive mean + mean over the copies of each copy's mean (forwardgnn)."""
    pos = F.binary_cross_entropy_with_logits(h_pos.pow(2).sum(-1) - theta, torch.ones(h_pos.shape[0], device=h_pos.device))
    logits = h_negs.pow(2).sum(-1) - theta
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none").mean(dim=1).mean()
    return pos + neg


# ---- configuration ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GnnConfig:
    """Everything needed to rebuild a GnnNet (stored in its checkpoints)."""

    in_features: int
    num_classes: int
    hidden: tuple[int, ...] = (128, 128)
    method: str = "sf"
    layer: str = "gcn"
    temperature: float = 1.0
    theta: float = 2.0
    patience: int = 100  # validation checks without improvement before a layer (or bp) stops
    val_every: int = 2  # epochs between validation checks
    dropout: float = 0.0
    hide_labels: float = 0.0  # sf: fraction of training nodes whose class-node edges are hidden each epoch
    nodes: int = 0  # nodes of the training graph (its labelled training nodes are kept as prediction anchors)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if self.in_features < 1 or self.num_classes < 2 or (not self.hidden and self.method != "bp") or any(
                h < 1 for h in self.hidden):
            raise ValueError(f"gnn needs in_features >= 1, num_classes >= 2 and hidden sizes >= 1 (bp: hidden may be "
                             f"empty, one convolution to the classes), got "
                             f"{self.in_features}, {self.num_classes}, {self.hidden}")
        if len(self.hidden) > 16 or any(h > 4096 for h in self.hidden):
            raise ValueError(f"hidden: gnn takes at most 16 layers of at most 4096 units, got {list(self.hidden)}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        if self.layer not in LAYERS:
            raise ValueError(f"layer must be one of {list(LAYERS)}, got {self.layer!r}")
        if not 0 < self.temperature <= 100:
            raise ValueError(f"temperature must be in (0, 100], got {self.temperature}")
        if not 0 <= self.theta <= 1e4:
            raise ValueError(f"theta must be in [0, 10000], got {self.theta}")
        if not 1 <= self.patience <= 100_000 or not 1 <= self.val_every <= 1000:
            raise ValueError(f"patience must be in [1, 100000] and val_every in [1, 1000], got {self.patience}, "
                             f"{self.val_every}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.hide_labels < 1.0 or (self.hide_labels and self.method != "sf"):
            raise ValueError(f"hide_labels must be in [0, 1), and is an option of method 'sf' only; got "
                             f"{self.hide_labels} with method {self.method!r}")
        if not 0 <= self.nodes <= 10_000_000:
            raise ValueError(f"nodes must be in [0, 10000000], got {self.nodes}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GnnConfig":
        return cls(**d)


@dataclass(frozen=True)
class GnnOptions:
    """Options of the "gnn" variant."""

    method: str = field(default="sf", metadata={
        "help": "sf (single-forward, class nodes) | ff (graph FF, label appending) | ff-vn (graph FF, virtual "
                "nodes) | bp (backprop baseline)"})
    layer: str = field(default="gcn", metadata={"help": "gcn | sage (mean aggregation)"})
    temperature: float = field(default=1.0, metadata={"help": "sf: divides the node x class-node scores"})
    theta: float = field(default=2.0, metadata={"help": "ff, ff-vn: goodness threshold (sum of squares)"})
    patience: int = field(default=100, metadata={"help": "validation checks without improvement before a layer stops"})
    val_every: int = field(default=2, metadata={"help": "epochs between validation checks"})
    dropout: float = field(default=0.0, metadata={"help": "dropout on each layer's input while training, [0, 1)"})
    hide_labels: float = field(default=0.0, metadata={
        "help": "sf: each epoch, this fraction of the training nodes loses its class-node edges and alone carries "
                "the loss, as unlabelled nodes are seen at prediction (0: the paper, every training node linked)"})


@register_model_kind
class GnnNet(FFModel):
    """GCN or SAGE layers trained forward-only (sf, ff, ff-vn) or by backprop (bp), on one graph."""

    kind = "gnn"
    description = ("Forward-learned GNN (Park et al., ICLR 2024): GCN or GraphSAGE layers trained layer by layer "
                   "with class nodes (sf) or graph FF (ff, ff-vn); bp = the same layers by backprop")
    config_class = GnnConfig
    options_class = GnnOptions
    data_kinds = ("graph",)

    def __init__(self, config: GnnConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        k = config.num_classes
        first = config.in_features + (k if config.method == "ff" else 0)
        widths = [first, *config.hidden]
        self.layers = nn.ModuleList(GraphConv(widths[i], widths[i + 1], config.layer, generator)
                                    for i in range(len(config.hidden)))
        if config.method == "bp":  # an output convolution to the classes (Kipf & Welling's GCN: hidden (16,))
            self.head = GraphConv(widths[-1], k, config.layer, generator)
        # the class nodes' fixed random features (forwardgnn: an untrained nn.Embedding's N(0, 1) weights)
        self.register_buffer("class_features", torch.randn(k, config.in_features, generator=generator)
                             if config.method in ("sf", "ff-vn") else torch.zeros(0))
        # labels of the training graph's training nodes (-1 elsewhere): what prediction links to when a
        # caller gives the same graph without labels
        self.register_buffer("anchor_labels", torch.full((config.nodes,), -1, dtype=torch.int64))
        # which graph those labels belong to (graph_fingerprint; zeros: not known, a checkpoint from before it)
        self.register_buffer("anchor_fingerprint", torch.zeros(3, dtype=torch.int64))
        self.active_layers: int | None = None  # while layer i trains: i + 1 (scores use the layers trained so far)

    @classmethod
    def build_config(cls, data: DataSpec, hidden: tuple[int, ...], options: GnnOptions | None,
                     train: Any = None) -> GnnConfig:
        o = options or GnnOptions()
        return GnnConfig(data.in_features, data.num_classes, tuple(hidden), o.method, o.layer, o.temperature,
                         o.theta, o.patience, o.val_every, o.dropout, o.hide_labels, data.nodes)

    # ---- graphs as each method sees them ---------------------------------------------------------

    def anchors(self, graph: Graph) -> torch.Tensor:
        """(N,) the labels prediction may use: the graph's training nodes' labels, -1 elsewhere. A graph
        without any (a caller's copy of the training graph without labels) takes the stored ones."""
        labels = torch.where(graph.train_mask, graph.y, torch.full_like(graph.y, -1))
        if not bool((labels >= 0).any()) and self.anchor_labels.shape[0] == graph.num_nodes:
            known = self.anchor_fingerprint.cpu()
            if not bool(known.any()) or torch.equal(graph_fingerprint(graph), known):
                labels = self.anchor_labels.to(graph.y.device)
        return labels

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001 (torch's hook)
        """Checkpoints from before the fingerprint load with it unknown (zeros)."""
        state_dict.setdefault(prefix + "anchor_fingerprint", torch.zeros(3, dtype=torch.int64))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def class_graph(self, graph: Graph, classes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N + K, F), operator) of the graph with class node c linked to each node i of classes[i] = c."""
        n = graph.num_nodes
        x = torch.cat([graph.x, self.class_features.to(graph.x.device)])
        edges = with_class_nodes(graph.edge_index, n, classes)
        return x, operator(self.config.layer, edges, n + self.num_classes)

    def label_features_from(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """x with each node's one-hot label appended (uniform 1/C where labels is -1): FF-LA's input.
        labels (N,) or (R, N) -> (N, F + C) or (R, N, F + C)."""
        k = self.num_classes
        block = torch.where((labels >= 0).unsqueeze(-1), F.one_hot(labels.clamp(min=0), k).float(),
                            torch.full((*labels.shape, k), 1.0 / k, device=labels.device))
        x = x.expand(*labels.shape, x.shape[1]) if labels.ndim == 2 else x
        return torch.cat([x, block], dim=-1)

    def layer_output(self, i: int, h: torch.Tensor | tuple[torch.Tensor, torch.Tensor], op: torch.Tensor,
                     p: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """relu(conv(l2norm(h))). ``h`` may be (x (N, F), labels (R, N)) for FF-LA's first layer: the copies
        share x, so x W is computed once and each copy adds its label block's share (the same numbers as
        conv on the concatenated rows, a K-th of the work)."""
        if isinstance(h, tuple):
            x, labels = h
            if p > 0 and generator is not None:
                h = self.label_features_from(x, labels)
            else:
                return F.relu(self._first_layer_labels(x, labels, op))
        return F.relu(self.layers[i](dropout(l2_rows(h), p, generator), op))

    def _first_layer_labels(self, x: torch.Tensor, labels: torch.Tensor, op: torch.Tensor) -> torch.Tensor:
        layer, k, f = self.layers[0], self.num_classes, x.shape[1]
        known = (labels >= 0).unsqueeze(-1)  # (R, N, 1)
        norm = torch.sqrt(x.pow(2).sum(-1) + torch.where(known[..., 0], 1.0, 1.0 / k)) + 1e-8  # (R, N)

        def project(weight: torch.Tensor) -> torch.Tensor:
            """(R, N, out): [x, label block] @ weight^T, the x part once for every copy."""
            w_x, w_l = weight[:, :f], weight[:, f:]
            label_part = torch.where(known, w_l.t()[labels.clamp(min=0)], w_l.sum(1) / k)
            return ((x @ w_x.t()).unsqueeze(0) + label_part) / norm.unsqueeze(-1)

        out = propagate(op, project(layer.weight)) + layer.bias
        if layer.kind == "sage":
            out = out + project(layer.root)
        return out

    def bp_logits(self, x: torch.Tensor, op: torch.Tensor, p: float = 0.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """bp: the standard GCN / SAGE stack: dropout, conv, ReLU per hidden layer, then dropout and the
        output conv (dropout only while training: with a generator)."""
        h = x
        for layer in self.layers:
            h = F.relu(layer(dropout(h, p, generator), op))
        return self.head(dropout(h, p, generator), op)

    # ---- prediction -------------------------------------------------------------------------------

    def layer_scores(self, graph: Graph, upto: int | None = None) -> list[torch.Tensor]:
        """Per layer 0..upto, (N, K) scores of the graph's nodes: class probabilities (sf), goodness
        (mean of squares) with each label (ff, ff-vn), or logits of the head (bp, one entry)."""
        cfg, n, k = self.config, graph.num_nodes, self.num_classes
        last = (self.active_layers or len(self.layers)) - 1 if upto is None else upto
        anchors = self.anchors(graph)
        if cfg.method == "bp":
            return [self.bp_logits(graph.x, operator(cfg.layer, graph.edge_index, n))]
        out: list[torch.Tensor] = []
        if cfg.method == "sf":
            h, op = self.class_graph(graph, anchors)
            for i in range(last + 1):
                h = self.layer_output(i, h, op)
                out.append(F.softmax(h[:n] @ h[n:].t() / cfg.temperature, dim=1))
            return out
        if cfg.method == "ff":  # every unlabelled node takes label c in copy c; anchors keep theirs
            trial = torch.where(anchors >= 0, anchors, torch.arange(k, device=anchors.device)[:, None])
            h, op = (graph.x, trial), operator(cfg.layer, graph.edge_index, n)
            for i in range(last + 1):
                h = self.layer_output(i, h, op)
                out.append(h.pow(2).mean(-1).t())  # (K, N) -> (N, K)
            return out
        # ff-vn: copy c links every unlabelled node to class node c, anchors to their own
        per_class = []
        for c in range(k):
            x, op = self.class_graph(graph, torch.where(anchors >= 0, anchors, torch.full_like(anchors, c)))
            h, scores = x, []
            for i in range(last + 1):
                h = self.layer_output(i, h, op)
                scores.append(h[:n].pow(2).mean(-1))
            per_class.append(torch.stack(scores))  # (layers, N)
        stacked = torch.stack(per_class, dim=-1)  # (layers, N, K)
        return list(stacked.unbind(0))

    @property
    def labels_fixed_on_train_nodes(self) -> bool:
        """sf, ff, ff-vn: the training nodes keep their labels in the graph prediction sees (linked to their
        class node, or in every trial copy), so their scores are not a prediction (no train_accuracy)."""
        return self.config.method in ("sf", "ff", "ff-vn")

    def predict_scores(self, x: Graph, method: str | None = None, upto: int | None = None) -> torch.Tensor:
        """(N, K): the summed scores of layers 0..upto (every layer by default)."""
        self.check_method(method)
        if not isinstance(x, Graph):
            raise ValueError("x: a gnn model predicts on a graph (node features and edges), not on rows")
        return torch.stack(self.layer_scores(x, upto)).sum(0)

    def prediction_methods(self) -> dict[str, str]:
        return {
            "sf": {"fused": "the sum of every layer's class-node probabilities"},
            "ff": {"goodness": "the label whose one-hot, appended to the node, gives the most goodness summed over layers"},
            "ff-vn": {"goodness": "the class node that, linked to the node, gives it the most goodness summed over layers"},
            "bp": {"logits": "the backprop head's highest logit"},
        }[self.config.method]

    def layer_goodness(self, x: Graph, labels: torch.Tensor | None = None) -> list[dict[str, torch.Tensor]]:
        """Per layer, for every node: goodness (mean of squared outputs, with ``labels`` (N,) for ff and
        ff-vn, else the best label) and p_positive (sf: the layer's probability of that label; ff: sigmoid of
        sum of squares - theta; bp: the head's softmax probability, on the last layer)."""
        if not isinstance(x, Graph):
            raise ValueError("x: a gnn model scores a graph (node features and edges), not rows")
        cfg = self.config
        scores = self.layer_scores(x)
        chosen = labels if labels is not None else torch.stack(scores).sum(0).argmax(1)
        rows = torch.arange(x.num_nodes, device=x.x.device)
        out = []
        for s in scores:
            picked = s[rows, chosen]
            if cfg.method in ("ff", "ff-vn"):
                width = self.layers[len(out)].out_features
                out.append({"goodness": picked, "p_positive": torch.sigmoid(picked * width - cfg.theta)})
            else:
                probability = s[rows, chosen] if cfg.method == "sf" else F.softmax(s, dim=1)[rows, chosen]
                out.append({"goodness": picked, "p_positive": probability})
        return out

    # ---- the protocol ------------------------------------------------------------------------------

    def check_data(self, x: Any, y: Any = None, split: str = "train") -> None:
        if not isinstance(x, Graph):
            raise ValueError(f"x_{split}: variant 'gnn' trains on a graph (node features, edges, labels), not rows")
        if x.x.shape[1] != self.in_features:
            raise ValueError(f"x must have {self.in_features} features per node, got {x.x.shape[1]}")
        if x.x.dtype != torch.float32:
            raise ValueError(f"x must hold float32 node features, got {x.x.dtype}")
        if split == "train" and not bool(x.train_mask.any()):
            raise ValueError("train_mask selects no node; at least one labelled node must train")
        if x.y.numel() and int(x.y.max()) >= self.num_classes:
            raise ValueError(f"y labels must be in [0, {self.num_classes}) or -1, got {int(x.y.max())}")

    def batches(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device):
        yield torch.arange(n, device=device)  # full batch: every training node, one step an epoch

    def local_units(self) -> list[nn.Module]:
        if self.config.method == "bp":
            return [self]
        return list(self.layers)

    def training_session(self, config: TrainConfig, device: torch.device) -> Session:
        return GnnSession(self, config, device)


_FINGERPRINT_PRIME = 2_147_483_647  # 2^31 - 1: squares of residues stay inside int64


def graph_fingerprint(graph: Graph) -> torch.Tensor:
    """(3,) int64 on the CPU: the edge count, a checksum of the edges that ignores their order, and a
    checksum of the features' float32 bits (row by row, so node order counts). Two graphs with the same
    node count but other features or edges differ in it (integers only: no float64, which some devices
    lack)."""
    edges = graph.edge_index.cpu()
    codes = (edges[0] * graph.num_nodes + edges[1]) % _FINGERPRINT_PRIME
    edge_sum = int(((codes * codes + codes) % _FINGERPRINT_PRIME).sum())
    bits = graph.x.detach().float().cpu().contiguous().view(torch.int32).long()
    weights = torch.arange(1, bits.numel() + 1, dtype=torch.int64) % _FINGERPRINT_PRIME
    feature_sum = int(((bits.reshape(-1) % _FINGERPRINT_PRIME) * weights % _FINGERPRINT_PRIME).sum())
    return torch.tensor([edges.shape[1], edge_sum, feature_sum], dtype=torch.int64)


class GnnSession(Session):
    """Layer after layer (sf, ff, ff-vn) or the whole model (bp), full batch, early stopping on validation."""

    def __init__(self, model: GnnNet, config: TrainConfig, device: torch.device) -> None:
        super().__init__(model, config, device)
        if config.schedule != "simultaneous":
            raise ValueError("schedule: gnn trains its layers one after another by itself; leave schedule 'simultaneous'")
        units = model.local_units()
        self.optimizers = [config.optimizer.build(list(u.parameters())) for u in units]
        self.base_lr = config.optimizer.lr
        self.generator = torch.Generator().manual_seed(config.seed + 104_729)  # negatives' order, dropout: CPU
        self.graph: Graph | None = None
        self.cache: dict[str, Any] = {}
        self.phase = -1
        self.best: tuple[float, dict | None] = (-1.0, None)
        self.checks_since_best = 0
        self.epochs_in_phase = 0

    def phases(self) -> list[range]:
        return [range(i, i + 1) for i in range(self.units)]

    def set_lr_factor(self, factor: float, units: range) -> None:
        for i in units:
            for group in self.optimizers[i].param_groups:
                group["lr"] = self.base_lr * factor

    def begin_fit(self, x_train: Any, y_train: torch.Tensor) -> None:
        graph: Graph = x_train
        if graph.val_mask is None or not bool(graph.val_mask.any()):
            raise ValueError("val_mask: gnn training stops each layer early on validation accuracy; give the graph "
                             "validation nodes (val_mask)")
        self.graph = graph
        model, cfg, n, k = self.model, self.model.config, graph.num_nodes, self.model.num_classes
        if model.anchor_labels.shape[0] == n:
            model.anchor_labels.copy_(torch.where(graph.train_mask, graph.y, torch.full_like(graph.y, -1)))
            model.anchor_fingerprint.copy_(graph_fingerprint(graph))
        train = graph.train_mask.nonzero().squeeze(1)
        self.cache["train"] = train
        if cfg.method in ("ff", "ff-vn"):  # each training node's wrong labels, in a random order drawn once
            y = graph.y[train].cpu()
            order = torch.rand(train.shape[0], k, generator=self.generator).argsort(dim=1)
            order = order[order != y[:, None]].reshape(train.shape[0], k - 1)  # (T, K - 1): drop the true one
            wrong = torch.full((k - 1, n), -1, dtype=torch.int64)
            wrong[:, train.cpu()] = order.t()
            self.cache["wrong"] = wrong.to(graph.y.device)
        anchors = torch.where(graph.train_mask, graph.y, torch.full_like(graph.y, -1))
        if cfg.method == "sf":
            self.cache["x"], self.cache["op"] = model.class_graph(graph, anchors)
        elif cfg.method == "ff":
            self.cache["op"] = operator(cfg.layer, graph.edge_index, n)
            labels = torch.cat([anchors[None], self.cache["wrong"]])  # (K, N): positive copy, then the negatives
            self.cache["x"] = (graph.x, labels)  # the copies share x (layer_output's fast first layer)
        elif cfg.method == "ff-vn":
            self.cache["x"] = torch.cat([graph.x, model.class_features.to(graph.x.device)])
            graphs = torch.cat([anchors[None], self.cache["wrong"]])
            self.cache["ops"] = [operator(cfg.layer, with_class_nodes(graph.edge_index, n, g), n + k) for g in graphs]
        else:
            self.cache["op"] = operator(cfg.layer, graph.edge_index, n)

    def begin_epoch(self, epoch: int, units: range, x_train: Any, y_train: torch.Tensor) -> None:
        unit = units.start
        if unit == self.phase:
            return
        self.phase = unit  # a new layer: its input is the frozen layers' output, computed once
        self.model.active_layers = None if self.model.config.method == "bp" else unit + 1
        self.best, self.checks_since_best, self.epochs_in_phase = (-1.0, None), 0, 0
        model, cfg = self.model, self.model.config
        if cfg.method == "bp":
            return
        with torch.no_grad():
            h = self.cache["x"]
            for i in range(unit):
                if cfg.method == "ff-vn":  # the positive graph's output feeds every copy (forwardgnn)
                    h = model.layer_output(i, h, self.cache["ops"][0])
                else:
                    h = model.layer_output(i, h, self.cache["op"])
            self.cache["input"] = h

    def step(self, batch: Batch, generator: torch.Generator, units: range, stats: torch.Tensor) -> None:
        model, cfg, unit = self.model, self.model.config, units.start
        graph, train, n = self.graph, self.cache["train"], self.graph.num_nodes
        y = graph.y[train]
        drop, gen = cfg.dropout, self.generator
        if cfg.method == "bp":
            loss = F.cross_entropy(model.bp_logits(graph.x, self.cache["op"], drop, gen)[train], y)
        elif cfg.method == "sf" and cfg.hide_labels > 0:
            # the label trick: a random part of the training nodes loses its class-node edges this epoch and
            # carries the loss, the rest stays linked; the frozen layers below see the same graph
            hidden = torch.rand(train.shape[0], generator=gen) < cfg.hide_labels
            if not bool(hidden.any()):
                hidden[int(torch.randint(train.shape[0], (1,), generator=gen))] = True
            hidden = hidden.to(train.device)
            linked = torch.where(graph.train_mask, graph.y, torch.full_like(graph.y, -1))
            linked[train[hidden]] = -1
            x, op = model.class_graph(graph, linked)
            with torch.no_grad():
                for i in range(unit):
                    x = model.layer_output(i, x, op)
            h = model.layer_output(unit, x, op, drop, gen)
            query = train[hidden]
            loss = sf_loss(h[query], h[n:], graph.y[query], cfg.temperature)
            g = h[query].pow(2).mean(-1)
            stats[unit, 1] += g.detach().sum() * train.shape[0] / max(1, query.shape[0])
        elif cfg.method == "sf":
            h = model.layer_output(unit, self.cache["input"], self.cache["op"], drop, gen)
            loss = sf_loss(h[train], h[n:], y, cfg.temperature)
            g = h[train].pow(2).mean(-1)
            stats[unit, 1] += g.detach().sum()
        elif cfg.method == "ff":
            h = model.layer_output(unit, self.cache["input"], self.cache["op"], drop, gen)  # (K, N, d)
            loss = graph_ff_loss(h[0, train], h[1:, train], cfg.theta)
            # goodness in the metrics as ff_goodness shows it: the mean of squared outputs (sf's measure too)
            stats[unit, 1] += h[0, train].pow(2).mean(-1).detach().sum()
            stats[unit, 2] += h[1:, train].pow(2).mean(-1).detach().mean(0).sum()
        else:  # ff-vn: the same input through the positive and each negative graph
            outs = [model.layer_output(unit, self.cache["input"], op, drop, gen)[train] for op in self.cache["ops"]]
            loss = graph_ff_loss(outs[0], torch.stack(outs[1:]), cfg.theta)
            stats[unit, 1] += outs[0].pow(2).mean(-1).detach().sum()
            stats[unit, 2] += torch.stack(outs[1:]).pow(2).mean(-1).detach().mean(0).sum()
        optimizer = self.optimizers[unit]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        stats[unit, 0] += loss.detach()

    def end_epoch(self, stats: torch.Tensor) -> None:
        """Every ``val_every`` epochs: validation accuracy of the layers trained so far; keep the best weights."""
        self.epochs_in_phase += 1
        if self.epochs_in_phase % self.model.config.val_every:
            return
        model, graph = self.model, self.graph
        unit = model.local_units()[self.phase]
        with torch.no_grad():
            was = model.training
            model.eval()
            upto = None if model.config.method == "bp" else self.phase
            scores = model.predict_scores(graph, None, upto)
            model.train(was)
        mask = graph.val_mask
        accuracy = (scores[mask].argmax(1) == graph.y[mask]).float().mean().item()
        if accuracy > self.best[0]:
            self.best = (accuracy, copy.deepcopy(unit.state_dict()))
            self.checks_since_best = 0
        else:
            self.checks_since_best += 1

    def phase_finished(self, units: range) -> bool:
        return self.checks_since_best >= self.model.config.patience

    def end_phase(self, units: range) -> None:
        """Keep the layer's (or bp's) best-validation weights."""
        if self.best[1] is not None:
            self.model.local_units()[units.start].load_state_dict(self.best[1])
        self.best = (self.best[0], None)  # restored: nothing left to put back

    def end_fit(self) -> None:
        if self.best[1] is not None:  # stopped inside a phase (cancel, stop_after): its best weights, not its last
            self.model.local_units()[self.phase].load_state_dict(self.best[1])
        self.model.active_layers = None
        self.cache.clear()
