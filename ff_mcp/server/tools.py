"""The ff_* MCP tools: train jobs, job status and cancel, predict, goodness, models, data sets.

Tools are defined inside ``register_tools`` so their schemas carry the configured limits
(``maxItems`` of x is ``max_rows``, and so on). Each tool validates, calls the engine and
shapes a pydantic result; client mistakes become ToolError with the engine's own text.
(No ``from __future__ import annotations`` here: the signatures must evaluate with the limits.)
"""

import base64
import dataclasses
import logging
import math
import time
from typing import Annotated, Any, Literal

import anyio
import torch
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import Field

from ff_mcp.data import (DATASETS, GRAPH_DATASETS, Dataset, GraphDataset, list_datasets, load_data, load_dataset,
                         validate_features)
from ff_mcp.data import canonical_name
from ff_mcp.data.graphs import graph_from_arrays, split_masks
from ff_mcp.engine import (
    goodness_names,
    model_kind_names,
    negative_names,
    predict_in_chunks,
    resolve_device,
    variant_catalog,
)
from ff_mcp.data.checks import checked_arrays, to_class_indices, to_user_labels
from ff_mcp.history import epoch_record
from ff_mcp.recipes import recipe_names
from ff_mcp.server.errors import client_errors
from ff_mcp.server.executor import CallToken
from ff_mcp.server.jobs import Job
from ff_mcp.server.limits import Limits
from ff_mcp.server.registry import NAME_PATTERN, validate_name
from ff_mcp.server.schemas import (
    DatasetEntry,
    DatasetList,
    Deleted,
    EpochMetrics,
    GoodnessResult,
    JobStatus,
    LayerGoodness,
    ModelCard,
    ModelList,
    PlotResult,
    Prediction,
    TrainJob,
    VariantEntry,
    VariantList,
)
from ff_mcp.server.state import AppState

log = logging.getLogger(__name__)

PROGRESS_TICK = 0.05  # seconds between looks at a job while ff_train waits
PROGRESS_MIN_GAP = 0.5  # at most two progress notifications a second
HEARTBEAT_SECONDS = 4.0  # progress at least this often while waiting (clients reset timeouts on it)
CANCEL_WAIT_SECONDS = 5.0  # ff_job_cancel waits this long for the job to stop

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

ModelName = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN,
                                 description="model name: 1-64 characters from A-Z a-z 0-9 _ . -")]
JobId = Annotated[str, Field(min_length=1, max_length=64, description="a job_id returned by ff_train")]


CHUNK_ROWS = 1000  # rows computed between two checks for cancellation and the time limit


def client_key(ctx: Context) -> str | None:
    """Who is calling, for per-client quotas over HTTP: the MCP session id when the client has one, else
    its clientInfo name and address. None over stdio (one process, one client). Not an identity
    assertion (a client can send anything); it keeps one well-behaved client from starving the others."""
    headers = ctx.headers
    if headers is None:
        return None
    session = headers.get("mcp-session-id")
    if session:
        return f"session {session}"
    request = ctx.request_context.request
    host = getattr(getattr(request, "client", None), "host", None) or "an unknown address"
    from ff_mcp.server.tasks import request_meta

    info = request_meta(ctx.request_context.meta).get("io.modelcontextprotocol/clientInfo") or {}
    name = info.get("name") if isinstance(info, dict) else None
    return f"{name or 'an unnamed client'} at {host}"


def state_of(ctx: Context) -> AppState:
    return ctx.request_context.lifespan_context


