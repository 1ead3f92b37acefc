"""An artifact's int8 graph: quantized from its fp32 graph, then scored against it on real data.

One code path behind both uses of int8: an edge bundle's `model.int8.onnx` (export.py) and the
cloud's `serving.precision = "int8"`, where the same graph becomes a file of the version
(tools/int8_version.py). The quantizer (`quantize.py`) picks the task's mode; both graphs are
scored through the bundle's own runner (`parity.py`, one onnxruntime thread, so the figures
repeat bit for bit), and the verdict reads the model's `[models.<name>.edge]` threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge import parity, quantize
from edge.bundle import FP32_GRAPH, INT8_GRAPH, Graphs
from edge.standalone_runner import Bundle
from modelfn.artifact import (
    EXTERNAL_DATA_THRESHOLD,
    ONNX_DATA_FILE,
    ONNX_FILE,
    ArtifactError,
    Manifest,
    TextPreprocessing,
    TokenizerPreprocessing,
    read_verified,
)
from modelfn.registry import EdgeEntry


@dataclass(frozen=True)
class Int8Graph:
    """The int8 graph of a version, its figures against fp32 and the verdict."""

    graph: bytes  # model.int8.onnx
    files: dict[str, bytes]  # what the runners read: the fp32 graph, the vocabulary or tokenizer
    mode: quantize.Mode
    comparison: parity.Comparison
    figures: dict[str, float]  # each graph's score, their agreement, the graphs' bytes
    threshold: str  # the registry's limit, in words
    fp32: Bundle  # the runners that scored them (their folder lives as long as the caller's stage)
    int8: Bundle

    @property
    def refused(self) -> str | None:
        """Why int8 loses more than the threshold allows, with the figures; None if it does not."""
        return self.comparison.refused

    @property
    def verdict(self) -> str:
        return (
            self.comparison.refused or f"int8 is within the threshold: {self.comparison.measured}"
        )


def check_quantizable(manifest: Manifest) -> None:
    """ArtifactError unless the version's graph can be quantized and scored here."""
    if manifest.preprocessing is None:
        raise ArtifactError(
            f"{manifest.name} {manifest.version} is a {manifest.task} model with no declared "
            "pre-processing; an edge bundle's runner takes images or texts, so there is nothing "
            "it could feed the graph: serve it through the function instead"
        )
    if ONNX_DATA_FILE in manifest.files:
        raise ArtifactError(
            f"{manifest.name} {manifest.version} keeps its weights beside the graph in "
            f"{ONNX_DATA_FILE} ({manifest.files[ONNX_DATA_FILE].size:,} bytes; a graph past "
            f"{EXTERNAL_DATA_THRESHOLD:,} bytes is written so): an edge bundle ships one graph "
            "file, which its runner and the int8 quantizer read whole, so external data is not "
            "supported there; serve the model through the "
            "function (`modelfn serve` here, the CDK app in the cloud) at precision fp32, or "
            "import a smaller model for the edge"
        )


def quantize_and_score(
    folder: Path, manifest: Manifest, data: parity.TestData, limits: EdgeEntry, stage: Path
) -> Int8Graph:
    """Quantize the verified artifact in `folder` into `stage` (an empty folder the caller keeps
    while it uses the runners) and score fp32 against int8 on `data` under `limits`."""
    check_quantizable(manifest)
    files = {FP32_GRAPH: read_verified(folder, manifest, ONNX_FILE)}
    if isinstance(manifest.preprocessing, TextPreprocessing):
        name = manifest.preprocessing.vocabulary
        files[name] = read_verified(folder, manifest, name)
    elif isinstance(manifest.preprocessing, TokenizerPreprocessing):
        name = manifest.preprocessing.file
        files[name] = read_verified(folder, manifest, name)
    for name, content in files.items():
        (stage / name).write_bytes(content)
    mode = quantize.MODES[manifest.task]
    choice = _quantize(stage, manifest, mode, data)
    draft = runner_manifest(manifest, Graphs(int8=INT8_GRAPH))
    fp32 = Bundle(stage, draft, "fp32", threads=1)
    int8 = Bundle(stage, draft, "int8", threads=1)
    comparison = parity.compare(fp32, int8, data, manifest.task, limits)
    graph = (stage / INT8_GRAPH).read_bytes()
    figures = {
        **comparison.scores,
        **{
            f"server_{k}": round(v, 6)
            for k, v in manifest.metrics.items()
            if k in ("accuracy", "test_perplexity")
        },
        "fp32_graph_bytes": len(files[FP32_GRAPH]),
        "int8_graph_bytes": len(graph),
        "size_ratio": round(len(graph) / len(files[FP32_GRAPH]), 4),
        **comparison.agreement,
        **choice,
    }
    return Int8Graph(
        graph=graph,
        files=files,
        mode=mode,
        comparison=comparison,
        figures=figures,
        threshold=parity.threshold_words(manifest.task, limits),
        fp32=fp32,
        int8=int8,
    )


def _quantize(
    stage: Path, manifest: Manifest, mode: quantize.Mode, data: parity.TestData
) -> dict[str, float]:
    """Write the int8 graph; what the quantizer chose on its own data, as figures."""
    source, target = stage / FP32_GRAPH, stage / INT8_GRAPH
    if mode == "dynamic":
        quantize.quantize_dynamic_graph(source, target)
        return {}
    from edge.standalone_runner import fit_pixels, image_tensor

    assert data.calibration is not None
    assert manifest.preprocessing is not None  # check_quantizable refused a model without
    pre = manifest.preprocessing.model_dump()
    # Through the runner's scheme: an imported model's images are resized and cropped first.
    calibration = np.concatenate([image_tensor(fit_pixels(p, pre), pre) for p in data.calibration])
    return quantize.quantize_static_graph(source, target, manifest.inputs[0].name, calibration)


def runner_manifest(manifest: Manifest, graphs: Graphs) -> dict[str, Any]:
    """The part of an edge manifest the runner reads, for scoring before the bundle exists."""
    assert manifest.preprocessing is not None  # check_quantizable refused a model without
    return {
        "task": manifest.task,
        "labels": manifest.labels,
        "inputs": [s.model_dump() for s in manifest.inputs],
        "preprocessing": manifest.preprocessing.model_dump(),
        "graphs": graphs.model_dump(),
    }
