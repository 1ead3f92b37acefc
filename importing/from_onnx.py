"""Import an ONNX file: copy the graph (external data taken inside), open it, read its tensors."""

from __future__ import annotations

from pathlib import Path

from importing.image_scheme import ImageOptions, image_preprocessing
from importing.onnx_file import read_onnx
from importing.session import graph_specs, open_session, require_dynamic_batch
from importing.source import ONNX_PACKAGES, Built
from importing.tasks import check_classifier_graph
from modelfn.artifact import ONNX_FILE


def build(path: Path, work: Path, *, labels: list[str], image: ImageOptions | None) -> Built:
    graph = read_onnx(path)
    (work / ONNX_FILE).write_bytes(graph.data)
    session = open_session(work / ONNX_FILE)
    inputs, outputs = graph_specs(session)
    require_dynamic_batch(inputs)
    preprocessing = None
    if image is not None:  # image-classification (tasks.check_options made sure)
        check_classifier_graph(inputs, outputs, labels)
        preprocessing = image_preprocessing(image, inputs[0])
    return Built(
        session=session,
        inputs=inputs,
        outputs=outputs,
        preprocessing=preprocessing,
        reference=None,
        source="onnx",
        reference_text=path.name,
        source_sha256=graph.source_sha256,
        version_file=ONNX_FILE,
        packages=ONNX_PACKAGES,
    )