def register_tools(server: MCPServer, limits: Limits) -> None:
    """Add every ff_* tool to `server`, with schema bounds from `limits`."""
    Row = Annotated[list[float], Field(min_length=1, max_length=limits.max_features)]
    Rows = Annotated[list[Row], Field(min_length=1, max_length=limits.max_rows,
                                      description=f"feature rows (at most {limits.max_rows} rows of "
                                                  f"at most {limits.max_features} finite numbers, all the same length)")]
    # any integers: labels that are not 0..K-1 ({3, 7}, {-1, 1}) are mapped to classes and back (data/checks.py)
    Label = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
    NodeId = Annotated[int, Field(ge=0, le=2**31 - 1)]
    Edges = Annotated[list[Annotated[list[NodeId], Field(min_length=2, max_length=2)]],
                      Field(max_length=limits.max_edges,
                            description=f"a graph's edges as [source, target] node ids (rows of x), at most "
                                        f"{limits.max_edges}; made undirected, self loops dropped")]

    @server.tool(
        title="Train a Forward-Forward model",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False,
                                    open_world_hint=False),
    )
    async def ff_train(
        ctx: Context,
        name: Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN,
                                   description="name to save the model under (replaces a model of that name)")],
        dataset: Annotated[str | None, Field(max_length=64, description=f"a data set of this machine: "
                                             f"{', '.join(DATASETS)}, or the graphs {', '.join(GRAPH_DATASETS)} "
                                             f"(see ff_datasets); or give x and y")] = None,
        x: Annotated[list[Row] | None, Field(min_length=2, max_length=limits.max_rows,
                                             description="training rows instead of a data set; a seeded 20% "
                                                         "is held out for test accuracy")] = None,
        y: Annotated[list[Label] | None, Field(min_length=2, max_length=limits.max_rows,
                                               description="one integer class label per row of x (any integers; "
                                                           "predictions come back in the same labels); with "
                                                           "edges: 0..K-1, or -1 for an unlabelled node")] = None,
        edges: Annotated[Edges | None, Field(description="with x and y: the rows are a graph's nodes and these its "
                                                         "edges (variant 'gnn')")] = None,
        split: Annotated[list[Literal["train", "val", "test", "none"]] | None,
                         Field(max_length=limits.max_rows,
                               description="with edges: each node's part (val nodes stop each layer early, test "
                                           "nodes are scored); default: a seeded 60/20/20 % split of the labelled "
                                           "nodes")] = None,
        image_shape: Annotated[list[Annotated[int, Field(ge=1, le=4096)]] | None,
                               Field(min_length=2, max_length=3,
                                     description="with x: each row is an image of this shape, [H, W] or [C, H, W] "
                                                 "(channels first, rows flattened in that order); variant 'conv' "
                                                 "needs it")] = None,
        hidden: Annotated[list[Annotated[int, Field(ge=1, le=limits.max_hidden)]] | None,
                          Field(min_length=1, max_length=limits.max_depth,
                                description="hidden layer sizes, first layer first (variant 'conv': channels per "
                                            "conv layer; default: the recipe's)")] = None,
        epochs: Annotated[int | None, Field(ge=1, le=limits.max_epochs,
                                            description="passes over the training rows (default: the recipe's)")] = None,
        batch_size: Annotated[int | None, Field(ge=1, le=limits.max_batch_size,
                                                description="rows per mini-batch (default: the recipe's)")] = None,
        recipe: Annotated[Literal[tuple(recipe_names())],
                          Field(description="defaults for what is not given: 'auto' picks network, epochs, batch "
                                            "size and learning rate from the data's size (within this server's "
                                            "limits)")] = "auto",
        lr: Annotated[float | None, Field(gt=0, le=10, allow_inf_nan=False,
                                          description="learning rate (default 1e-3, Adam)")] = None,
        goodness: Annotated[Literal[tuple(goodness_names())], Field(description="goodness function")] = "sum_squares",
        schedule: Annotated[Literal["simultaneous", "greedy"],
                            Field(description="train all layers together, or one after another")] = "simultaneous",
        negatives: Annotated[Literal[tuple(negative_names())],
                             Field(description="how negative data is made")] = "wrong_label",
        variant: Annotated[Literal[tuple(model_kind_names())] | None,
                           Field(description="the FF method (model kind); ff_variants lists them; default: 'ff', "
                                             "or 'gnn' for a graph")] = None,
        options: Annotated[dict[Annotated[str, Field(max_length=64)], Any] | None,
                           Field(max_length=64, description="the variant's options by name (ff_variants lists each "
                                                            "with its type and default); unknown names are "
                                                            "refused")] = None,
        seed: Annotated[int, Field(ge=0, le=2**31 - 1, description="seed for weights, shuffling and negatives")] = 0,
        device: Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:[0-9]{1,2})?)$",
                                     description="auto, cpu, cuda, cuda:N or mps")] = "auto",
        wait_seconds: Annotated[float, Field(ge=0, le=limits.max_wait_seconds,
                                             description="wait up to this long for the job, with progress; "
                                                         "0 returns at once")] = 0,
    ) -> TrainJob:
        """Start training an FF model as a job; returns its job_id at once, or waits up to wait_seconds."""
        state = state_of(ctx)

        client = client_key(ctx)

        def prepare() -> Job:
            with client_errors():
                validate_name(name, "name")
                data = _training_data(state, name, dataset, x, y, edges, split, seed, image_shape)
                kind = variant or ("gnn" if isinstance(data, GraphDataset) else "ff")
                return _submit(state, name, data, hidden, epochs, batch_size, lr, goodness, schedule, negatives,
                               seed, device, kind, options or {}, recipe, client=client)

        job = await anyio.to_thread.run_sync(prepare)
        if wait_seconds > 0:
            await _wait_with_progress(ctx, state, job, wait_seconds)
        return train_job_result(job)

    @server.tool(title="Training job status", annotations=READ_ONLY)
    def ff_job_status(ctx: Context, job_id: JobId) -> JobStatus:
        """State, epoch and latest metrics of a training job."""
        with client_errors():
            return _status(state_of(ctx).jobs.get(job_id))

    @server.tool(
        title="Cancel a training job",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                    open_world_hint=False),
    )
    async def ff_job_cancel(ctx: Context, job_id: JobId) -> JobStatus:
        """Stop a job after its current mini-batch; the weights trained so far are saved (state cancelled)."""
        with client_errors():
            job = state_of(ctx).jobs.cancel(job_id)
        with anyio.move_on_after(CANCEL_WAIT_SECONDS):
            while not job.finished.is_set():
                await anyio.sleep(0.05)
        return _status(job)

    @server.tool(title="Predict labels", annotations=READ_ONLY)
    async def ff_predict(
        ctx: Context,
        model: ModelName,
        x: Rows,
        method: Annotated[str | None, Field(max_length=64, description="prediction method (ff_model_info lists a "
                                                                       "model's methods); default: the one it "
                                                                       "was evaluated with")] = None,
        edges: Annotated[Edges | None, Field(description="a graph model (gnn): the edges between the rows of x")] = None,
        y: Annotated[list[Annotated[int, Field(ge=-1, le=2**31 - 1)]] | None,
                     Field(max_length=limits.max_rows,
                           description="a graph model: the labels already known (-1 for nodes to predict); "
                                       "omitted on the training graph: its own training labels")] = None,
    ) -> Prediction:
        """Predict one label per row of x with a saved model (for a gnn model: per node of the graph x, edges);
        scores are per-label goodness, class probabilities or readout probabilities."""
        state = state_of(ctx)

        def work(token: CallToken) -> Prediction:
            checkpoint = state.registry.load(model)
            network = checkpoint.model
            chosen = _predict_method(checkpoint, method)
            graph = _graph_input(network, x, edges, y, state.limits, "ff_predict")
            if graph is not None:
                token.check()
                with torch.no_grad():
                    scores = network.eval().predict_scores(graph, chosen)
                scores = torch.nan_to_num(scores.float(), nan=0.0, posinf=3.4e38, neginf=-3.4e38)
                return Prediction(labels=scores.argmax(dim=1).tolist(), scores=scores.tolist(), method=chosen)
            rows = _features(x, network.in_features, state.limits)
            scores = predict_in_chunks(network, rows, chosen, chunk=CHUNK_ROWS, check=token.check)
            scores = torch.nan_to_num(scores.float(), nan=0.0, posinf=3.4e38, neginf=-3.4e38)
            values = checkpoint.extra.get("label_values")
            return Prediction(labels=to_user_labels(scores.argmax(dim=1).tolist(), values), scores=scores.tolist(),
                              method=chosen, label_values=values)

        with client_errors():
            return await state.executor.run(work)

    @server.tool(title="Per-layer goodness", annotations=READ_ONLY)
    async def ff_goodness(
        ctx: Context,
        model: ModelName,
        x: Rows,
        labels: Annotated[list[Label] | None, Field(max_length=limits.max_rows,
                                                    description="one label per row to embed; omit for the neutral "
                                                                "(no label) input (a gnn model: the best label)")] = None,
        edges: Annotated[Edges | None, Field(description="a graph model (gnn): the edges between the rows of x")] = None,
    ) -> GoodnessResult:
        """Goodness and p(positive) of every row at every layer, for the given labels or a neutral label
        (a gnn model: of every node of the graph x, edges)."""
        state = state_of(ctx)

        def work(token: CallToken) -> GoodnessResult:
            checkpoint = state.registry.load(model)
            network = checkpoint.model
            graph = _graph_input(network, x, edges, None, state.limits, "ff_goodness")
            if graph is not None:
                chosen = None if labels is None else _goodness_labels(labels, graph.num_nodes, network)
                token.check()
                with torch.no_grad():
                    layers = network.eval().layer_goodness(graph, chosen)
                return GoodnessResult(layers=[LayerGoodness(goodness=_finite(part["goodness"]),
                                                            p_positive=_finite(part["p_positive"])) for part in layers])
            rows = _features(x, network.in_features, state.limits)
            classes = None if labels is None else to_class_indices(labels, checkpoint.extra.get("label_values"),
                                                                   "labels")
            label_tensor = _goodness_labels(classes, rows.shape[0], network)
            parts = []
            with torch.no_grad():
                for i in range(0, rows.shape[0], CHUNK_ROWS):
                    token.check()
                    chunk_labels = None if label_tensor is None else label_tensor[i : i + CHUNK_ROWS]
                    parts.append(network.layer_goodness(rows[i : i + CHUNK_ROWS], chunk_labels))
            return GoodnessResult(layers=[
                LayerGoodness(goodness=_finite(torch.cat([part[k]["goodness"] for part in parts])),
                              p_positive=_finite(torch.cat([part[k]["p_positive"] for part in parts])))
                for k in range(len(parts[0]))
            ])

        with client_errors():
            return await state.executor.run(work)

    @server.tool(title="Plot a model's training", annotations=READ_ONLY)
    async def ff_plot(ctx: Context, model: ModelName) -> Annotated[CallToolResult, PlotResult]:
        """A PNG of a saved model's training: loss per layer and accuracy per epoch, and each layer's goodness
        with the true label vs a wrong label on its data set's test rows (when this machine has them)."""
        state = state_of(ctx)

        def work(token: CallToken) -> tuple[PlotResult, bytes]:
            from ff_mcp.plot import goodness_of_pairs, png_size, trained_on, training_figure

            checkpoint = state.registry.load(model)
            history = (checkpoint.metrics or {}).get("history") or []
            if not history:
                raise ValueError(f"model {model!r} keeps no training history to plot")
            goodness = None
            dataset = checkpoint.extra.get("dataset")
            if dataset in DATASETS and trained_on(checkpoint.extra, dataset):
                try:
                    data = load_dataset(dataset, data_dir=state.config.dataset_dir)
                except FileNotFoundError:
                    data = None
                token.check()
                if (data is not None and data.in_features == checkpoint.model.in_features
                        and data.num_classes == checkpoint.model.num_classes):
                    goodness = goodness_of_pairs(checkpoint.model, data.x_test, data.y_test) or None
            token.check()
            png = training_figure(history, goodness, f"{model}: {checkpoint.kind}")
            width, height = png_size(png)
            return PlotResult(model=model, epochs=len(history), goodness=goodness is not None, width=width,
                              height=height), png

        with client_errors():
            result, png = await state.executor.run(work)
        return CallToolResult(content=[TextContent(type="text", text=result.model_dump_json()),
                                       ImageContent(type="image", data=base64.b64encode(png).decode("ascii"),
                                                    mime_type="image/png")],
                              structured_content=result.model_dump(mode="json"))

    @server.tool(title="List models", annotations=READ_ONLY)
    def ff_models(ctx: Context) -> ModelList:
        """Every saved model with its configuration and final metrics."""
        return ModelList(models=state_of(ctx).registry.list())

    @server.tool(title="Model details", annotations=READ_ONLY)
    def ff_model_info(ctx: Context, model: ModelName) -> ModelCard:
        """One saved model's configuration, final metrics, creation time and file size."""
        with client_errors():
            return state_of(ctx).registry.info(model)

    @server.tool(
        title="Delete a model",
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                                    open_world_hint=False),
    )
    def ff_model_delete(ctx: Context, model: ModelName) -> Deleted:
        """Delete a saved model (refused while a training job for it is queued or running)."""
        state = state_of(ctx)
        with client_errors():
            validate_name(model)
            active = state.jobs.active_for(model)
            if active is not None:
                raise ToolError(f"model {model!r} has job {active.job_id} ({active.state}); "
                                f"cancel it with ff_job_cancel before deleting")
            with state.registry.writing(model, "an ff_model_delete call"):  # refused while another call writes it
                state.registry.delete(model)
        return Deleted(model=model, deleted=True)

    @server.tool(title="List FF variants", annotations=READ_ONLY)
    def ff_variants(ctx: Context) -> VariantList:
        """Every FF variant ff_train accepts, with its description and its options (type, default, meaning)."""
        return VariantList(variants=[VariantEntry(**entry) for entry in variant_catalog()])

    @server.tool(title="List data sets", annotations=READ_ONLY)
    def ff_datasets(ctx: Context) -> DatasetList:
        """The data sets this machine has for ff_train, and where each was found."""
        infos = list_datasets(state_of(ctx).config.dataset_dir)
        return DatasetList(datasets=[
            DatasetEntry(name=i.name, available=i.available, location=i.location, searched=list(i.searched),
                         num_classes=i.num_classes, in_features=i.in_features, train_size=i.train_size,
                         test_size=i.test_size, image_shape=list(i.image_shape) if i.image_shape else None,
                         description=i.description, detail=i.detail, data_kind=i.data_kind,
                         **({"nodes": i.nodes, "val_size": i.val_size} if i.data_kind == "graph" else {}))
            for i in infos
        ])


