"""The friendly route's messages: `PredictRequest` (inputs and task parameters) and
`PredictResponse` (one task output per input). functions/routes/predict.py serves them; the
OpenAPI examples (functions/examples.py) and the benchmark's peers answer with them too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from functions.tasks import TaskOutput
from modelfn.artifact import Precision


class PredictRequest(BaseModel):
    # Examples are the served version's own (functions/examples.py), in /openapi.json.
    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] = Field(
        min_length=1,
        description=(
            "Images: base64 PNG/JPEG strings (data: URLs too) or HxWx3 arrays of 0..255 pixels. "
            "Text models: strings. Tensor models: one object per example, mapping each input's "
            "name to that example's values as a nested list."
        ),
        # The tasks check each item themselves, naming it in a 400 (`inputs[2]: ...`).
        json_schema_extra={
            "items": {"anyOf": [{"type": "string"}, {"type": "array"}, {"type": "object"}]}
        },
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Task options: top_k for classifiers; mode (next, score, generate), top_k, max_tokens, "
            "temperature and seed for language models."
        ),
    )


class PredictResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    version: str
    precision: Precision = Field(
        default="fp32",
        description="The graph that answered: the version's fp32 model.onnx or its int8 "
        "model.int8.onnx (models.toml serving.precision).",
    )
    outputs: list[TaskOutput] = Field(description="One per input, in order.")
