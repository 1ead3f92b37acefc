"""POST /v2/models/{name}[/versions/{version}]/infer: Open Inference Protocol v2 inference.

The tensors are the task's OIP signature (`Task.signature`, what model metadata lists): for the
image classifier the graph's own tensors (the client sends the normalised NCHW FP32 "input"), for
the text tasks a BYTES "text" tensor of strings in and named result tensors out. Tensors travel
as JSON or with the binary tensor data extension (functions/tensors.py), per input and, on
request, per output (`"parameters": {"binary_data": true}` on an output, or
`"binary_data_output": true` on the request for all of them).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic.config import JsonDict

from functions.deps import ModelDep, VersionedModelDep
from functions.errors import BadInput, error_responses
from functions.model_loader import LoadedModel
from functions.observability import current_request
from functions.request_body import JsonRoute, binary_data
from functions.tensors import (
    BINARY_SIZE,
    DATATYPE_NAMES,
    check_shape,
    datatype_of,
    from_binary,
    from_json,
    to_binary,
    to_json,
)
from modelfn.artifact import TensorSpec

router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=JsonRoute)

BinaryDep = Annotated[bytes, Depends(binary_data)]
BINARY_OUTPUT = "binary_data_output"  # request parameter of the binary extension
# Request parameters of the protocol and its clients, not of the model: KServe's codecs send
# content_type ("np", "str", ...), Triton's clients may send headers. The task never sees them.
PROTOCOL_PARAMETERS = ("content_type", "headers")


# The OpenAPI document states what a valid request is; the models stay lenient where
# run_inference checks a field itself, so its 400 names the tensor and what the model takes.
def _object(
    properties: dict[str, Any], *, required: list[str] | None = None, more: bool = True
) -> Any:
    schema = {"type": "object", "properties": properties, "additionalProperties": more}
    return schema | ({"required": required} if required else {})


def _or_null(schema: dict[str, Any]) -> Any:
    return WithJsonSchema({"anyOf": [schema, {"type": "null"}]})


_SIZE = {"type": "integer", "minimum": 0, "description": "Bytes of this tensor after the JSON."}
# JSON tensor data: numbers, booleans, or strings for BYTES (UTF-8 text), row-major.
_VALUE: dict[str, Any] = {"anyOf": [{"type": "number"}, {"type": "boolean"}, {"type": "string"}]}
_SHAPE: JsonDict = {"items": {"type": "integer", "minimum": 0}}
_DATATYPE: JsonDict = {"enum": [*DATATYPE_NAMES]}


class RequestInput(BaseModel):
    name: str
    shape: list[int] = Field(
        description="Dimensions, each >= 0; the full batch's shape.", json_schema_extra=_SHAPE
    )
    datatype: str = Field(json_schema_extra=_DATATYPE)
    parameters: Annotated[dict[str, Any] | None, _or_null(_object({BINARY_SIZE: _SIZE}))] = Field(
        default=None, description='{"binary_data_size": N}: the data is N bytes after the JSON.'
    )
    data: Annotated[
        list[Any] | None,
        _or_null({"type": "array", "items": {"anyOf": [*_VALUE["anyOf"], {"type": "array"}]}}),
    ] = Field(default=None, description="Row-major values, flat or nested; BYTES as strings.")


class RequestOutput(BaseModel):
    name: str
    parameters: Annotated[
        dict[str, Any] | None, _or_null(_object({"binary_data": {"type": "boolean"}}))
    ] = Field(default=None, description='{"binary_data": true}: return this output as binary data.')


class InferenceRequest(BaseModel):
    id: str | None = Field(default=None, description="Echoed in the response; made up if absent.")
    parameters: Annotated[
        dict[str, Any] | None, _or_null(_object({BINARY_OUTPUT: {"type": "boolean"}}))
    ] = Field(
        default=None,
        description=(
            "Task options: mode (next, score, generate), top_k, max_tokens, temperature and seed "
            "for language models; none for classifiers. binary_data_output: true returns every "
            "output as binary data."
        ),
    )
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(default=None, description="Default: every output.")

    @field_validator("id")
    @classmethod
    def _echoable(cls, value: str | None) -> str | None:
        # The response echoes the id as UTF-8 JSON, and a lone surrogate (JSON "\ud800", which
        # json.loads accepts) has no UTF-8 form: refused here, it was a 500 when the answer was
        # serialised, after the model had run (found fuzzing, issue 11; tests/reliability/regressions).
        if value is not None and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(
                    "has a lone UTF-16 surrogate (e.g. \\ud800), which is not text; send UTF-8 text"
                ) from None
        return value


class ResponseOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[int] = Field(json_schema_extra=_SHAPE)
    datatype: str = Field(json_schema_extra=_DATATYPE)
    # Exactly one of the two: binary outputs have parameters, JSON outputs data.
    parameters: Annotated[
        dict[str, Any] | None,
        WithJsonSchema(_object({BINARY_SIZE: _SIZE}, required=[BINARY_SIZE], more=False)),
    ] = None
    data: Annotated[list[Any] | None, WithJsonSchema({"type": "array", "items": _VALUE})] = Field(
        default=None, description="Row-major, flat; BYTES as strings."
    )


class InferenceResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str
    model_version: str
    id: str
    outputs: list[ResponseOutput]


# The binary tensor data extension in the document: a request body or response may be the JSON
# header followed by raw tensor bytes, its length in the Inference-Header-Content-Length header.
_HEADER_LENGTH = {
    "description": "Binary tensor data extension: bytes of JSON before the tensors' raw bytes.",
    "schema": {"type": "integer", "minimum": 0},
}
BINARY_EXTENSION: dict[str, Any] = {
    "parameters": [
        {
            "name": "Inference-Header-Content-Length",
            "in": "header",
            "required": False,
            **_HEADER_LENGTH,
        }
    ],
    "requestBody": {"content": {"application/octet-stream": {}}},
}
BINARY_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/octet-stream": {}},
        "headers": {"Inference-Header-Content-Length": _HEADER_LENGTH},
    }
}


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


def run_inference(request: InferenceRequest, model: LoadedModel, binary: bytes) -> Response:
    manifest = model.manifest
    # Inputs per request: the batch, the first dimension every input shares.
    current_request().inputs = request.inputs[0].shape[0] if request.inputs[0].shape else 1
    input_specs, output_specs = model.task.signature()
    parameters = dict(request.parameters or {})
    binary_default = flag(parameters.pop(BINARY_OUTPUT, False), f"parameters.{BINARY_OUTPUT}")
    for name in PROTOCOL_PARAMETERS:
        parameters.pop(name, None)
    tensors = decode_inputs(request.inputs, input_specs, binary)
    results = model.task.infer(model.run, tensors, parameters)
    names = requested_outputs(request.outputs, output_specs, results)
    as_binary = {
        out.name: flag(
            (out.parameters or {}).get("binary_data", binary_default),
            f"outputs[{i}].parameters.binary_data",
        )
        for i, out in enumerate(request.outputs or [])
    }
    outputs, chunks = [], []
    for name in names:
        array = results[name]
        output = ResponseOutput(name=name, shape=list(array.shape), datatype=datatype_of(array))
        if as_binary.get(name, binary_default):
            chunks.append(to_binary(array))
            output.parameters = {BINARY_SIZE: len(chunks[-1])}
        else:
            output.data = to_json(array)
        outputs.append(output)
    response = InferenceResponse(
        model_name=manifest.name,
        model_version=manifest.version,
        # The spec has the server return the request's id; without one we make one to log against.
        id=request.id if request.id is not None else str(uuid.uuid4()),
        outputs=outputs,
    )
    header = response.model_dump_json(exclude_none=True).encode()
    if not chunks:
        return Response(header, media_type="application/json")
    return Response(
        header + b"".join(chunks),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )


def flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{where}: must be true or false, got {value!r}")
    return value


def decode_inputs(
    inputs: list[Any], specs: list[TensorSpec], binary: bytes
) -> dict[str, NDArray[Any]]:
    """The request's tensors by name, each checked against the model's; binary data consumed in order."""
    by_name = {spec.name: spec for spec in specs}
    tensors: dict[str, NDArray[Any]] = {}
    offset = 0
    for i, tensor in enumerate(inputs):
        where = f"inputs[{i}] ({tensor.name!r})"
        spec = by_name.get(tensor.name)
        if spec is None:
            raise BadInput(
                f"{where}: the model has no input {tensor.name!r}; inputs: {sorted(by_name)}"
            )
        if tensor.name in tensors:
            raise BadInput(f"{where}: input {tensor.name!r} is given twice")
        if tensor.datatype != spec.datatype:
            raise BadInput(
                f"{where}: datatype {tensor.datatype!r}; the model takes {spec.datatype!r}"
            )
        check_shape(tensor.shape, spec.shape, where)
        size = (tensor.parameters or {}).get(BINARY_SIZE)
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise BadInput(f"{where}: parameters.{BINARY_SIZE} must be a whole number of bytes")
            if tensor.data is not None:
                raise BadInput(f"{where}: has both data and parameters.{BINARY_SIZE}; send one")
            if offset + size > len(binary):
                raise BadInput(
                    f"{where}: parameters.{BINARY_SIZE} is {size}, but only {len(binary) - offset} "
                    "bytes of binary data are left after the JSON header (Inference-Header-Content-Length)"
                )
            tensors[tensor.name] = from_binary(
                binary[offset : offset + size], tensor.shape, spec.datatype, where
            )
            offset += size
        elif tensor.data is None:
            raise BadInput(
                f"{where}: no data; send data, or binary data with parameters.{BINARY_SIZE}"
            )
        else:
            tensors[tensor.name] = from_json(tensor.data, tensor.shape, spec.datatype, where)
    if offset != len(binary):
        raise BadInput(
            f"{len(binary) - offset} bytes of binary data after the JSON header belong to no input; "
            f"give each binary input its parameters.{BINARY_SIZE}"
        )
    missing = [name for name in by_name if name not in tensors]
    if missing:
        raise BadInput(f"inputs: missing {missing}; the model takes {[s.name for s in specs]}")
    return tensors


def requested_outputs(
    requested: list[RequestOutput] | None, specs: list[TensorSpec], results: dict[str, Any]
) -> list[str]:
    """Names to return: the request's (each known and produced), else all the request produced."""
    known = [spec.name for spec in specs]
    if not requested:
        return [name for name in known if name in results]
    names = list(dict.fromkeys(out.name for out in requested))  # unique, in the request's order
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BadInput(f"outputs: the model has no output {unknown}; outputs: {known}")
    absent = [name for name in names if name not in results]
    if absent:
        raise BadInput(
            f"outputs: {absent} are not produced by this request (its parameters pick "
            f"{[n for n in known if n in results]}); see the model's documentation for its modes"
        )
    return names
