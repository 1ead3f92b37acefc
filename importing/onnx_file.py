"""An ONNX file given to `modelfn import`: its bytes as one self-contained graph.

The function downloads, verifies and hands onnxruntime exactly one graph file, so weights kept
beside the graph (ONNX external data: torch.onnx.export writes `model.onnx.data` by default) are
read in and stored inside it. Every file read is hashed for the import record.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from importing.errors import ImportRefused
from modelfn.artifact import sha256_bytes

# protobuf refuses to serialise a message over 2 GiB, so a single-file graph cannot be larger.
PROTOBUF_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class OnnxGraph:
    data: bytes  # the whole graph, weights inside
    source_sha256: dict[str, str]  # every file read, by name: the graph and its external data


def read_onnx(path: Path) -> OnnxGraph:
    """The graph at `path` as one file; ImportRefused if it is not ONNX or its data is missing."""
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise ImportRefused(f"{path} does not exist; give the path of an .onnx file")
    raw = path.read_bytes()
    try:
        model = onnx.load_model_from_string(raw)
    except (DecodeError, ValueError) as exc:
        raise ImportRefused(
            f"{path} is not an ONNX model ({exc}); export one with torch.onnx.export(..., "
            "dynamo=True) or give a torch module as package.module:callable"
        ) from exc
    if model.ir_version == 0 or not model.graph.output:  # protobuf parses many byte strings
        raise ImportRefused(
            f"{path} is not an ONNX model (no IR version or no graph outputs); export one with "
            "torch.onnx.export(..., dynamo=True)"
        )
    locations = sorted({_location(t, path) for t in _tensors(model.graph) if _external(t)})
    sources = {path.name: sha256_bytes(raw)}
    if not locations:
        return OnnxGraph(data=raw, source_sha256=sources)
    for location in locations:
        data_file = path.parent / location
        if not data_file.is_file():
            raise ImportRefused(
                f"{path} keeps weights in {location}, which is not beside it at {data_file}; "
                "put the data file next to the graph as it was exported"
            )
        sources[location] = sha256_bytes(data_file.read_bytes())
    onnx.load_external_data_for_model(model, str(path.parent))
    for tensor in _tensors(model.graph):  # now inside the graph: forget where they came from
        if _external(tensor):
            tensor.data_location = onnx.TensorProto.DEFAULT
            del tensor.external_data[:]
    if model.ByteSize() > PROTOBUF_LIMIT:
        raise ImportRefused(
            f"{path} with its external data is {model.ByteSize() / 2**30:.1f} GiB, over the "
            "2 GiB a single-file ONNX graph can hold; modelfn serves one graph file, so this "
            "model is too large for it"
        )
    return OnnxGraph(data=model.SerializeToString(), source_sha256=sources)


def _external(tensor: Any) -> bool:
    import onnx

    return bool(tensor.data_location == onnx.TensorProto.EXTERNAL)


def _location(tensor: Any, path: Path) -> str:
    """The external data file a tensor names: a plain name beside the graph, never a path out."""
    location = next((e.value for e in tensor.external_data if e.key == "location"), "")
    if not location or PurePath(location).name != location:
        raise ImportRefused(
            f"{path}: tensor {tensor.name!r} names external data {location!r}, not a file "
            "beside the graph; re-save the model with onnx.save(..., save_as_external_data=False)"
        )
    return str(location)


def _tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto of a graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)
