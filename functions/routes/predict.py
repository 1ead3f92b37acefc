"""POST /models/{name}/predict: the friendly route (images or texts in, answers out)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from functions.capture import captured_output, note_raw
from functions.deps import ModelDep
from functions.errors import error_responses
from functions.observability import current_request
from functions.predict_schemas import PredictRequest, PredictResponse
from functions.request_body import JsonRoute

router = APIRouter(tags=["predict"], route_class=JsonRoute)


@router.post(
    "/models/{name}/predict",
    response_model=PredictResponse,
    responses=error_responses(400, 404, 415, 503),
)
async def predict(request: PredictRequest, model: ModelDep) -> Response:
    """Predict one output per input with the served model."""
    record = current_request()
    record.inputs = len(request.inputs)
    outputs = model.predict(request.inputs, request.parameters)
    if record.capture is not None:  # a sampled request (functions/capture.py)
        record.capture.outputs = [captured_output(o) for o in outputs]
        note_raw(record.capture, request.inputs)
    answer = PredictResponse(
        model=model.manifest.name,
        version=model.manifest.version,
        precision=model.precision,
        outputs=outputs,
    )
    # Serialised here: FastAPI would validate the model it was just built from again first.
    # `response_model` still documents it.
    return Response(answer.model_dump_json(), media_type="application/json")
