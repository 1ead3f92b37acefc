"""Open Inference Protocol tensors: datatypes, JSON data and the binary tensor data extension.

A tensor travels either as JSON (`"data": [...]`, row-major, flat or nested; BYTES as strings)
or, with the binary tensor data extension that Triton's and KServe's clients use by default, as
raw bytes after the JSON header (`"parameters": {"binary_data_size": N}`): little-endian values,
and for BYTES each element as a 4-byte little-endian length followed by its bytes.
(https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md)

Decoding checks everything against the tensor the model expects and raises BadInput naming the
tensor; encoding never fails on what a model produces.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
from numpy.typing import NDArray

from functions.errors import BadInput
from functions.limits import MAX_BATCH

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
NUMPY_TO_DATATYPE = {np.dtype(dtype): name for name, (dtype, _) in DATATYPES.items()}
# Every datatype a tensor can have here: what the OpenAPI document lists for `datatype`.
DATATYPE_NAMES = [*DATATYPES, "BYTES"]
BINARY_SIZE = "binary_data_size"
_LENGTH = struct.Struct("<I")  # the 4-byte little-endian length before each BYTES element


def check_shape(shape: list[int], spec: list[int], where: str) -> None:
    if len(shape) != len(spec) or any(
        d < 0 or (s != -1 and d != s) for d, s in zip(shape, spec, strict=True)
    ):
        raise BadInput(f"{where}: shape {shape} does not fit the model's {spec} (-1: any size)")
    if spec and spec[0] == -1 and not 1 <= shape[0] <= MAX_BATCH:
        raise BadInput(f"{where}: batch of {shape[0]}; send 1..{MAX_BATCH} per request")


# --- decoding ----------------------------------------------------------------------------------


def from_json(data: list[Any], shape: list[int], datatype: str, where: str) -> NDArray[Any]:
    """JSON `data` (flat or nested, row-major) -> an array of `shape`, checked value by value."""
    expected = math.prod(shape)
    if datatype == "BYTES":
        values = list(_flatten(data, where))
        if len(values) != expected:
            raise BadInput(
                f"{where}: data has {len(values)} values, shape {shape} needs {expected}"
            )
        if not all(isinstance(v, str) for v in values):
            raise BadInput(f"{where}: BYTES data must be strings")
        return np.array([v.encode("utf-8", "surrogatepass") for v in values], np.object_).reshape(
            shape
        )
    try:
        array = np.asarray(data)
    except ValueError:
        raise BadInput(
            f"{where}: data is a ragged nested list; give it flat or as a full nest"
        ) from None
    if array.size != expected:
        raise BadInput(f"{where}: data has {array.size} values, shape {shape} needs {expected}")
    return as_datatype(array, datatype, where).reshape(shape)


def as_datatype(array: NDArray[Any], datatype: str, where: str) -> NDArray[Any]:
    """A numeric array parsed from JSON -> `datatype`'s dtype, or BadInput if a value does not fit
    (a string or null, a fraction for an integer type, out of range, or not finite)."""
    dtype, kinds = DATATYPES[datatype]
    if array.size and array.dtype.kind not in kinds:
        raise BadInput(f"{where}: data must be {datatype} values, got {array.dtype.kind!r} data")
    if np.issubdtype(dtype, np.integer) and array.size:
        info = np.iinfo(np.dtype(dtype))
        if array.min() < info.min or array.max() > info.max:
            raise BadInput(f"{where}: values out of range for {datatype}")
    with np.errstate(over="ignore"):  # overflow is checked below, on what the graph would get
        return check_finite(array.astype(dtype), datatype, where)


def from_binary(raw: bytes, shape: list[int], datatype: str, where: str) -> NDArray[Any]:
    """`raw` bytes of the binary extension -> an array of `shape`."""
    expected = math.prod(shape)
    if datatype == "BYTES":
        values: list[bytes] = []
        offset = 0
        while offset < len(raw):
            if offset + _LENGTH.size > len(raw):
                raise BadInput(f"{where}: binary BYTES data ends inside an element's 4-byte length")
            (length,) = _LENGTH.unpack_from(raw, offset)
            offset += _LENGTH.size
            if offset + length > len(raw):
                raise BadInput(f"{where}: binary BYTES element {len(values)} runs past its data")
            values.append(raw[offset : offset + length])
            offset += length
        if len(values) != expected:
            raise BadInput(
                f"{where}: binary data has {len(values)} elements, shape {shape} needs {expected}"
            )
        return np.array(values, dtype=np.object_).reshape(shape)
    dtype = np.dtype(DATATYPES[datatype][0]).newbyteorder("<")
    if len(raw) != expected * dtype.itemsize:
        raise BadInput(
            f"{where}: {len(raw)} bytes of binary data, shape {shape} of {datatype} needs "
            f"{expected * dtype.itemsize}"
        )
    array = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
    if datatype == "BOOL" and array.size and np.frombuffer(raw, np.uint8).max() > 1:
        raise BadInput(f"{where}: BOOL bytes must be 0 or 1")
    return check_finite(array.reshape(shape), datatype, where)


def check_finite(array: NDArray[Any], datatype: str, where: str) -> NDArray[Any]:
    # After the cast: 1e39 is finite as float64 but inf as FP32 (70000 is inf as FP16).
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        limit = float(np.finfo(array.dtype).max)
        raise BadInput(
            f"{where}: data has NaN, infinite or out-of-range values; "
            f"{datatype} values must be finite, within +-{limit:.6g}"
        )
    return array


def _flatten(data: Any, where: str) -> Any:
    for item in data:
        if isinstance(item, list):
            yield from _flatten(item, where)
        else:
            yield item


# --- encoding ----------------------------------------------------------------------------------


def datatype_of(array: NDArray[Any]) -> str:
    if array.dtype == np.object_:
        return "BYTES"
    datatype = NUMPY_TO_DATATYPE.get(array.dtype)
    if datatype is None:
        raise TypeError(f"output has dtype {array.dtype}, which has no OIP datatype here")
    return datatype


def to_json(array: NDArray[Any]) -> list[Any]:
    """Row-major, flat; BYTES elements as UTF-8 strings (every text a task produces is UTF-8)."""
    if array.dtype == np.object_:
        return [bytes(v).decode("utf-8") for v in array.reshape(-1)]
    values: list[Any] = array.ravel().tolist()
    return values


def to_binary(array: NDArray[Any]) -> bytes:
    """The binary extension's bytes for `array`."""
    if array.dtype == np.object_:
        return b"".join(_LENGTH.pack(len(v)) + bytes(v) for v in array.reshape(-1))
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
