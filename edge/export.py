"""A verified artifact folder -> its edge bundle: quantize, score, decide, pack.

Works from the artifact alone (no torch): the fp32 graph is the artifact's `model.onnx`, the int8
graph is quantized from it and both are scored through the bundle's own runner on the shared real
test data (`int8.py`, the code the cloud's `serving.precision = "int8"` runs too), and the int8
graph ships only if it stays within the model's `[models.<name>.edge]` threshold in models.toml.
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import parity
from edge.bundle import (
    FP32_GRAPH,
    INT8_GRAPH,
    REQUIREMENTS_FILE,
    RUNNER_FILE,
    EdgeManifest,
    Graphs,
    Quantization,
    SelfTestCase,
    bundle_name,
    write_bundle,
)
from edge.int8 import check_quantizable, quantize_and_score
from modelfn.artifact import (
    EXAMPLES_FILE,
    MANIFEST_FILE,
    Manifest,
    TokenizerPreprocessing,
    parse_examples,
    read_verified,
    sha256_file,
    verify_artifact,
)
from modelfn.registry import EdgeEntry, ModelEntry

RUNNER_SOURCE = Path(__file__).with_name("standalone_runner.py")
REQUIREMENTS = ["onnxruntime>=1.18,<2", "numpy>=1.26,<3"]
IMAGE_REQUIREMENTS = ["pillow>=10,<14"]
# A Hugging Face text model's tokenizer.json runs in the version the function runs and the tests
# hold equal to AutoTokenizer (requirements.lock; a test keeps the two equal): another version
# may split a text otherwise, and the graph would see ids it was never checked on.
TOKENIZER_REQUIREMENTS = ["tokenizers==0.23.3"]
SELF_TEST_CASES = 3


@dataclass(frozen=True)
class ExportResult:
    path: Path
    manifest: EdgeManifest
    latency_ms: dict[str, float]  # graph precision -> median ms of one call, on this CPU


def export_bundle(
    folder: Path,
    out_dir: Path,
    entry: ModelEntry,
    data: parity.TestData,
    *,
    limits: EdgeEntry | None = None,
) -> ExportResult:
    """Write `<model>-<version>.edge.tar.gz` into `out_dir` from the artifact in `folder`.

    `data` is the model's test split (and calibration images) in the runner's forms; `limits`
    overrides the registry's thresholds. The bundle's bytes depend only on the artifact, the
    data and these arguments.
    """
    manifest = verify_artifact(folder)
    check_quantizable(manifest)
    assert manifest.preprocessing is not None  # check_quantizable refused a model without
    limits = limits or entry.edge
    with tempfile.TemporaryDirectory(prefix="modelfn-edge-") as tmp:
        scored = quantize_and_score(folder, manifest, data, limits, Path(tmp))
        files = dict(scored.files)
        latency = {
            "fp32": parity.latency_ms(scored.fp32, data),
            "int8": parity.latency_ms(scored.int8, data),
        }
        shipped = scored.refused is None
        if shipped:
            files[INT8_GRAPH] = scored.graph
        graphs = Graphs(int8=INT8_GRAPH if shipped else None)
        runners = [scored.fp32, scored.int8] if shipped else [scored.fp32]
        cases = [
            SelfTestCase(
                input=item, mode=how, expected={r.precision: r.answer(item, how) for r in runners}
            )
            for item, how in _self_test_inputs(folder, manifest, data)
        ]
    edge = EdgeManifest(
        model=manifest.name,
        version=manifest.version,
        task=manifest.task,
        source_manifest_sha256=sha256_file(folder / MANIFEST_FILE),
        opset=_opset(files[FP32_GRAPH]),
        inputs=manifest.inputs,
        outputs=manifest.outputs,
        preprocessing=manifest.preprocessing,
        labels=manifest.labels,
        scores=manifest.scores,
        graphs=graphs,
        quantization=Quantization(
            mode=scored.mode, shipped=shipped, reason=scored.verdict, threshold=scored.threshold
        ),
        parity=scored.figures,
        test_data=data.source,
        self_test=cases,
    )
    requirements = REQUIREMENTS + (
        IMAGE_REQUIREMENTS if manifest.task == "image-classification" else []
    )
    if isinstance(manifest.preprocessing, TokenizerPreprocessing):
        requirements += TOKENIZER_REQUIREMENTS
    files[RUNNER_FILE] = RUNNER_SOURCE.read_bytes()
    files[REQUIREMENTS_FILE] = ("\n".join(requirements) + "\n").encode()
    path = write_bundle(out_dir / bundle_name(manifest.name, manifest.version), edge, files)
    return ExportResult(path, edge, latency)


def _self_test_inputs(
    folder: Path, manifest: Manifest, data: parity.TestData
) -> list[tuple[str, str]]:
    """A few real held-out inputs: the artifact's examples.json, else the first test examples."""
    if EXAMPLES_FILE in manifest.files:
        items = [
            e.input for e in parse_examples(read_verified(folder, manifest, EXAMPLES_FILE)).examples
        ]
    elif data.images is not None:
        items = [_png_base64(image) for image in data.images[:SELF_TEST_CASES]]
    elif data.texts is not None:
        items = data.texts[:SELF_TEST_CASES]
    else:
        assert data.sentences is not None
        items = [" ".join(s[:6]) for s in data.sentences[:SELF_TEST_CASES]]
    items = items[:SELF_TEST_CASES]
    if manifest.task == "language-modeling":
        return [(i, "next-words") for i in items] + [(items[0], "generate")]
    return [(i, "next-words") for i in items]


def _png_base64(pixels: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _opset(graph: bytes) -> int:
    import onnx

    model = onnx.load_from_string(graph)
    return max(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def parity_report(result: ExportResult) -> str:
    """The parity figures and the decision, as lines for a terminal."""
    m = result.manifest
    lines = [f"{m.model} {m.version}: edge bundle {result.path}"]
    if m.test_data:
        lines.append(f"  test data: {m.test_data}")
    lines += [f"  {k:<22} {v}" for k, v in m.parity.items()]
    fp32, int8 = result.latency_ms["fp32"], result.latency_ms["int8"]
    lines.append(
        f"  {'latency_ms fp32/int8':<22} {fp32:.3f} / {int8:.3f} (ratio {int8 / fp32:.2f}, one thread, this CPU)"
    )
    verdict = "ships" if m.quantization.shipped else "REFUSED, fp32 only"
    lines.append(f"  int8 ({m.quantization.mode}) {verdict}: {m.quantization.reason}")
    lines.append(f"  threshold: {m.quantization.threshold}")
    return "\n".join(lines)


def latency_record(result: ExportResult) -> bytes:
    """`<bundle>.latency.json`, written beside the bundle: the one figure that never repeats."""
    fp32, int8 = result.latency_ms["fp32"], result.latency_ms["int8"]
    return (
        json.dumps({"fp32_ms": fp32, "int8_ms": int8, "ratio": int8 / fp32, "threads": 1}, indent=2)
        + "\n"
    ).encode()
