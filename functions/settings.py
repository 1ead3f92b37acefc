"""What a function serves and from where, resolved once at init.

Each setting is resolved as: explicit argument, then environment variable, then default (the
order Powertools uses), and a missing required one fails the init with its variable's name.

| setting          | environment variable      | default        |
|------------------|---------------------------|----------------|
| model            | MODELFN_MODEL             | required       |
| store_uri        | MODELFN_STORE_URI         | required       |
| alias            | MODELFN_ALIAS             | "latest"       |
| cache_dir        | MODELFN_CACHE_DIR         | /tmp/modelfn   |
| s3_endpoint_url  | MODELFN_S3_ENDPOINT_URL   | None (AWS)     |
| load_retry_s     | MODELFN_LOAD_RETRY_S      | 15             |
| alias_ttl_s      | MODELFN_ALIAS_TTL_S       | 60             |
| runtime          | MODELFN_RUNTIME           | "onnxruntime"  |
| precision        | MODELFN_PRECISION         | "fp32"         |
| playground       | MODELFN_PLAYGROUND        | False (off)    |
| memory_mb        | AWS_LAMBDA_FUNCTION_MEMORY_SIZE | None (not limited) |
| capture_sample_rate | MODELFN_CAPTURE_SAMPLE_RATE | 0 (off)      |
| capture_raw      | MODELFN_CAPTURE_RAW       | False          |

`memory_mb` is the function's memory as Lambda sets it (`modelfn serve` sets it from models.toml):
a canary version is loaded beside the stable one only where both fit it (modelfn/budget.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from modelfn.artifact import (
    MODEL_NAME_MAX,
    MODEL_NAME_PATTERN,
    Precision,
    Runtime,
    is_alias,
    is_version,
)
from modelfn.capture import RAW_ENV, SAMPLE_RATE_ENV

ENV_VARS = {
    "model": "MODELFN_MODEL",
    "store_uri": "MODELFN_STORE_URI",
    "alias": "MODELFN_ALIAS",
    "cache_dir": "MODELFN_CACHE_DIR",
    "s3_endpoint_url": "MODELFN_S3_ENDPOINT_URL",
    "load_retry_s": "MODELFN_LOAD_RETRY_S",
    "alias_ttl_s": "MODELFN_ALIAS_TTL_S",
    "runtime": "MODELFN_RUNTIME",
    "precision": "MODELFN_PRECISION",
    "playground": "MODELFN_PLAYGROUND",
    "memory_mb": "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "capture_sample_rate": SAMPLE_RATE_ENV,
    "capture_raw": RAW_ENV,
}

_HINTS = {
    "model": "the registry name of the model this function serves, e.g. cifar10-cnn",
    "store_uri": "where artifacts are published: s3://BUCKET[/PREFIX] or a folder path",
}


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names its environment variable."""


class FunctionSettings(BaseModel):
    """The settings of one model's function (see the module docstring for the variables)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The model and alias become store keys and cache folders: the artifact contract's names only.
    model: str = Field(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX)
    store_uri: str = Field(min_length=1)
    alias: str = Field(default="latest", description="Alias or version to serve.")
    # Lambda's only writable place is /tmp (512 MB to 10 GB, kept while the sandbox is warm).
    cache_dir: Path = Path("/tmp/modelfn")
    s3_endpoint_url: str | None = None
    load_retry_s: float = Field(
        default=15.0, ge=0, description="Seconds between load attempts after a failed load."
    )
    # A warm sandbox re-reads its alias at most this often (a conditional GET), so moving an alias
    # (promote, rollback) reaches running functions without a redeploy. 0 checks on every request.
    alias_ttl_s: float = Field(
        default=60.0, ge=0, description="Seconds between checks of the alias for a new version."
    )
    # The engine: the zip function's onnxruntime, or eager torch from safetensors in the
    # container image (models.toml `serving.runtime`).
    runtime: Runtime = "onnxruntime"
    # Which graph of the version the onnxruntime function serves (models.toml
    # `serving.precision`): model.onnx, or model.int8.onnx, without fetching model.onnx.
    precision: Precision = "fp32"
    # The model's page and card (modelfn.api_routes.PLAYGROUND_ROUTES): off unless a stage turns
    # it on, so a deployed function answers its API routes only; `modelfn serve` turns it on.
    playground: bool = False
    # Lambda's memory setting (MB); None: not limited (a test or a plain process), so a canary's
    # version is always loaded beside the stable one.
    memory_mb: int | None = Field(default=None, ge=128)
    # Sampled capture (models.toml [models.X.capture], modelfn/capture.py): the share of answered
    # requests recorded, and whether their inputs are recorded as sent.
    capture_sample_rate: float = Field(default=0.0, ge=0, le=1)
    capture_raw: bool = False

    @field_validator("alias")
    @classmethod
    def _alias_or_version(cls, value: str) -> str:
        if not (is_alias(value) or is_version(value)):
            raise ValueError(
                "not an alias (lower-case words joined by hyphens, e.g. latest, prod) "
                "nor a version (YYYYMMDDTHHMMSSZ-xxxxxxxx)"
            )
        return value

    @classmethod
    def resolve(cls, environ: Mapping[str, str] | None = None, **explicit: Any) -> FunctionSettings:
        """Explicit keyword arguments, then `environ` (default: os.environ), then the defaults.

        Example: `FunctionSettings.resolve(model="cifar10-cnn", store_uri="s3://bucket/models")`.
        """
        env = os.environ if environ is None else environ
        unknown = set(explicit) - set(ENV_VARS)
        if unknown:
            raise SettingsError(f"unknown settings {sorted(unknown)}; known: {sorted(ENV_VARS)}")
        values: dict[str, Any] = {}
        for field, variable in ENV_VARS.items():
            value = explicit.get(field)
            if value is None:
                value = env.get(variable) or None  # an empty variable counts as unset
            if value is not None:
                values[field] = value
        for field, hint in _HINTS.items():
            if field not in values:
                raise SettingsError(f"{ENV_VARS[field]} is not set: set it to {hint}")
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{ENV_VARS[name]}={values.get(name)!r}: {err['msg']}"
                for err in exc.errors()
                for name in [str(err["loc"][0])]
            )
            raise SettingsError(f"invalid function settings: {problems}") from None
