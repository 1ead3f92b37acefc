"""Export a trained module to one self-contained ONNX file and prove onnxruntime agrees with torch.

The graph contract (see modelfn.artifact): input "input" float32 [batch, ...] with a dynamic
batch dimension, output "logits" float32 [batch, num_classes]. The weights are stored inside the
file (external_data=False) because the function downloads and verifies exactly one graph file.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.errors import TrainingError

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


class ParityError(TrainingError):
    """onnxruntime and torch disagree on the same inputs by more than the tolerance."""


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Write `model` (in eval mode) to `path`; `example` fixes every dimension but the batch."""
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    # The exporter warns that torchvision's ops are unregistered and about its own deprecated
    # internals: noise in `modelfn train` output that says nothing about this model.
    exporter_log.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},),
                external_data=False,
                verbose=False,
            )
    finally:
        exporter_log.setLevel(level)
    if program is None:
        raise RuntimeError("torch.onnx.export(dynamo=True) returned no program")
    program.save(str(path), external_data=False)
    return path


def onnx_max_abs_diff(onnx_path: Path, model: nn.Module, inputs: np.ndarray) -> float:
    """Largest |torch - onnxruntime| over all logits of `inputs` (float32, real data)."""
    import onnxruntime as ort  # only needed here; keeps `import training.export_onnx` cheap

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (ort_logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: inputs.astype(np.float32)})
    model.eval()
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(inputs)).numpy()
    if ort_logits.shape != torch_logits.shape:
        raise ParityError(
            f"{onnx_path}: output shape {ort_logits.shape}, torch gives {torch_logits.shape}"
        )
    return float(np.max(np.abs(ort_logits - torch_logits)))


def check_parity(onnx_path: Path, model: nn.Module, inputs: np.ndarray, tolerance: float) -> float:
    """Raise ParityError if the graph and the module differ by more than `tolerance`; return the diff."""
    diff = onnx_max_abs_diff(onnx_path, model, inputs)
    if not diff <= tolerance:  # `not <=` also catches NaN
        raise ParityError(
            f"{onnx_path}: onnxruntime and torch logits differ by up to {diff:.3g} on {len(inputs)} "
            f"real images (tolerance {tolerance:g}); do not publish this graph"
        )
    return diff
