"""Training configs: one TOML file per model, one table per preset, validated at start-up.

A file looks like `training/configs/cifar10-cnn.toml`: `[smoke]`, `[full]`, ... each a complete
set of hyper-parameters, with `[<preset>.model]` holding the model's constructor arguments. A
typo fails here, naming the file, the preset and the key, not an hour into training.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

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


class ImageClassifierConfig(PresetConfig):
    """Hyper-parameters of the image-classification trainer (units in the field descriptions)."""

    batch_size: int = Field(gt=0, description="Images per optimiser step.")
    eval_batch_size: int = Field(
        default=500, gt=0, description="Images per forward pass in evaluation."
    )
    optimizer: Literal["sgd-nesterov", "adamw"]
    lr: float = Field(gt=0, description="Peak learning rate, reached at the end of warmup.")
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD momentum; AdamW beta1.")
    weight_decay: float = Field(
        ge=0, description="Decoupled for AdamW, L2 for SGD; conv/linear weights only."
    )
    schedule: Literal["onecycle", "cosine"] = Field(
        description="onecycle: linear warmup then linear decay to 0; cosine: linear warmup then cosine to 0."
    )
    warmup_epochs: float = Field(
        ge=0, description="Epochs of linear warmup from lr * warmup_start_fraction."
    )
    warmup_start_fraction: float = Field(
        default=0.1, ge=0, le=1, description="Fraction of lr at step 0."
    )
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


Schema = TypeVar("Schema", bound=PresetConfig)
DataclassT = TypeVar("DataclassT")


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


def build_dataclass(cls: type[DataclassT], values: dict[str, Any], where: str) -> DataclassT:
    """Construct dataclass `cls` from `values`, rejecting unknown keys and wrong types by name."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__}; known: {', '.join(sorted(known))}"
        )
    try:
        return TypeAdapter(cls).validate_python(values)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {_problems(exc, cls.__name__)}") from exc
