"""Pydantic result models of the MCP tools: they become each tool's outputSchema and structuredContent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobState = Literal["queued", "running", "done", "failed", "cancelled"]


class EpochMetrics(BaseModel):
    """Metrics of the last finished epoch (test_accuracy only when there is a test split)."""

    model_config = ConfigDict(extra="allow")

    epoch: int = Field(description="epochs finished (across phases for the greedy schedule)")
    epochs: int = Field(description="epochs planned")
    loss: float | None = Field(None, description="mean FF loss over the layers")
    train_accuracy: float | None = Field(None, description="accuracy on up to 2000 training rows")
    val_accuracy: float | None = Field(None, description="a graph: accuracy on its validation nodes")
    test_accuracy: float | None = Field(None, description="accuracy on the held-out split")
    train_seconds: float | None = Field(None, description="training seconds so far, evaluation excluded")


class TrainJob(BaseModel):
    """What ff_train returns: the job and, if it finished while waiting, its final metrics."""

    job_id: str
    model: str
    state: JobState
    epoch: int = Field(description="epochs finished so far")
    epochs: int = Field(description="epochs planned")
    metrics: EpochMetrics | None = Field(None, description="last epoch's metrics; null before the first epoch ends")
    error: str | None = Field(None, description="why the job failed or stopped early")
    warnings: list[str] = Field(default_factory=list,
                                description="what the data checks noticed but did not refuse (constant features)")


class JobStatus(TrainJob):
    """State of one training job: ff_train's fields plus progress within the epoch and timing."""

    step: int = Field(0, description="mini-batches done in the current epoch")
    steps: int = Field(0, description="mini-batches per epoch")
    created: str = Field(description="ISO 8601 UTC time the job was submitted")
    elapsed_seconds: float = Field(0.0, description="seconds since the job started running")
    history: list[dict[str, Any]] = Field(
        default_factory=list,
        description="one record per finished epoch: epoch, loss, layer_loss, goodness_pos, goodness_neg, "
                    "train_accuracy, test_accuracy, seconds, samples_per_second (as `ff-mcp train --json`)")


class Prediction(BaseModel):
    """One label per row, and each row's score per label."""

    labels: list[int]
    scores: list[list[float]] = Field(description="(rows, classes): one score per label, higher is more likely "
                                                  "(goodness, or readout probabilities)")
    method: str = Field(description="the prediction method that made the scores (see ff_model_info)")
    label_values: list[int] | None = Field(None, description="the label of each score column when the model was "
                                                             "trained on labels other than 0..K-1; null otherwise")


class LayerGoodness(BaseModel):
    goodness: list[float] = Field(description="one goodness value per row")
    p_positive: list[float] = Field(description="one p(positive) per row: sigmoid(goodness - threshold)")


class GoodnessResult(BaseModel):
    """Per-layer goodness of each row, first hidden layer first."""

    layers: list[LayerGoodness]


class ModelCard(BaseModel):
    """A saved model: its configuration, final metrics and file facts."""

    name: str
    uri: str = Field(description="the ff://models/{name} resource")
    created: str = Field(description="ISO 8601 UTC time the model was saved")
    bytes: int = Field(description="checkpoint file size")
    state: str | None = Field(None, description="'done', or 'cancelled' if training stopped early")
    dataset: str | None = None
    kind: str | None = Field(None, description="the model kind (variant), e.g. 'ff'; see ff_variants")
    methods: list[str] = Field(default_factory=list,
                               description="prediction methods ff_predict accepts, the default first")
    config: dict[str, Any] = Field(default_factory=dict, description="the model configuration")
    train_config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict, description="final epoch metrics")
    extra: dict[str, Any] = Field(default_factory=dict, description="anything else stored with the model")
    error: str | None = Field(None, description="set when the file cannot be read")


class ModelList(BaseModel):
    models: list[ModelCard]


class Deleted(BaseModel):
    model: str
    deleted: bool


class VariantOption(BaseModel):
    name: str
    type: str = Field(description="what values it takes")
    default: Any = None
    help: str = ""


class VariantEntry(BaseModel):
    """One FF variant (a registered model kind) and the options ff_train's `options` accepts for it."""

    name: str
    description: str
    data_kinds: list[str] = Field(description="the data it trains on: rows, images, graph")
    options: list[VariantOption]


class VariantList(BaseModel):
    variants: list[VariantEntry]


class DatasetEntry(BaseModel):
    name: str
    available: bool
    location: str | None = Field(None, description="where it was found, or how it is produced")
    searched: list[str] = Field(default_factory=list, description="directories searched, in order")
    num_classes: int
    in_features: int
    train_size: int
    test_size: int
    image_shape: list[int] | None = None
    description: str = ""
    detail: str | None = Field(None, description="why it is unavailable")
    data_kind: str = Field("rows", description="rows, or graph (node classification: sizes count labelled nodes; "
                                               "train with variant 'gnn')")
    nodes: int | None = Field(None, description="a graph's nodes")
    val_size: int | None = Field(None, description="a graph's validation nodes (the standard split)")


class DatasetList(BaseModel):
    datasets: list[DatasetEntry]


class PlotResult(BaseModel):
    """ff_plot's summary; the figure itself comes as PNG image content."""

    model: str
    epochs: int = Field(description="epochs in the model's history")
    goodness: bool = Field(description="whether the figure has the goodness panel (test data of the model's "
                                       "data set found on this machine)")
    width: int
    height: int
