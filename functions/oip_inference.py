"""Open Inference Protocol v2 inference through a loaded model: decode the request's tensors (JSON
or binary tensor data) against the task's OIP signature (`Task.signature`), run the task, encode
the requested outputs. The routes (functions/routes/infer.py) and the OpenAPI examples
(functions/examples.py) both answer through `run_inference`.

The tensors are the task's signature: for the image classifier the graph's own tensors (the
client sends the normalised NCHW FP32 "input"), for the text tasks a BYTES "text" tensor of
strings in and named result tensors out. Tensors travel as JSON or with the binary tensor data
extension (functions/tensors.py), per input and, on request, per output (`"parameters":
{"binary_data": true}` on an output, or `"binary_data_output": true` on the request for all).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import Response
from numpy.typing import NDArray

from functions.errors import BadInput
from functions.model_loader import LoadedModel
from functions.observability import current_request
from functions.oip_schemas import (
    BINARY_OUTPUT,
    InferenceRequest,
    InferenceResponse,
    RequestOutput,
    ResponseOutput,
)
from functions.tensors import (
    BINARY_SIZE,
    check_shape,
    datatype_of,
    from_binary,
    from_json,
    to_binary,
    to_json,
)
from modelfn.artifact import TensorSpec

# Request parameters of the protocol and its clients, not of the model: KServe's codecs send
# content_type ("np", "str", ...), Triton's clients may send headers. The task never sees them.
PROTOCOL_PARAMETERS = ("content_type", "headers")


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
        parameters={"precision": model.precision},
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
