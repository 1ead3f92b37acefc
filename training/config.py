"""Training configs: one TOML file per model, one table per preset, validated at start-up.

A file looks like `training/configs/cifar10-cnn.toml`: `[smoke]`, `[full]`, ... each a complete
set of hyper-parameters, with `[<preset>.model]` holding the model's constructor arguments. A
typo fails here, naming the file, the preset and the key, not an hour into training.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from training.errors import TrainingError


class ConfigError(TrainingError):
    """A training config is missing or invalid; the message names the file, preset and key."""


class PresetConfig(BaseModel):
    """What every task's preset has; each task's trainer extends it with its own keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(gt=0, description="Passes over the training set.")
    parity_tolerance: float = Field(
        default=1e-4, gt=0, description="Max abs output difference, torch vs onnxruntime."
    )
    model: dict[str, Any] = Field(default_factory=dict, description="Model constructor arguments.")


class OptimisationConfig(PresetConfig):
    """What the shared loop (training/loop.py) needs: optimiser, LR schedule, clipping, precision."""

    batch_size: int = Field(gt=0, description="Examples (sequences for a language model) per step.")
    eval_batch_size: int = Field(default=500, gt=0, description="Examples per evaluation pass.")
    optimizer: Literal["sgd-nesterov", "sgd", "adamw"]
    lr: float = Field(gt=0, description="Peak learning rate, reached at the end of warmup.")
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD momentum; AdamW beta1.")
    weight_decay: float = Field(
        ge=0, description="Decoupled for AdamW, L2 for SGD; matrices only (no biases, norms)."
    )
    schedule: Literal["onecycle", "cosine", "step"] = Field(
        description=(
            "After linear warmup: onecycle decays linearly to 0, cosine along a half cosine to 0, "
            "step multiplies lr by decay_factor each epoch from epoch decay_after_epochs + 1 "
            "(Zaremba et al. 2014)."
        )
    )
    warmup_epochs: float = Field(
        default=0, ge=0, description="Epochs of linear warmup from lr * warmup_start_fraction."
    )
    warmup_start_fraction: float = Field(
        default=0.1, ge=0, le=1, description="Fraction of lr at step 0."
    )
    decay_after_epochs: int = Field(
        default=0, ge=0, description="step schedule: epochs at the full lr before decaying."
    )
    decay_factor: float = Field(
        default=0.5, gt=0, le=1, description="step schedule: lr multiplier per later epoch."
    )
    grad_clip: float | None = Field(
        default=None, gt=0, description="Max L2 norm of all gradients together; None: no clipping."
    )
    precision: Literal["fp32", "bf16"] = Field(
        default="fp32",
        description="bf16: autocast matrix products to bfloat16 on the CPU (weights stay fp32).",
    )
    early_stopping_patience: int | None = Field(
        default=None,
        gt=0,
        description=(
            "Stop after this many epochs without a better validation metric, and keep the best "
            "epoch's weights; None: train every epoch and keep the last (tasks with a validation "
            "split only)."
        ),
    )


class ImageClassifierConfig(OptimisationConfig):
    """Hyper-parameters of the image-classification trainer (units in the field descriptions)."""

    label_smoothing: float = Field(
        ge=0, lt=1, description="Probability mass spread over all classes."
    )
    crop_padding: int = Field(
        ge=0, description="Pixels of reflection padding before a random 32x32 crop."
    )
    hflip: bool = Field(description="Random horizontal flip with probability 0.5.")
    parity_images: int = Field(
        default=64, gt=0, description="Real test images for the ONNX parity check."
    )
    lookahead_every: int | None = Field(
        default=None,
        gt=0,
        description=(
            "Lookahead (Zhang et al. 2019; airbench's weight averaging): every this many steps "
            "and at each epoch's end, move slow weights lookahead_alpha of the way to the "
            "trained ones and restart from them; None: off."
        ),
    )
    lookahead_alpha: float = Field(
        default=0.5, gt=0, le=1, description="Step of the slow weights toward the fast ones."
    )


class LanguageModelConfig(OptimisationConfig):
    """Hyper-parameters of the language-model trainer (truncated back-propagation through time)."""

    bptt: int = Field(gt=0, description="Tokens per truncated back-propagation window.")
    train_tokens: int | None = Field(
        default=None, gt=0, description="Train on the first N training tokens only (quick presets)."
    )
    parity_sequences: int = Field(
        default=8, gt=0, description="Test-text rows of bptt tokens for the ONNX parity check."
    )


class TextClassifierConfig(OptimisationConfig):
    """Hyper-parameters of the text-classification trainer."""

    min_count: int = Field(
        default=1, ge=1, description="Keep a word or n-gram seen in at least this many reviews."
    )
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    selection_folds: int = Field(
        default=0,
        ge=0,
        description=(
            "How the epoch count is chosen: 0 on the data set's validation split; k >= 2 by "
            "k-fold cross-validation over training + validation data (text i in fold i % k)."
        ),
    )
    parity_texts: int = Field(
        default=64, gt=0, description="Real test texts for the ONNX parity check."
    )
    tfidf_baseline: bool = Field(
        default=False,
        description="Also score TF-IDF + logistic regression in the same run (needs scikit-learn).",
    )


# The one top-level table of a config file that is not a preset: `modelfn tune`'s search space.
SEARCH_TABLE = "search"

Schema = TypeVar("Schema", bound=PresetConfig)


def _problems(exc: ValidationError, prefix: str) -> str:
    return "; ".join(
        f"{prefix}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
    )


def load_preset(path: Path, preset: str, schema: type[Schema]) -> Schema:
    """Read `path`, validate every preset in it against `schema`, return preset `preset`.

    Every preset is validated, not only the one asked for, so a typo in `[full]` shows up in the
    first smoke run.
    """
    if not path.is_file():
        raise ConfigError(
            f"training config {path} does not exist (named in models.toml training.config)"
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    presets: dict[str, Schema] = {}
    for name, body in raw.items():
        if name == SEARCH_TABLE:
            continue  # validated by training.tune.load_search
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: top-level key {name!r} must be a [preset] table")
        try:
            presets[name] = schema.model_validate(body)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {_problems(exc, f'[{name}]')}") from exc
    if preset not in presets:
        known = ", ".join(presets) or "(none)"
        raise ConfigError(f"{path}: no preset [{preset}]; presets in the file: {known}")
    return presets[preset]


MODEL_PREFIX = "model."  # an override key "model.dropout" sets the preset's [model] dropout


def with_overrides(base: Schema, values: dict[str, Any], where: str) -> Schema:
    """`base` with `values` set (`model.<argument>` keys into its model table), validated by name.

    How `modelfn tune` applies a trial and `training.cross_validate` a candidate: a key the
    schema does not have fails here, naming it, instead of being carried along unused.
    """
    body = base.model_dump()
    for key, value in values.items():
        if key.startswith(MODEL_PREFIX):
            body["model"][key.removeprefix(MODEL_PREFIX)] = value
        else:
            body[key] = value
    try:
        return type(base).model_validate(body)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_problems(exc, 'override')}") from None
