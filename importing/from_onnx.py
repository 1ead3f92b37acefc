"""Import an ONNX file: copy the graph (and its external data) into place, open it, read its tensors."""

from __future__ import annotations

from pathlib import Path

from importing.image_scheme import ImageOptions, image_preprocessing
from importing.onnx_file import copy_onnx
from importing.session import graph_specs, open_session, require_dynamic_batch
from importing.source import ONNX_PACKAGES, Built
from importing.tasks import check_classifier_graph
from modelfn.artifact import ONNX_FILE


def build(path: Path, work: Path, *, labels: list[str], image: ImageOptions | None) -> Built:
    source_sha256 = copy_onnx(path, work)
    session = open_session(work / ONNX_FILE)  # by path: onnxruntime finds external data beside it
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
        source_sha256=source_sha256,
        version_file=ONNX_FILE,
        packages=ONNX_PACKAGES,
    )
