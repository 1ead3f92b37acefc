"""POST /models/{name}/predict: the friendly route (images or texts in, answers out)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from functions.deps import ModelDep
from functions.errors import error_responses
from functions.observability import current_request
from functions.request_body import JsonRoute
from functions.tasks import TaskOutput

router = APIRouter(tags=["predict"], route_class=JsonRoute)


class PredictRequest(BaseModel):
    # Examples are the served version's own (functions/examples.py), in /openapi.json.
    model_config = ConfigDict(extra="forbid")

    inputs: list[Any] = Field(
        min_length=1,
        description=(
            "Images: base64 PNG/JPEG strings (data: URLs too) or HxWx3 arrays of 0..255 pixels. "
            "Text models: strings."
        ),
        # The tasks check each item themselves, naming it in a 400 (`inputs[2]: ...`).
        json_schema_extra={"items": {"anyOf": [{"type": "string"}, {"type": "array"}]}},
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
    outputs: list[TaskOutput] = Field(description="One per input, in order.")


@router.post(
    "/models/{name}/predict",
    response_model=PredictResponse,
    responses=error_responses(400, 404, 415, 503),
)
async def predict(request: PredictRequest, model: ModelDep) -> Response:
    """Predict one output per input with the served model."""
    current_request().inputs = len(request.inputs)
    outputs = model.predict(request.inputs, request.parameters)
    answer = PredictResponse(
        model=model.manifest.name, version=model.manifest.version, outputs=outputs
    )
    # Serialised here: FastAPI would validate the model it was just built from again first.
    # `response_model` still documents it.
    return Response(answer.model_dump_json(), media_type="application/json")
