"""fp32 ONNX graph -> int8 graph, the way each task's graph quantizes well on a CPU.

- The LSTM language model, the n-gram classifier and an imported Hugging Face text model are
  MatMul/Gemm/LSTM/Gather graphs: dynamic quantization (int8 weights, activations quantized per
  call) needs no calibration data. In a BERT the weight MatMuls become MatMulInteger and the
  embedding tables int8; the attention's activation-by-activation MatMuls stay fp32.
- The CNN is Conv-heavy: dynamically quantized Conv becomes ConvInteger, which onnxruntime's CPU
  provider does not run, so it gets static QDQ quantization, its activation ranges calibrated on
  real training images (never the test images the parity report scores), its weights scaled
  per output channel or per tensor, whichever agrees with fp32 on held-out training images.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

Mode = Literal["dynamic", "static-qdq"]
MODES: dict[str, Mode] = {
    "image-classification": "static-qdq",
    "text-classification": "dynamic",
    "feature-extraction": "dynamic",
    "language-modeling": "dynamic",
}
CALIBRATION_BATCH = 32  # images per calibration call: ranges are the same, memory stays small


def prepared(source: Path, target: Path) -> Path:
    """`source` with constants folded (onnxruntime's quantization pre-processing) at `target`.

    The exporter leaves the tied decoder weight behind a Transpose and the LSTM weights behind
    Reshapes; unfolded, the quantizer sees no constant weight there, keeps the LSTM in fp32 and
    dequantizes the whole 10k x 128 matrix on every call (ptb-lstm int8: 1.4x slower than fp32;
    folded: 3x faster).
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # Symbolic shape inference feeds onnxruntime's transformer fusions, which do not run here;
    # every graph, an imported BERT's too, folds and quantizes without it.
    quant_pre_process(source, target, skip_symbolic_shape=True)
    return target


def quantize_dynamic_graph(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folded = prepared(source, target.with_name("folded.onnx"))
    quantize_dynamic(folded, target, weight_type=QuantType.QInt8)
    folded.unlink()


# The share of the calibration images held out of calibration to choose between per-channel and
# per-tensor weight scales by how often each int8 graph agrees with fp32 on them.
HELD_OUT = 0.2


def quantize_static_graph(
    source: Path, target: Path, input_name: str, calibration: np.ndarray
) -> dict[str, float]:
    """QDQ int8 with MinMax activation ranges over most of `calibration` (float32 [N, ...],
    preprocessed), weights scaled per output channel or per tensor, whichever agrees with fp32
    on more of the held-out rest; returns that choice and both agreements.

    Per channel is the textbook choice for small conv filters, and it kept the smoke-preset CNN
    whole, but on the full-preset cifar10-cnn onnxruntime 1.32's per-channel QDQ lost 33 points
    of test accuracy (61.5% -> 28.5%: every calibration method alike) where per tensor lost 0.5.
    Deciding on held-out training images keeps the test split out of the choice.
    """
    import onnxruntime as ort

    split = max(1, int(len(calibration) * (1 - HELD_OUT)))
    fitting, held_out = calibration[:split], calibration[split:]
    reference = _labels(ort, source, input_name, held_out)
    agreement: dict[bool, float] = {}
    for per_channel in (True, False):
        candidate = target.with_name(f"{target.stem}.{'channel' if per_channel else 'tensor'}.onnx")
        _quantize_static(source, candidate, input_name, fitting, per_channel=per_channel)
        predicted = _labels(ort, candidate, input_name, held_out)
        agreement[per_channel] = float((predicted == reference).mean()) if len(held_out) else 1.0
    best = max(agreement, key=lambda k: (agreement[k], k))  # ties: per channel
    for per_channel in (True, False):
        candidate = target.with_name(f"{target.stem}.{'channel' if per_channel else 'tensor'}.onnx")
        if per_channel == best:
            candidate.replace(target)
        else:
            candidate.unlink()
    return {
        "per_channel": float(best),
        "held_out_agreement_per_channel": round(agreement[True], 6),
        "held_out_agreement_per_tensor": round(agreement[False], 6),
        "held_out_images": float(len(held_out)),
    }


def _labels(ort: Any, graph: Path, input_name: str, images: np.ndarray) -> np.ndarray:
    if not len(images):
        return np.zeros(0, dtype=np.int64)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    logits = [
        session.run(None, {input_name: images[i : i + CALIBRATION_BATCH]})[0]
        for i in range(0, len(images), CALIBRATION_BATCH)
    ]
    labels: np.ndarray = np.concatenate(logits).argmax(axis=-1)
    return labels


def _quantize_static(
    source: Path, target: Path, input_name: str, calibration: np.ndarray, *, per_channel: bool
) -> None:
    """QDQ int8 with MinMax activation ranges over `calibration`."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches: Iterator[dict[str, Any]] = (
                {input_name: calibration[i : i + CALIBRATION_BATCH]}
                for i in range(0, len(calibration), CALIBRATION_BATCH)
            )

        def get_next(self) -> dict[str, Any] | None:
            return next(self.batches, None)

    quantize_static(
        source,
        target,
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
