"""A registry entry's recipe: its task, architecture and data set, looked up, and the steps every
trainer run starts with (read the data, pick the device, build the model once the data has fixed
its sizes). `train_model`, `modelfn tune` and `training.cross_validate` all start here.

What varies per model is looked up in three plain tables keyed by the registry entry's fields:
`ARCHITECTURES[entry.architecture]` (architectures/: the nn.Module and its config dataclass),
`DATASETS[entry.dataset]` (loader, fingerprint, input preprocessing) and `TASKS[entry.task]`
(config schema and trainer). A new model is new rows here plus its modules, not a rewrite: the
PTB LSTM and the IMDB classifier joined that way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from architectures import ARCHITECTURES, ArchitectureSpec, ModelConfigError, model_config
from modelfn.artifact import DataFingerprint, ImagePreprocessing, TextPreprocessing
from modelfn.registry import ModelEntry, load_registry
from training.config import (
    ConfigError,
    ImageClassifierConfig,
    LanguageModelConfig,
    PresetConfig,
    TextClassifierConfig,
)
from training.data import cifar10, imdb, ptb
from training.data.location import data_root_for
from training.errors import TrainingError
from training.image_classification import train_image_classifier
from training.language_model import train_language_model
from training.loop import training_device
from training.text_classification import train_text_classifier
from training.trained_model import TrainedModel

Log = Callable[[str], None]


# --- the tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    load: Callable[[Path], Any]
    fingerprint: Callable[[Any], DataFingerprint]
    # How the model's inputs are prepared; recorded in the manifest for serving to replay.
    preprocessing: Callable[[Any], ImagePreprocessing | TextPreprocessing]


@dataclass(frozen=True)
class TaskSpec:
    config_schema: type[PresetConfig]  # validates each preset of the training config file
    train: Callable[..., TrainedModel]
    uses_device: bool = True  # trains on a GPU when one is present (else always the CPU)


def _cifar10_preprocessing(_: Any) -> ImagePreprocessing:
    return ImagePreprocessing(height=32, width=32, mean=cifar10.MEAN, std=cifar10.STD)


DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        load=cifar10.load_cifar10,
        fingerprint=cifar10.fingerprint,
        preprocessing=_cifar10_preprocessing,
    ),
    "ptb": DatasetSpec(
        load=ptb.load_ptb, fingerprint=ptb.fingerprint, preprocessing=lambda _: ptb.PREPROCESSING
    ),
    "imdb": DatasetSpec(
        load=imdb.load_imdb,
        fingerprint=imdb.fingerprint,
        preprocessing=lambda _: imdb.PREPROCESSING,
    ),
}
TASKS: dict[str, TaskSpec] = {
    "image-classification": TaskSpec(
        config_schema=ImageClassifierConfig, train=train_image_classifier
    ),
    "language-modeling": TaskSpec(config_schema=LanguageModelConfig, train=train_language_model),
    # Sparse bag-of-n-grams over 254k features: a CPU job, seconds per epoch.
    "text-classification": TaskSpec(
        config_schema=TextClassifierConfig, train=train_text_classifier, uses_device=False
    ),
}


def _lookup(table: dict[str, Any], key: str, what: str, model: str) -> Any:
    try:
        return table[key]
    except KeyError:
        raise TrainingError(
            f"models.toml [models.{model}] names {what} {key!r}, which training/recipe.py does "
            f"not know; use one of: {', '.join(sorted(table))} (or add a row to its table)"
        ) from None


# --- a recipe ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """One registry entry with its task, architecture and data set looked up."""

    entry: ModelEntry
    task: TaskSpec
    arch: ArchitectureSpec
    dataset: DatasetSpec

    def load_data(self, data_dir: str | Path | None) -> Any:
        """The entry's data set from `<data root>/<data_subdir>` (see `data_root_for`)."""
        return load_data(self.entry, data_dir)

    def device(self) -> torch.device:
        """Where the task trains: a GPU when one is present and the task uses it, else the CPU."""
        return training_device() if self.task.uses_device else torch.device("cpu")

    def model_config(self, cfg: PresetConfig, *, where: str) -> Any:
        """The preset's `[model]` table as the architecture's config dataclass (ConfigError)."""
        try:
            return model_config(self.arch, dict(cfg.model), where=where)
        except ModelConfigError as exc:
            raise ConfigError(str(exc)) from None

    def builder(self, cfg: PresetConfig, *, where: str, log: Log) -> Callable[..., nn.Module]:
        """`model_builder` for the preset's `[model]` table; `where` names that table."""
        config = self.model_config(cfg, where=where)
        return model_builder(self.arch, config, explicit=cfg.model, where=where, log=log)


def recipe_for(name: str) -> Recipe:
    """The recipe of models.toml's `name` (UnknownModelError, or TrainingError naming a table)."""
    entry = load_registry().get(name)
    trained = entry.trained()  # RegistryError for an imported model: nothing to train
    return Recipe(
        entry=entry,
        task=_lookup(TASKS, entry.task, "task", name),
        arch=_lookup(ARCHITECTURES, trained.architecture, "architecture", name),
        dataset=_lookup(DATASETS, trained.dataset, "dataset", name),
    )


def load_data(entry: ModelEntry, data_dir: str | Path | None) -> Any:
    """The data set of registry entry `entry` from `<data root>/<data_subdir>`, as its trainer
    reads it; `data_dir` as `data_root_for` takes it (FileNotFoundError where it is missing)."""
    trained = entry.trained()
    dataset: DatasetSpec = _lookup(DATASETS, trained.dataset, "dataset", entry.name)
    return dataset.load(data_root_for(data_dir, trained.data_subdir) / trained.data_subdir)


def quiet_log(line: str) -> None:
    """The log of torchrun ranks other than 0, and of `modelfn tune`'s trials."""


def model_builder(
    arch: ArchitectureSpec, config: Any, *, explicit: dict[str, Any], where: str, log: Log
) -> Callable[..., nn.Module]:
    """`build(**derived)`: the model, with the sizes only the data knows filled in by the task.

    A task calls `build(num_classes=..., vocab_size=...)` once it has read the data; a value the
    training config sets explicitly must agree, so a stale `num_classes = 10` fails by name
    instead of training a model that cannot be served.
    """

    def build(**derived: Any) -> nn.Module:
        for key, value in derived.items():
            if key in explicit and explicit[key] != value:
                raise TrainingError(
                    f"{where} {key} = {explicit[key]!r}, but the data gives {value!r}; set it to "
                    f"{value!r} or leave it out"
                )
        model = arch.build(dataclasses.replace(config, **derived))
        log(f"{type(model).__name__}: {sum(p.numel() for p in model.parameters()):,} parameters")
        return model

    return build
