"""fp32 ONNX graph -> int8 graph, the way each task's graph quantizes well on a CPU.

- The LSTM language model, the n-gram classifier and an imported Hugging Face text model are
  MatMul/Gemm/LSTM/Gather graphs: dynamic quantization (int8 weights, activations quantized per
  call) needs no calibration data. In a BERT the weight MatMuls become MatMulInteger and the
  embedding tables int8; the attention's activation-by-activation MatMuls stay fp32.
- The CNN is Conv-heavy: dynamically quantized Conv becomes ConvInteger, which onnxruntime's CPU
  provider does not run, so it gets static QDQ quantization, its activation ranges calibrated on
  real training images (never the test images the parity report scores).
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


def quantize_static_graph(
    source: Path, target: Path, input_name: str, calibration: np.ndarray
) -> None:
    """QDQ int8 with MinMax activation ranges over `calibration` (float32 [N, ...], preprocessed)."""
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
        per_channel=True,  # one scale per output channel keeps small conv filters accurate
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
    )
