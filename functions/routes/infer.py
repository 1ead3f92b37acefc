"""POST /v2/models/{name}[/versions/{version}]/infer: Open Inference Protocol v2 inference.

Tensors go to the graph as they are: the client does the pre-processing (for cifar10-cnn, the
normalised NCHW FP32 "input" the model's metadata describes) and gets the raw outputs back.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import numpy as np
from fastapi import APIRouter
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from functions.deps import ModelDep, VersionedModelDep
from functions.errors import BadInput
from functions.limits import MAX_BATCH
from functions.model_loader import LoadedModel
from modelfn.artifact import TensorSpec

router = APIRouter(prefix="/v2", tags=["open inference protocol"])

# OIP datatype -> numpy dtype and the JSON number kinds it accepts ('i' int, 'u' uint, 'f' float).
DATATYPES: dict[str, tuple[type[np.generic], str]] = {
    "FP32": (np.float32, "iuf"),
    "FP16": (np.float16, "iuf"),
    "FP64": (np.float64, "iuf"),
    "INT64": (np.int64, "iu"),
    "INT32": (np.int32, "iu"),
    "UINT8": (np.uint8, "iu"),
    "BOOL": (np.bool_, "b"),
}
_NUMPY_TO_DATATYPE = {np.dtype(dtype): name for name, (dtype, _) in DATATYPES.items()}


class RequestInput(BaseModel):
    name: str
    shape: list[int] = Field(description="Dimensions, each >= 0; the full batch's shape.")
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] = Field(description="Row-major values, flat or nested.")


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(default=None, description="Default: every output.")


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[Any] = Field(description="Row-major, flat.")


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str
    outputs: list[ResponseOutput]


@router.post("/models/{name}/infer", response_model=InferenceResponse)
def infer(request: InferenceRequest, model: ModelDep) -> InferenceResponse:
    """Run the graph on the request's tensors and return its output tensors."""
    return run_inference(request, model)


@router.post("/models/{name}/versions/{version}/infer", response_model=InferenceResponse)
def infer_version(request: InferenceRequest, model: VersionedModelDep) -> InferenceResponse:
    """Inference on a named version (it must be the loaded one)."""
    return run_inference(request, model)


def run_inference(request: InferenceRequest, model: LoadedModel) -> InferenceResponse:
    manifest = model.manifest
    feeds = decode_inputs(request.inputs, manifest.inputs)
    output_names = requested_outputs(request.outputs, manifest.outputs)
    results = model.run(feeds, output_names)
    return InferenceResponse(
        model_name=manifest.name,
        model_version=manifest.version,
        # The spec has the server return the request's id; without one we make one to log against.
        id=request.id if request.id is not None else str(uuid.uuid4()),
        outputs=[encode_output(name, results[name]) for name in output_names],
    )


def decode_inputs(inputs: list[RequestInput], specs: list[TensorSpec]) -> dict[str, NDArray[Any]]:
    by_name = {spec.name: spec for spec in specs}
    feeds: dict[str, NDArray[Any]] = {}
    for i, tensor in enumerate(inputs):
        where = f"inputs[{i}] ({tensor.name!r})"
        if tensor.name not in by_name:
            raise BadInput(
                f"{where}: the model has no input {tensor.name!r}; inputs: {sorted(by_name)}"
            )
        if tensor.name in feeds:
            raise BadInput(f"{where}: input {tensor.name!r} is given twice")
        feeds[tensor.name] = decode_tensor(tensor, by_name[tensor.name], where)
    missing = [name for name in by_name if name not in feeds]
    if missing:
        raise BadInput(f"inputs: missing {missing}; the model takes {[s.name for s in specs]}")
    return feeds


def decode_tensor(tensor: RequestInput, spec: TensorSpec, where: str) -> NDArray[Any]:
    """Check one request tensor against the graph's spec and return it as an array."""
    if tensor.datatype != spec.datatype:
        raise BadInput(f"{where}: datatype {tensor.datatype!r}; the model takes {spec.datatype!r}")
    check_shape(tensor.shape, spec.shape, where)
    dtype, kinds = DATATYPES[spec.datatype]
    try:
        values = np.asarray(tensor.data)
    except ValueError:
        raise BadInput(
            f"{where}: data is a ragged nested list; give it flat or as a full nest"
        ) from None
    expected = math.prod(tensor.shape)
    if values.size != expected:
        raise BadInput(
            f"{where}: data has {values.size} values, shape {tensor.shape} needs {expected}"
        )
    if values.size and values.dtype.kind not in kinds:
        raise BadInput(
            f"{where}: data must be {spec.datatype} values, got {values.dtype.kind!r} data"
        )
    if np.issubdtype(dtype, np.integer) and values.size:
        info = np.iinfo(np.dtype(dtype))
        if values.min() < info.min or values.max() > info.max:
            raise BadInput(f"{where}: values out of range for {spec.datatype}")
    with np.errstate(over="ignore"):  # overflow is checked below, on what the graph would get
        array = values.astype(dtype).reshape(tensor.shape)
    # After the cast: 1e39 is finite as float64 but inf as FP32 (70000 is inf as FP16).
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        limit = float(np.finfo(array.dtype).max)
        raise BadInput(
            f"{where}: data has NaN, infinite or out-of-range values; "
            f"{spec.datatype} values must be finite, within +-{limit:.6g}"
        )
    return array


def check_shape(shape: list[int], spec: list[int], where: str) -> None:
    if len(shape) != len(spec) or any(
        d < 0 or (s != -1 and d != s) for d, s in zip(shape, spec, strict=True)
    ):
        raise BadInput(f"{where}: shape {shape} does not fit the model's {spec} (-1: any size)")
    if spec and spec[0] == -1 and not 1 <= shape[0] <= MAX_BATCH:
        raise BadInput(f"{where}: batch of {shape[0]}; send 1..{MAX_BATCH} per request")


def requested_outputs(requested: list[RequestOutput] | None, specs: list[TensorSpec]) -> list[str]:
    known = [spec.name for spec in specs]
    if not requested:
        return known
    names = list(dict.fromkeys(out.name for out in requested))  # unique, in the request's order
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BadInput(f"outputs: the model has no output {unknown}; outputs: {known}")
    return names


def encode_output(name: str, array: NDArray[Any]) -> ResponseOutput:
    datatype = _NUMPY_TO_DATATYPE.get(array.dtype)
    if datatype is None:
        raise TypeError(f"output {name!r} has dtype {array.dtype}, which has no OIP datatype here")
    return ResponseOutput(
        name=name, shape=list(array.shape), datatype=datatype, data=array.ravel().tolist()
    )
