"""What the caller asks for is checked first: the task, its labels, image scheme and text options,
the name, the tolerance and the source's form, each refusal saying what to change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from importing import ImageOptions, ImportRefused, TextOptions, import_model
from tests.support.import_sources import nothing_written

SCHEME = ImageOptions(mean=(0.5,) * 3, std=(0.5,) * 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"task": "language-modeling"},
            (
                "cannot be imported; use one of: image-classification, text-classification, "
                "feature-extraction, tensor"
            ),
        ),
        (
            {"task": "feature-extraction"},
            "feature-extraction imports from a Hugging Face folder",
        ),
        (
            {"task": "tensor", "text": TextOptions(max_length=64)},
            (
                "the text options (max length, truncation, pooling, normalisation) belong to a "
                "Hugging Face folder"
            ),
        ),
        (
            {"task": "tensor", "labels": ["a", "b"]},
            "the tensor task serves the graph's tensors as they are and has no labels",
        ),
        ({"task": "tensor", "image": SCHEME}, "the tensor task has no image preprocessing"),
        (
            {"task": "image-classification", "image": SCHEME},
            "image-classification needs the class names, in logit order",
        ),
        (
            {"task": "image-classification", "labels": ["cat", "dog", "cat"], "image": SCHEME},
            "labels must be distinct and non-empty (repeated: cat; 0 empty)",
        ),
        (
            {"task": "image-classification", "labels": ["cat", "dog"]},
            "image-classification needs its image scheme: at least --mean and --std",
        ),
        ({"task": "tensor", "name": "My_Model"}, "name 'My_Model' is not a model name"),
        ({"task": "tensor", "tolerance": 0.0}, "tolerance must be a positive number, got 0.0"),
        (
            {"task": "tensor", "source": "model.pt"},
            (
                "is neither a Hugging Face folder (save_pretrained's), an .onnx file nor "
                "package.module:callable"
            ),
        ),
        ({"task": "tensor"}, "model.onnx does not exist; give the path of an .onnx file"),
    ],
)
def test_the_request_is_checked_before_anything_runs(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    out = tmp_path / "out"
    arguments = {"name": "my-model", "source": str(tmp_path / "model.onnx"), **kwargs}
    with pytest.raises(ImportRefused) as caught:
        import_model(arguments.pop("source"), out_dir=out, **arguments)
    assert message in str(caught.value)
    assert nothing_written(out)
