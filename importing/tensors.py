"""Tensor datatypes as the three parties name them: the Open Inference Protocol (the manifest's
TensorSpec), numpy (examples and feeds) and onnxruntime (a session's inputs and outputs)."""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from modelfn.artifact import TensorSpec

# The datatypes a graph tensor may have in a manifest (TensorSpec less BYTES, which only the text
# tasks' request signatures use), as numpy dtypes.
NUMPY: Final[dict[str, type[np.generic]]] = {
    "FP32": np.float32,
    "FP16": np.float16,
    "INT64": np.int64,
    "INT32": np.int32,
    "UINT8": np.uint8,
    "BOOL": np.bool_,
}
# onnxruntime's NodeArg.type strings for the same.
ORT: Final[dict[str, str]] = {
    "tensor(float)": "FP32",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(uint8)": "UINT8",
    "tensor(bool)": "BOOL",
}


def numpy_dtype(spec: TensorSpec) -> np.dtype[Any]:
    return np.dtype(NUMPY[spec.datatype])


def shape_text(shape: list[int] | tuple[int, ...]) -> str:
    """[-1, 3, 32, 32] -> '[N, 3, 32, 32]': -1 reads as 'any size' in messages."""
    return "[" + ", ".join("N" if d == -1 else str(d) for d in shape) + "]"


def fits(shape: tuple[int, ...], spec: TensorSpec) -> bool:
    """Whether an array of `shape` is a valid value of `spec` (-1 takes any size)."""
    return len(shape) == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape, shape, strict=True)
    )
