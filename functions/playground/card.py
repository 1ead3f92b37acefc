"""The model card: what the page shows about the served version, all from its artifact.

Everything here comes from the manifest and the version's own files, read through their sha256
(`read_verified`): the version and its provenance (created_at, frameworks, and either the data
fingerprint and the training run or, for an imported model, where it came from and how it was
checked), its metrics split into overall and per-class figures (an imported model may have
none), the report plots training wrote, its tensors, and the examples of `examples.json`.
"""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from functions.examples import describe, prompt, shipped_examples
from functions.limits import MAX_NEW_TOKENS, MAX_TOP_K
from functions.model_loader import LoadedModel
from functions.tasks.tensor import example_inputs
from modelfn.artifact import (
    DataFingerprint,
    ImportRecord,
    Precision,
    QuantizationRecord,
    Scores,
    TensorSpec,
    TrainingRecord,
)

# The one figure the index shows per model: what each task's users compare versions by.
HEADLINE_METRICS = {
    "image-classification": "accuracy",
    "text-classification": "accuracy",
    "language-modeling": "test_perplexity",
}
# Plots are artifact files shown as images; only these types are served, with this media type.
PLOT_TYPES = {".png": "image/png"}
# What an example is called on the page, per task ("cifar10 test image 3 (cat)").
NOUNS = {
    "image-classification": "image",
    "text-classification": "review",
    "language-modeling": "sentence",
    "feature-extraction": "text",
    "tensor": "example",
}


class _Public(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Headline(_Public):
    name: str
    value: float


class ClassFigures(_Public):
    label: str
    figures: dict[str, float] = Field(description="e.g. {'precision': 0.8, 'f1': 0.7}")


class Plot(_Public):
    file: str
    title: str
    url: str = Field(description="Relative to the model's page: files/<file>.")


class CardExample(_Public):
    input: str = Field(
        description="As the predict route takes it: base64 PNG, the text, or (tensor models) "
        "the JSON text of one example's named tensors."
    )
    summary: str
    label: str | None = None
    prompt: str | None = Field(
        default=None, description="Language models: the opening to continue."
    )


class Limits(_Public):
    top_k: int | None = Field(
        description="The most labels or next words one request may ask for; None: no ranking."
    )
    max_tokens: int | None = Field(
        default=None, description="Language models: words per continuation."
    )


class ModelCard(_Public):
    name: str
    version: str
    precision: Precision = Field(description="The graph this function serves: fp32 or int8.")
    quantization: QuantizationRecord | None = Field(
        description="How the version's int8 graph was made and what it lost against fp32."
    )
    alias: str
    task: str
    created_at: datetime
    frameworks: dict[str, str]
    architecture: str | None = Field(description="The module in architectures/; None if imported.")
    labels: list[str]
    scores: Scores = Field(
        description="Classifiers: what `score` is, a softmax or sigmoid (multi-label) "
        "probability, or the logit."
    )
    headline: Headline | None
    metrics: dict[str, float] = Field(description="Overall figures on the held-out split.")
    per_class: list[ClassFigures]
    data: DataFingerprint | None
    training: TrainingRecord | None
    imported: ImportRecord | None
    inputs: list[TensorSpec] = Field(description="The graph's inputs (OIP names and shapes).")
    outputs: list[TensorSpec] = Field(description="The graph's outputs.")
    plots: list[Plot]
    examples: list[CardExample]
    limits: Limits


def model_card(model: LoadedModel, alias: str) -> ModelCard:
    manifest = model.manifest
    headline = HEADLINE_METRICS.get(manifest.task, "accuracy")
    overall, per_class = split_metrics(manifest.metrics, manifest.labels)
    is_lm = manifest.task == "language-modeling"
    return ModelCard(
        name=manifest.name,
        version=manifest.version,
        precision=model.precision,
        quantization=manifest.quantization,
        alias=alias,
        task=manifest.task,
        created_at=manifest.created_at,
        frameworks=manifest.frameworks,
        architecture=manifest.architecture.module if manifest.architecture else None,
        labels=manifest.labels,
        scores=manifest.scores,
        headline=Headline(name=headline, value=manifest.metrics[headline])
        if headline in manifest.metrics
        else None,
        metrics=overall,
        per_class=per_class,
        data=manifest.data,
        training=manifest.training,
        imported=manifest.imported,
        inputs=manifest.inputs,
        outputs=manifest.outputs,
        plots=[
            Plot(file=name, title=plot_title(name), url=f"files/{name}")
            for name in manifest.files
            if is_plot(name)
        ],
        examples=card_examples(model),
        limits=Limits(
            top_k=MAX_TOP_K if is_lm else len(manifest.labels) or None,
            max_tokens=MAX_NEW_TOKENS if is_lm else None,
        ),
    )


def split_metrics(
    metrics: dict[str, float], labels: list[str]
) -> tuple[dict[str, float], list[ClassFigures]]:
    """Overall figures, and the `<figure>.<label>` ones (training's per-class keys) by label."""
    by_label: dict[str, dict[str, float]] = {label: {} for label in labels}
    overall = {}
    for key, value in metrics.items():
        figure, _, label = key.partition(".")
        if label in by_label:
            by_label[label][figure] = value
        else:
            overall[key] = value
    return overall, [ClassFigures(label=l, figures=f) for l, f in by_label.items() if f]


def is_plot(name: str) -> bool:
    return any(name.endswith(suffix) for suffix in PLOT_TYPES)


def plot_title(name: str) -> str:
    """'confusion_matrix.png' -> 'Confusion matrix'."""
    stem = name.rsplit(".", 1)[0].replace("_", " ").replace("-", " ")
    return stem[:1].upper() + stem[1:]


def card_examples(model: LoadedModel) -> list[CardExample]:
    examples = shipped_examples(model)
    if examples is None:
        return []
    task = model.manifest.task
    noun = NOUNS.get(task, "input")
    shown = []
    for example in examples.examples:
        text = example.input
        if task == "tensor":  # the page's form takes one example's named tensors
            try:
                text = json.dumps(example_inputs(text))
            except (ValueError, KeyError, TypeError):
                continue  # not an example this page could send; the docs leave it out too
        shown.append(
            CardExample(
                input=text,
                summary=describe(example, examples, noun),
                label=example.label,
                prompt=prompt(text) if task == "language-modeling" else None,
            )
        )
    return shown
