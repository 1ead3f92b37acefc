"""The model registry: a typed view of `models.toml`.

Training, the inference functions and the CDK app all read the registry through `load_registry`,
so a typo in `models.toml` fails at start-up with the key that is wrong, not halfway through a
deployment.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelfn.artifact import (
    ALIAS_MAX,
    ALIAS_PATTERN,
    MODEL_NAME_MAX,
    MODEL_NAME_PATTERN,
    Precision,
    Runtime,
)
from modelfn.canary import CanaryEntry
from modelfn.capture import CaptureEntry

Task = Literal[
    "image-classification",
    "text-classification",
    "language-modeling",
    "feature-extraction",
    "tensor",
]
# Tasks `modelfn import` can bring a model in as (the language model is trained here only; the
# text tasks come from a Hugging Face folder, with its tokenizer).
IMPORTABLE_TASKS: tuple[Task, ...] = (
    "image-classification", "text-classification", "feature-extraction", "tensor"
)  # fmt: skip

REPO_ROOT = Path(__file__).resolve().parent.parent


class TrainingEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    config: str = Field(
        description="Path of the model's training config (TOML), from the repo root."
    )
    preset: str = Field(default="full", description="Preset used when `modelfn train` is not told.")


CpuArchitecture = Literal["x86_64", "arm64"]

# The retention periods CloudWatch Logs accepts, in days.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip


class ProvisionedConcurrencyEntry(BaseModel):
    """Warm environments kept on the stage's function alias, scaled between `min` and `max`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(ge=1, description="Environments kept initialised at all times (billed).")
    max: int = Field(ge=1, description="Upper bound for target-tracking auto-scaling.")
    # Application Auto Scaling adds environments when this fraction of them is busy.
    target_utilization: float = Field(default=0.7, ge=0.1, le=0.9)

    @model_validator(mode="after")
    def _min_below_max(self) -> ProvisionedConcurrencyEntry:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be at least min ({self.min})")
        return self


# An HTTP API integration times out after 30 s (API Gateway quotas: "Maximum integration timeout",
# not adjustable); a second less leaves the function room to answer before the API gives up.
API_TIMEOUT_MAX_S = 29


class ServingEntry(BaseModel):
    """How the model's Lambda function runs; every key is optional (docs/deploy.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime: Runtime = "onnxruntime"
    # Which graph the zip function serves: the version's model.onnx, or its model.int8.onnx,
    # quantized and held to the `edge` table's threshold before it was published (docs/serving.md,
    # "Precision"); the function then never fetches the fp32 graph.
    precision: Precision = "fp32"
    alias: str = Field(default="latest", pattern=ALIAS_PATTERN, max_length=ALIAS_MAX)
    # Lambda allows 128..10240 MB and 1..900 s; every function is served through the HTTP API,
    # whose integration waits at most 30 s (a quota that cannot be raised), so timeout_s stops
    # at API_TIMEOUT_MAX_S (checked in _deployable, with the reason).
    memory_mb: int = Field(default=1024, ge=128, le=10240)
    timeout_s: int = Field(default=15, ge=1)
    # X-Ray active tracing of the function: its init, invocations and calls show in the trace map.
    tracing: bool = False
    # Lambda CPU. Unset: arm64 (about 20% cheaper per GB-second) for onnxruntime, whose every
    # wheel exists for aarch64 (the layer build fails at synth, naming the wheel, if one stops
    # existing); x86_64 for torch, whose CPU-only aarch64 image has not been built or run here.
    cpu: CpuArchitecture | None = None
    # /tmp, where the artifact is cached; Lambda allows 512..10240 MB (512 is free).
    ephemeral_storage_mb: int = Field(default=512, ge=512, le=10240)
    # Concurrency reserved for (and capping) this function; unset shares the account's pool.
    reserved_concurrency: int | None = Field(default=None, ge=1)
    # SnapStart (zip functions, Python >= 3.12): environments resume from a snapshot taken after
    # init instead of importing and loading the model again.
    snapstart: bool = False
    provisioned_concurrency: ProvisionedConcurrencyEntry | None = None
    # The function's log group; unset: the stage's modelfn:log-retention-days.
    log_retention_days: int | None = None

    @property
    def lambda_cpu(self) -> CpuArchitecture:
        """The CPU the function runs on: `cpu`, else the runtime's default."""
        if self.cpu is not None:
            return self.cpu
        return "x86_64" if self.runtime == "torch" else "arm64"

    @model_validator(mode="after")
    def _deployable(self) -> ServingEntry:
        if self.timeout_s > API_TIMEOUT_MAX_S:
            raise ValueError(
                f"timeout_s = {self.timeout_s}: the function is served through an API Gateway "
                "HTTP API, which waits at most 30 s for it (a quota that cannot be raised); past "
                "that the caller gets a 503 while the function runs on, billed. Set timeout_s "
                f"<= {API_TIMEOUT_MAX_S} and make the request cheaper (memory_mb buys CPU)"
            )
        if self.precision == "int8" and self.runtime != "onnxruntime":
            raise ValueError(
                f"precision int8 is served by the onnxruntime zip function (model.int8.onnx); "
                f"runtime {self.runtime} rebuilds the eager model from its fp32 weights. Set "
                'runtime = "onnxruntime", or precision = "fp32"'
            )
        # Lambda refuses these combinations at deploy time, minutes in; say why at load time.
        if self.snapstart and self.provisioned_concurrency is not None:
            raise ValueError(
                "snapstart and provisioned_concurrency cannot be combined: AWS Lambda does not "
                "support provisioned concurrency on a SnapStart function. Pick one: SnapStart "
                "cuts every cold start at no idle cost; provisioned concurrency removes cold "
                "starts for the environments it keeps warm, billed while idle"
            )
        if self.snapstart and self.runtime == "torch":
            raise ValueError(
                "snapstart is for zip functions: Lambda SnapStart does not support container "
                "images, and runtime torch deploys one; use provisioned_concurrency instead"
            )
        if self.snapstart and self.ephemeral_storage_mb > 512:
            raise ValueError(
                f"snapstart needs ephemeral_storage_mb <= 512 (got {self.ephemeral_storage_mb}): "
                "Lambda SnapStart does not support more ephemeral storage"
            )
        if (
            self.reserved_concurrency is not None
            and self.provisioned_concurrency is not None
            and self.provisioned_concurrency.max > self.reserved_concurrency
        ):
            raise ValueError(
                f"provisioned_concurrency.max ({self.provisioned_concurrency.max}) exceeds "
                f"reserved_concurrency ({self.reserved_concurrency}): Lambda cannot keep more "
                "environments warm than the function may run"
            )
        if (
            self.log_retention_days is not None
            and self.log_retention_days not in LOG_RETENTION_DAYS
        ):
            raise ValueError(
                f"log_retention_days {self.log_retention_days} is not a CloudWatch retention "
                f"period; use one of: {', '.join(map(str, LOG_RETENTION_DAYS))}"
            )
        return self


