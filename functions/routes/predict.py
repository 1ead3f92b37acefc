"""POST /models/{name}/predict: the friendly route (images or texts in, answers out)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from functions.deps import ModelDep
from functions.request_body import JsonRoute
from functions.tasks import TaskOutput

router = APIRouter(tags=["predict"], route_class=JsonRoute)


class PredictRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"inputs": ["<base64 PNG>"], "parameters": {"top_k": 3}},
                {"inputs": ["a truly wonderful film"]},
                {"inputs": ["the company said"], "parameters": {"mode": "generate", "seed": 7}},
            ]
        },
    )

    inputs: list[Any] = Field(
        min_length=1,
        description=(
            "Images: base64 PNG/JPEG strings (data: URLs too) or HxWx3 arrays of 0..255 pixels. "
            "Text models: strings."
        ),
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Task options: top_k for classifiers; mode (next, score, generate), top_k, max_tokens, "
            "temperature and seed for language models."
        ),
    )


class PredictResponse(BaseModel):
    model: str
    version: str
    outputs: list[TaskOutput] = Field(description="One per input, in order.")


@router.post("/models/{name}/predict", response_model=PredictResponse)
async def predict(request: PredictRequest, model: ModelDep) -> PredictResponse:
    """Predict one output per input with the served model."""
    outputs = model.predict(request.inputs, request.parameters)
    return PredictResponse(
        model=model.manifest.name, version=model.manifest.version, outputs=outputs
    )
