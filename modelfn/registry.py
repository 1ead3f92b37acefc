"""The model registry: a typed view of `models.toml`.

Training, the inference functions and the CDK app all read the registry through `load_registry`,
so a typo in `models.toml` fails at start-up with the key that is wrong, not halfway through a
deployment.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelfn.artifact import ALIAS_MAX, ALIAS_PATTERN, MODEL_NAME_MAX, MODEL_NAME_PATTERN, Runtime

Task = Literal["image-classification", "text-classification", "language-modeling"]

REPO_ROOT = Path(__file__).resolve().parent.parent


class TrainingEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    config: str = Field(description="Path of the model's training config (TOML), from the repo root.")
    preset: str = Field(default="full", description="Preset used when `modelfn train` is not told.")


class ServingEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime: Runtime = "onnxruntime"
    alias: str = Field(default="latest", pattern=ALIAS_PATTERN, max_length=ALIAS_MAX)
    # Lambda allows 128..10240 MB and 1..900 s.
    memory_mb: int = Field(default=1024, ge=128, le=10240)
    timeout_s: int = Field(default=15, ge=1, le=900)
    # X-Ray active tracing of the function: its init, invocations and calls show in the trace map.
    tracing: bool = False


class EdgeEntry(BaseModel):
    """How much an edge bundle's int8 graph may lose against fp32 before it is refused (issue 9)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Classifiers: test accuracy, as a fraction (0.01 = 1 point).
    max_accuracy_drop: float = Field(default=0.01, ge=0, le=1)
    # Language models: test perplexity, relative (0.02 = 2% higher).
    max_perplexity_increase: float = Field(default=0.02, ge=0)


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX)
    description: str = ""
    task: Task
    architecture: str = Field(description="Module name in training/models/.")
    dataset: str = Field(description="Loader module name in training/data/.")
    data_subdir: str = Field(description="Folder of the data set under the data directory.")
    training: TrainingEntry
    serving: ServingEntry = ServingEntry()
    edge: EdgeEntry = EdgeEntry()

    def training_config_path(self, root: Path = REPO_ROOT) -> Path:
        return root / self.training.config


class UnknownModelError(KeyError):
    """A model name that models.toml does not have; the message lists the ones it has."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelEntry]

    def get(self, name: str) -> ModelEntry:
        """Return the entry for `name`, or raise UnknownModelError naming the models that exist."""
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "(none)"
            raise UnknownModelError(f"unknown model {name!r}; models.toml has: {known}") from None

    def names(self) -> list[str]:
        """Model names in file order (the first one also answers the API's server-level health routes)."""
        return list(self.models)


class RegistryError(ValueError):
    """models.toml is missing or invalid; the message names the file and the bad key."""


def registry_path(path: str | Path | None = None) -> Path:
    """Resolve the registry file: explicit argument, then $MODELFN_REGISTRY, then the repo's models.toml."""
    if path is not None:
        return Path(path)
    env = os.environ.get("MODELFN_REGISTRY")
    return Path(env) if env else REPO_ROOT / "models.toml"


def parse_registry(text: str, source: str = "models.toml") -> Registry:
    """Parse and validate registry TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{source}: not valid TOML: {exc}") from exc
    models_raw = raw.get("models")
    if not isinstance(models_raw, dict) or not models_raw:
        raise RegistryError(f"{source}: needs at least one [models.<name>] table")
    unknown = set(raw) - {"models"}
    if unknown:
        raise RegistryError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    models: dict[str, ModelEntry] = {}
    for name, body in models_raw.items():
        if not isinstance(body, dict):
            raise RegistryError(f"{source}: [models.{name}] must be a table")
        try:
            models[name] = ModelEntry.model_validate({"name": name, **body})
        except ValidationError as exc:
            problems = "; ".join(
                f"models.{name}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors()
            )
            raise RegistryError(f"{source}: {problems}") from exc
    return Registry(models=models)


def load_registry(path: str | Path | None = None) -> Registry:
    """Load and validate the registry (see `registry_path` for where it is looked up)."""
    file = registry_path(path)
    if not file.is_file():
        raise RegistryError(
            f"model registry not found at {file}; run from the repository root or set MODELFN_REGISTRY"
        )
    return parse_registry(file.read_text(encoding="utf-8"), source=str(file))