class EdgeEntry(BaseModel):
    """How much an edge bundle's int8 graph may lose against fp32 before it is refused (issue 9)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Classifiers: test accuracy, as a fraction (0.01 = 1 point).
    max_accuracy_drop: float = Field(default=0.01, ge=0, le=1)
    # Language models: test perplexity, relative (0.02 = 2% higher).
    max_perplexity_increase: float = Field(default=0.02, ge=0)
    # Feature extractors: the lowest cosine similarity of a test text's int8 embedding to fp32's.
    min_cosine_similarity: float = Field(default=0.99, ge=-1, le=1)


def service_name(model: str) -> str:
    """The `service` of a deployed model function's logs and metrics (POWERTOOLS_SERVICE_NAME)."""
    return f"modelfn-{model}"


class TrainedEntry(NamedTuple):
    """A trained model's entry fields, present for sure (`ModelEntry.trained`)."""

    architecture: str
    dataset: str
    data_subdir: str
    training: TrainingEntry


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX)
    description: str = ""
    task: Task
    # `modelfn import` wrote this entry: the model was brought in, not trained here, so it has no
    # architecture, data set or training table (its versions' manifests say where it came from).
    imported: bool = False
    architecture: str | None = Field(default=None, description="Module name in architectures/.")
    dataset: str | None = Field(default=None, description="Loader module name in training/data/.")
    data_subdir: str | None = Field(
        default=None, description="Folder of the data set under the data directory."
    )
    training: TrainingEntry | None = None
    serving: ServingEntry = ServingEntry()
    edge: EdgeEntry = EdgeEntry()
    canary: CanaryEntry = CanaryEntry()
    capture: CaptureEntry = CaptureEntry()  # off unless sample_rate is set (modelfn/capture.py)

    @model_validator(mode="after")
    def _trained_or_imported(self) -> ModelEntry:
        trained = {
            "architecture": self.architecture,
            "dataset": self.dataset,
            "data_subdir": self.data_subdir,
            "training": self.training,
        }
        if self.imported:
            extra = sorted(k for k, v in trained.items() if v is not None)
            if extra:
                raise ValueError(
                    f"an imported model is not trained here: remove {', '.join(extra)} (or "
                    "imported = true, to train it with modelfn train)"
                )
            if self.task not in IMPORTABLE_TASKS:
                raise ValueError(
                    f"task {self.task} cannot be imported; use one of: {', '.join(IMPORTABLE_TASKS)}"
                )
        else:
            missing = sorted(k for k, v in trained.items() if v is None)
            if missing:
                raise ValueError(
                    f"a model trained here needs {', '.join(missing)} (or imported = true for a "
                    "model brought in with modelfn import)"
                )
        return self

    @model_validator(mode="after")
    def _int8_can_be_scored(self) -> ModelEntry:
        if self.serving.precision == "int8" and self.task == "tensor":
            raise ValueError(
                "serving.precision int8 needs test data the int8 graph is scored on before it "
                "is published, and a tensor model declares no pre-processing to feed it: serve "
                'it with precision = "fp32"'
            )
        return self

    def trained(self) -> TrainedEntry:
        """This entry's training fields, for the code that trains; RegistryError if imported."""
        if self.imported:
            raise RegistryError(
                f"{self.name} was imported (models.toml imported = true): it has no data set or "
                "training config; import a new version with modelfn import instead"
            )
        assert self.architecture and self.dataset and self.data_subdir and self.training
        return TrainedEntry(self.architecture, self.dataset, self.data_subdir, self.training)

    def training_config_path(self, root: Path = REPO_ROOT) -> Path:
        return root / self.trained().training.config


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
