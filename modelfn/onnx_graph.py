"""Writing an ONNX graph as the artifact contract lays it out: one file, or graph + external data.

`save_graph` is the one writer: training's exporter, `modelfn import`'s and the import of a
user's ONNX file all end here, so the threshold (`modelfn.artifact.EXTERNAL_DATA_THRESHOLD`) and
the data file's name (`ONNX_DATA_FILE`) are decided in one place. It needs `onnx`, which the zip
function does not ship; the function only reads what this wrote (functions/onnx_session.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import Any

from modelfn import artifact

# onnx writes every tensor of at least this many bytes to the data file; smaller ones (shapes,
# scalars) stay in the graph, where the optimiser reads them without touching the weights.
_SMALL_TENSOR = 1024


def data_file_name(graph: Path) -> str:
    """The external data file of the graph at `graph`: ONNX_DATA_FILE for the artifact's graph."""
    return f"{graph.name}.data"


def save_graph(model: Any, path: Path, *, threshold: int | None = None) -> list[str]:
    """Write `model` (an onnx.ModelProto, weights in memory) to `path`; the names written.

    Up to `threshold` bytes (default `artifact.EXTERNAL_DATA_THRESHOLD`, read at call time so a
    test can lower it) the graph is one file; past it the tensors go to `<path>.data` beside it,
    the graph naming that file. Either way nothing of an earlier write is left beside it (onnx
    appends to an existing data file). `model` is changed in place when its data is moved out.
    """
    import onnx

    limit = artifact.EXTERNAL_DATA_THRESHOLD if threshold is None else threshold
    if any(_is_external(t) for t in tensors(model.graph)):
        raise ValueError(
            "save_graph needs the weights in memory: load the graph with its external data "
            "(onnx.load(path) does by default)"
        )
    data = path.with_name(data_file_name(path))
    data.unlink(missing_ok=True)
    # ByteSize() is what the single file would hold; over 2 GiB protobuf could not write it.
    if model.ByteSize() <= limit:
        onnx.save_model(model, str(path))
        return [path.name]
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=_SMALL_TENSOR,
        # Constant nodes keep their tensors inside: weights are initializers in every export here,
        # and an attribute tensor with external data is a corner onnxruntime need not meet.
        convert_attribute=False,
    )
    if not data.exists():  # every tensor was under _SMALL_TENSOR: the graph is all there is
        return [path.name]
    data.chmod(path.stat().st_mode & 0o777)  # onnx makes it owner-only; the graph's mode is ours
    return [path.name, data.name]


def external_locations(model: Any, source: Path) -> list[str]:
    """The external data files a graph loaded without its data names, sorted; ValueError for a
    location that is not a plain file name beside the graph (it could read any file)."""
    found = set()
    for tensor in tensors(model.graph):
        if not _is_external(tensor):
            continue
        location = external_field(tensor, "location")
        if not location or PurePath(location).name != location:
            raise ValueError(
                f"{source}: tensor {tensor.name!r} names external data {location!r}, not a file "
                "beside the graph"
            )
        found.add(location)
    return sorted(found)


def relocate_external_data(model: Any, location: str) -> None:
    """Point every external tensor of `model` at `location` (offsets and lengths unchanged): the
    file they name is being renamed to it."""
    for tensor in tensors(model.graph):
        if _is_external(tensor):
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location


def external_field(tensor: Any, key: str) -> str:
    return next((str(e.value) for e in tensor.external_data if e.key == key), "")


def tensors(graph: Any) -> Iterator[Any]:
    """Every TensorProto of a graph: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from tensors(subgraph)


def _is_external(tensor: Any) -> bool:
    return bool(tensor.data_location == 1)  # onnx.TensorProto.EXTERNAL, without importing onnx
