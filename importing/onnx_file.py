"""An ONNX file given to `modelfn import`: copied into the work folder as the contract's graph.

A graph up to the contract's threshold (`modelfn.artifact.EXTERNAL_DATA_THRESHOLD`) becomes one
`model.onnx`, weights kept beside it (ONNX external data: torch.onnx.export writes
`model.onnx.data` by default) read in and stored inside. A larger one keeps its weights as
external data: one data file is copied as `model.onnx.data` and the graph's tensors renamed to
it (their offsets unchanged, each checked to lie inside the file); weights spread over several
files are gathered into that one by `modelfn.onnx_graph.save_graph`. Every file read is hashed
for the import record.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from importing.errors import ImportRefused
from modelfn import artifact
from modelfn.artifact import ONNX_DATA_FILE, ONNX_FILE, sha256_bytes, sha256_file
from modelfn.onnx_graph import (
    external_field,
    external_locations,
    relocate_external_data,
    save_graph,
    tensors,
)


def copy_onnx(path: Path, work: Path) -> dict[str, str]:
    """Write the graph at `path` into `work` as the contract's graph files; the sha256 of every
    file read, by name. ImportRefused if it is not ONNX or its external data is missing or short.
    """
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise ImportRefused(f"{path} does not exist; give the path of an .onnx file")
    raw = path.read_bytes()
    try:
        model = onnx.load_model_from_string(raw)  # external data stays where it is, unread
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
    try:
        locations = external_locations(model, path)
    except ValueError as exc:
        raise ImportRefused(
            f"{exc}; re-save the model with onnx.save(..., save_as_external_data=True, "
            "location='model.onnx.data') so its weights sit in one file next to it"
        ) from None
    sources = {path.name: sha256_bytes(raw)}
    graph = work / ONNX_FILE
    if not locations:
        if len(raw) <= artifact.EXTERNAL_DATA_THRESHOLD:
            graph.write_bytes(raw)  # the user's bytes, as they are
        else:
            save_graph(model, graph)
        return sources
    sizes = {}
    for location in locations:
        data_file = path.parent / location
        if not data_file.is_file():
            raise ImportRefused(
                f"{path} keeps weights in {location}, which is not beside it at {data_file}; "
                "put the data file next to the graph as it was exported"
            )
        sources[location] = sha256_file(data_file)
        sizes[location] = data_file.stat().st_size
    _check_extents(model, path, sizes)
    if len(raw) + sum(sizes.values()) > artifact.EXTERNAL_DATA_THRESHOLD and len(locations) == 1:
        # Kept as external data: the data file copied under the contract's name, not re-read.
        shutil.copyfile(path.parent / locations[0], work / ONNX_DATA_FILE)
        relocate_external_data(model, ONNX_DATA_FILE)
        onnx.save_model(model, str(graph))
        return sources
    # One file (small enough), or one data file gathered from several.
    onnx.load_external_data_for_model(model, str(path.parent))
    for tensor in tensors(model.graph):  # now in memory: forget where they came from
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            tensor.data_location = onnx.TensorProto.DEFAULT
            del tensor.external_data[:]
    save_graph(model, graph)
    return sources


def _check_extents(model: Any, path: Path, sizes: dict[str, int]) -> None:
    """ImportRefused unless every external tensor's bytes lie inside its data file: a truncated
    file fails here, naming it, not in onnxruntime at serving time."""
    for tensor in tensors(model.graph):
        location = external_field(tensor, "location")
        if not location:
            continue
        offset = int(external_field(tensor, "offset") or 0)
        length = int(external_field(tensor, "length") or 0)
        if offset + length > sizes[location]:
            raise ImportRefused(
                f"{path}: tensor {tensor.name!r} lies at bytes {offset}..{offset + length} of "
                f"{location}, which holds {sizes[location]} bytes: the data file is truncated or "
                "belongs to another export; export the model again"
            )
