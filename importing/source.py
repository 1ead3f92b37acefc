"""What each kind of source hands the rest of an import: the graph written into the work folder,
opened in a session, and how to check it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from importing.hf_tokenizer import TextSource
from importing.parity import Reference
from modelfn.artifact import ImagePreprocessing, Scores, TensorSpec, TokenizerPreprocessing

# Every import reads the graph with onnx, runs it with onnxruntime and the examples with numpy
# and Pillow; a torch import also builds, exports and saves with torch and safetensors.
ONNX_PACKAGES = ("onnx", "onnxruntime", "numpy", "pillow")
TORCH_PACKAGES = ("torch", "safetensors", *ONNX_PACKAGES)

# `package.module:callable`, the callable possibly an attribute path (`models:Zoo.resnet18`).
REFERENCE = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)$")


def is_reference(text: str) -> bool:
    return REFERENCE.fullmatch(text) is not None


@dataclass
class Built:
    session: Any  # onnxruntime.InferenceSession of the work folder's model.onnx
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preprocessing: ImagePreprocessing | TokenizerPreprocessing | None
    reference: Reference | None  # None: an ONNX file, checked against itself at batch 1
    source: str  # ImportRecord.source
    reference_text: str  # ImportRecord.reference
    source_sha256: dict[str, str]
    version_file: str  # the file whose sha256 names the version
    packages: tuple[str, ...]  # that produced and checked the files: Manifest.frameworks
    options: dict[str, Any] = field(default_factory=dict)  # what the source adds to the record
    labels: list[str] | None = None  # the source's own class names (config.json); None: given
    text: TextSource | None = None  # a text model's tokenizer and its reference
    scores: Scores | None = None  # the source's own (a folder's problem_type); None: not said