# ---- helpers (plain functions, no MCP) --------------------------------------------------------


def _training_data(state: AppState, name: str, dataset: str | None, x: Any, y: Any, edges: Any = None,
                   split: Any = None, seed: int = 0, image_shape: list[int] | None = None) -> Dataset | GraphDataset:
    if dataset is not None and (x is not None or y is not None or edges is not None):
        raise ValueError("give either dataset or x and y (with edges for a graph), not both")
    if image_shape is not None and (x is None or edges is not None):
        raise ValueError("image_shape: only rows given as x (not a data set, not a graph) take an image shape; a "
                         "data set has its own (see ff_datasets)")
    if split is not None and edges is None:
        raise ValueError("split: only a graph given as x, y and edges takes a split per node")
    if edges is not None:
        if x is None or y is None:
            raise ValueError("edges need x (one feature row per node) and y (one label per node, -1 if unknown)")
        _check_rows(x, state.limits, "x")
        if len(y) != len(x):
            raise ValueError(f"y has {len(y)} labels but x has {len(x)} nodes; give one label per node (-1: unknown)")
        bad = next((i for i, v in enumerate(y) if not -1 <= v < state.limits.max_classes), None)
        if bad is not None:
            raise ValueError(f"y[{bad}] is {y[bad]}; a graph's labels must be in [0, {state.limits.max_classes}) "
                             f"or -1 for an unlabelled node")
        train, val, test = split_masks(split, y, seed)
        return graph_from_arrays(x, edges, y, train, val, test, name=name)
    if dataset is None:
        if x is None and y is None:
            raise ValueError(f"give dataset (one of: {', '.join(DATASETS)}) or training rows x with labels y")
        if x is None or y is None:
            raise ValueError("x and y must be given together: x the rows, y one label per row")
        _check_rows(x, state.limits, "x")
        if len(y) != len(x):
            raise ValueError(f"y has {len(y)} labels but x has {len(x)} rows; give one label per row")
        classes = len(set(y))
        if classes > state.limits.max_classes:
            raise ValueError(f"y has {classes} distinct labels; at most {state.limits.max_classes} classes are "
                             f"allowed (max_classes)")
        data = checked_arrays(x, y, name=name)
        if image_shape is not None:
            if math.prod(image_shape) != data.in_features:
                raise ValueError(f"image_shape {list(image_shape)} holds {math.prod(image_shape)} values but each row "
                                 f"of x has {data.in_features}")
            data = dataclasses.replace(data, image_shape=tuple(image_shape))
        return data
    if isinstance(dataset, str) and dataset.strip().lower() in GRAPH_DATASETS:
        return load_data(dataset, data_dir=state.config.dataset_dir)
    key = canonical_name(dataset)
    return load_data(key, data_dir=state.config.dataset_dir)


