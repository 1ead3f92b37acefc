"""POST /models/{name}/predict: the friendly route (images in, labels out)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from functions.deps import ModelDep
from functions.tasks import TaskOutput

router = APIRouter(tags=["predict"])


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"inputs": ["<base64 PNG>"], "parameters": {"top_k": 3}}]},
    )

    inputs: list[Any] = Field(
        min_length=1,
        description="Base64 PNG/JPEG strings (data: URLs too) or HxWx3 arrays of 0..255 pixels.",
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Task options, e.g. top_k."
    )


class PredictResponse(BaseModel):
    model: str
    version: str
    outputs: list[TaskOutput] = Field(description="One per input, in order.")


@router.post("/models/{name}/predict", response_model=PredictResponse)
def predict(request: PredictRequest, model: ModelDep) -> PredictResponse:
    """Predict one output per input with the served model."""
    outputs = model.predict(request.inputs, request.parameters)
    return PredictResponse(
        model=model.manifest.name, version=model.manifest.version, outputs=outputs
    )
