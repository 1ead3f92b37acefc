"""What every task's trainer hands back to the pipeline, which turns it into an artifact."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from modelfn.artifact import ImagePreprocessing, TextPreprocessing
from training.export_onnx import GraphTensor


@dataclass
class TrainedModel:
    model: nn.Module
    labels: list[str]  # class names in logit order; empty for a language model
    preprocessing: ImagePreprocessing | TextPreprocessing
    inputs: list[GraphTensor]  # the ONNX graph's signature, in the module's argument order
    outputs: list[GraphTensor]
    metrics: dict[str, float]
    seconds: float  # wall time of the training loop
    export_example: tuple[torch.Tensor, ...]  # one tensor per input; named dims at least 2
    parity_feeds: dict[str, np.ndarray]  # real held-out inputs by graph input name
    files: dict[str, bytes] = field(default_factory=dict)  # more files of the version (vocabulary)
