"""An Open Inference Protocol request with the binary tensor data extension, sent as a client
(Triton's, KServe's) sends it: a JSON header, then each input's raw little-endian bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from functions.tensors import DATATYPES, NUMPY_TO_DATATYPE
from tools.local.events import http_api_event, response_parts
from tools.local.lambda_context import LocalLambdaContext


def binary_infer(
    handler: Callable[..., Any],
    path: str,
    tensors: dict[str, NDArray[Any]],
    outputs: list[str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, NDArray[Any]]]:
    """POST `tensors` as binary data, every output asked for as binary data.

    Returns the status, the response's JSON header, and each output decoded by its header.
    """
    header: dict[str, Any] = {
        "inputs": [
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": NUMPY_TO_DATATYPE[array.dtype],
                "parameters": {"binary_data_size": array.nbytes},
            }
            for name, array in tensors.items()
        ],
        "parameters": {"binary_data_output": True},
    }
    if outputs is not None:
        header["outputs"] = [{"name": name} for name in outputs]
    head = json.dumps(header).encode()
    raw = b"".join(
        np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes() for a in tensors.values()
    )
    event = http_api_event(
        "POST",
        path,
        headers={
            "inference-header-content-length": str(len(head)),
            "content-type": "application/octet-stream",
        },
        body=head + raw,
    )
    context = LocalLambdaContext(function_name="test", memory_limit_in_mb=1024, timeout_s=15)
    status, headers, body = response_parts(handler(event, context))
    if status != 200:
        return status, json.loads(body), {}
    length = int(headers["inference-header-content-length"])
    meta = json.loads(body[:length])
    decoded, offset = {}, length
    for output in meta["outputs"]:
        size = output["parameters"]["binary_data_size"]
        dtype = np.dtype(DATATYPES[output["datatype"]][0]).newbyteorder("<")
        decoded[output["name"]] = np.frombuffer(body[offset : offset + size], dtype).reshape(
            output["shape"]
        )
        offset += size
    assert offset == len(body), "binary data left over after the outputs the header lists"
    return status, meta, decoded