def _submit(state: AppState, name: str, data: Dataset | GraphDataset, hidden: list[int] | None, epochs: int | None,
            batch_size: int | None, lr: float | None, goodness: str, schedule: str, negatives: str, seed: int,
            device: str, variant: str = "ff", variant_options: dict[str, Any] | None = None,
            recipe: str = "auto", client: str | None = None) -> Job:
    from ff_mcp.training import TrainOptions, check_variant_data

    check_variant_data(variant, data)
    limits = state.limits
    options = TrainOptions(hidden=tuple(hidden) if hidden else None, epochs=epochs, batch_size=batch_size, lr=lr,
                           goodness=goodness, schedule=schedule, negatives=negatives, seed=seed, device=device,
                           variant=variant, options=dict(variant_options or {}), recipe=recipe).resolved(data)
    # what the recipe chose stays within this server's limits (what the client gave was checked by the schema)
    hidden = list(options.hidden)[: limits.max_depth] if hidden is None else hidden
    hidden = [min(h, limits.max_hidden) for h in hidden]
    layer_rounds = len(hidden) if schedule == "greedy" else 1  # greedy: every layer trains for `epochs` in turn
    if epochs is not None and epochs * layer_rounds > limits.max_epochs:
        raise ValueError(f"epochs: schedule 'greedy' trains each of the {layer_rounds} layers for {epochs} epochs, "
                         f"{epochs * layer_rounds} in all; max_epochs is {limits.max_epochs}, so give epochs <= "
                         f"{limits.max_epochs // layer_rounds}")
    epochs = max(1, min(options.epochs, limits.max_epochs // layer_rounds))
    batch_size = min(options.batch_size, limits.max_batch_size)
    options = dataclasses.replace(options, hidden=tuple(hidden), epochs=epochs, batch_size=batch_size)
    if len(hidden) > limits.max_depth or any(not 1 <= h <= limits.max_hidden for h in hidden):
        raise ValueError(f"hidden must have 1-{limits.max_depth} sizes, each in [1, {limits.max_hidden}], got {hidden}")
    if not 1 <= epochs <= limits.max_epochs:
        raise ValueError(f"epochs must be in [1, {limits.max_epochs}], got {epochs}")
    if data.in_features > limits.max_features:
        raise ValueError(f"data set {data.name!r} has {data.in_features} features; max_features is {limits.max_features}")
    resolve_device(device)
    image_shape = getattr(data, "image_shape", None)
    if negatives == "hybrid" and (image_shape is None or len(image_shape) != 2):
        raise ValueError("negatives 'hybrid' needs image data with a 2-D image_shape (a data set such as digits "
                         "or mnist); use 'noise' or 'wrong_label' for rows given as x")
    options.model_config(data)  # raises ValueError on a combination the engine cannot build, or a bad option
    options.train_config()
    planned = epochs * layer_rounds
    registry = state.registry
    busy = state.jobs.active_for(name)
    if busy is not None:
        raise ValueError(f"model {name!r} already has job {busy.job_id} ({busy.state}); "
                         f"wait for it or cancel it with ff_job_cancel")
    holder = "a training job"
    registry.claim(name, holder)  # refused while another call writes this model; released when the job ends

    def work(job: Job) -> str:
        from ff_mcp.training import train_model

        trained = train_model(data, options, callbacks=[job], should_stop=job.should_stop)
        result = trained.result
        metrics = {
            "state": result.state,
            "final": dict(result.final),
            "history": [epoch_record(h) for h in result.history],
            "train_seconds": round(result.train_seconds, 3),
            "samples_per_second": round(result.samples_per_second, 1),
            "device": result.device,
            "torch": torch.__version__,
        }
        label_values, warnings = getattr(data, "label_values", None), getattr(data, "warnings", ())
        extra = {"dataset": data.name, "source": data.source, "job_id": job.job_id,
                 **({"label_values": list(label_values)} if label_values else {}),
                 **({"warnings": list(warnings)} if warnings else {})}
        registry.save(name, trained.network.cpu(), trained.train_config.to_dict(), _json_safe(metrics), extra)
        return result.state

    try:
        job = state.jobs.submit(name, planned, work, on_finish=lambda: registry.release(name, holder),
                                client=client, max_per_client=limits.max_jobs_per_client)
        job.warnings = list(getattr(data, "warnings", ()))
        return job
    except BaseException:
        registry.release(name, holder)
        raise


async def _wait_with_progress(ctx: Context, state: AppState, job: Job, wait_seconds: float) -> None:
    """Wait for `job` up to wait_seconds, sending increasing progress at least every HEARTBEAT_SECONDS."""
    deadline = time.monotonic() + wait_seconds
    sent, sent_at = -1.0, -math.inf
    while True:
        finished = job.finished.is_set()
        now = time.monotonic()
        value = job.progress
        moved = value > sent and now - sent_at >= PROGRESS_MIN_GAP
        if moved or finished or now - sent_at >= HEARTBEAT_SECONDS:
            value = max(value, sent + 1e-6)  # progress must increase, even for a heartbeat
            await ctx.report_progress(value, float(job.epochs), progress_message(state, job))
            sent, sent_at = value, now
        if finished or now >= deadline:
            return
        await anyio.sleep(min(PROGRESS_TICK, max(0.0, deadline - now)))


def train_job_result(job: Job) -> TrainJob:
    """What ff_train answers (and a task of ff_train completes with) for ``job``."""
    return TrainJob(job_id=job.job_id, model=job.model, state=job.state, epoch=job.epoch, epochs=job.epochs,
                    metrics=_metrics(job), error=job.error, warnings=list(job.warnings))


def progress_message(state: AppState, job: Job) -> str:
    """One line on a job: queue position, or epoch, batch, loss and test accuracy."""
    if job.state == "queued":
        return f"{job.model}: queued (position {state.jobs.queue_position(job) + 1})"
    text = f"{job.model}: {job.state}, epoch {job.epoch}/{job.epochs}"
    if job.state == "running" and job.steps:
        text += f", batch {job.step}/{job.steps}"
    m = job.metrics or {}
    if m.get("loss") is not None:
        text += f", loss {m['loss']:.4f}"
    if m.get("test_accuracy") is not None:
        text += f", test accuracy {m['test_accuracy']:.4f}"
    return text


def _metrics(job: Job) -> EpochMetrics | None:
    if not job.metrics:
        return None
    return EpochMetrics(**_json_safe(job.metrics))


def _status(job: Job) -> JobStatus:
    return JobStatus(job_id=job.job_id, model=job.model, state=job.state, epoch=job.epoch, epochs=job.epochs,
                     step=job.step, steps=job.steps, metrics=_metrics(job), error=job.error, created=job.created,
                     elapsed_seconds=round(job.elapsed, 3), history=list(job.history), warnings=list(job.warnings))


def _check_rows(x: Any, limits: Limits, field: str) -> None:
    if len(x) > limits.max_rows:
        raise ValueError(f"{field} has {len(x)} rows; at most {limits.max_rows} are allowed (max_rows)")
    width = len(x[0]) if len(x) else 0
    if width > limits.max_features:
        raise ValueError(f"{field} rows have {width} features; at most {limits.max_features} are allowed (max_features)")


def _features(x: Any, in_features: int, limits: Limits) -> torch.Tensor:
    _check_rows(x, limits, "x")
    return validate_features(x, in_features)


def _graph_input(network: Any, x: Any, edges: Any, y: Any, limits: Limits, tool: str) -> Any:
    """The graph (x, edges, known labels y) a gnn model scores, or None for a model of rows; errors name the field."""
    graph_model = "graph" in getattr(network, "data_kinds", ())
    if not graph_model:
        if edges is not None or y is not None:
            field = "edges" if edges is not None else "y"
            raise ValueError(f"{field}: this model (kind {network.kind!r}) scores rows; {field} applies to gnn models")
        return None
    if edges is None:
        raise ValueError(f"edges: this model is a graph model (kind {network.kind!r}); {tool} needs the graph's edges "
                         f"([source, target] node ids, [] for none) with x its node features")
    _check_rows(x, limits, "x")
    if y is not None and len(y) != len(x):
        raise ValueError(f"y has {len(y)} labels but x has {len(x)} nodes; give one per node (-1: to predict)")
    if y is not None:
        bad = next((i for i, v in enumerate(y) if v >= network.num_classes), None)
        if bad is not None:
            raise ValueError(f"y[{bad}] is {y[bad]}; labels must be in [0, {network.num_classes}) or -1")
    labels = y if y is not None else [-1] * len(x)
    graph = graph_from_arrays(x, edges, labels, num_classes=network.num_classes, labels_needed=False).graph
    if graph.x.shape[1] != network.in_features:
        raise ValueError(f"x: this model expects {network.in_features} features per node, got {graph.x.shape[1]}")
    return graph


def _predict_method(checkpoint: Any, method: str | None = None) -> str:
    """``method`` if the model has it; without one, the method it was evaluated with (else its preferred one)."""
    model = checkpoint.model
    methods = list(model.prediction_methods())
    if not methods:
        hint = "use ff_color_score" if checkpoint.extra.get("kind") == "color" else "it has no prediction method"
        raise ToolError(f"this model has no labels to predict ({hint}); ff_goodness still works")
    if method is not None:
        if method not in methods:
            raise ValueError(f"method must be one of {methods} for this model, got {method!r}")
        return method
    trained_with = checkpoint.train_config.get("predict_method")
    return trained_with if trained_with in methods else methods[0]


def _goodness_labels(labels: list[int] | None, rows: int, network: Any) -> torch.Tensor | None:
    if labels is None:
        return None
    if getattr(getattr(network, "labels", None), "mode", None) == "none":
        raise ValueError("labels: this model was trained without labels in its input (label_mode 'none'); omit labels")
    if len(labels) != rows:
        raise ValueError(f"labels has {len(labels)} entries but x has {rows} rows; give one label per row")
    k = network.num_classes
    bad = next((i for i, v in enumerate(labels) if not 0 <= v < k), None)
    if bad is not None:
        raise ValueError(f"labels[{bad}] is {labels[bad]}; labels must be in [0, {k}) for this model")
    return torch.tensor(labels, dtype=torch.int64)


def _finite(t: torch.Tensor) -> list[float]:
    return torch.nan_to_num(t.detach().float(), nan=0.0, posinf=3.4e38, neginf=-3.4e38).tolist()


def _json_safe(value: Any) -> Any:
    """Replace NaN and inf (not valid JSON) by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
