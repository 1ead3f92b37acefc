"""POST /v2/models/{name}[/versions/{version}]/infer: Open Inference Protocol v2 inference.

The messages are functions/oip_schemas.py; decoding, running and encoding them is
functions/oip_inference.py. Tensors travel as JSON or with the binary tensor data extension.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from functions.deps import ModelDep, VersionedModelDep
from functions.errors import error_responses
from functions.oip_inference import run_inference
from functions.oip_schemas import (
    BINARY_EXTENSION,
    BINARY_RESPONSE,
    InferenceRequest,
    InferenceResponse,
)
from functions.request_body import JsonRoute, binary_data

router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=JsonRoute)

BinaryDep = Annotated[bytes, Depends(binary_data)]


@router.post(
    "/models/{name}/infer",
    response_model=InferenceResponse,
    response_model_exclude_none=True,
    responses=BINARY_RESPONSE | error_responses(400, 404, 415, 503),
    openapi_extra=BINARY_EXTENSION,
)
async def infer(request: InferenceRequest, model: ModelDep, binary: BinaryDep) -> Response:
    """Run the model on the request's tensors and return its output tensors."""
    return run_inference(request, model, binary)


@router.post(
    "/models/{name}/versions/{version}/infer",
    response_model=InferenceResponse,
    response_model_exclude_none=True,
    responses=BINARY_RESPONSE | error_responses(400, 404, 415, 503),
    openapi_extra=BINARY_EXTENSION,
)
async def infer_version(
    request: InferenceRequest, model: VersionedModelDep, binary: BinaryDep
) -> Response:
    """Inference on a named version (it must be the loaded one)."""
    return run_inference(request, model, binary)
