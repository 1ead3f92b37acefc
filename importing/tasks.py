"""What each importable task asks of the options and of the graph.

image-classification: labels, an image scheme, one FP32 image input, and a first output of
logits [N, number of labels] (serving applies the softmax). tensor: any graph, its tensors served
as they are: no labels, no image scheme. text-classification and feature-extraction: a Hugging
Face folder, whose tokenizer the function runs; a folder also brings an image classifier's scheme
(preprocessor_config.json) and its labels (config.json's id2label).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from importing.errors import ImportRefused
from importing.image_scheme import ImageOptions
from importing.tensors import shape_text
from importing.text_options import TextOptions
from modelfn.artifact import TensorSpec
from modelfn.registry import IMPORTABLE_TASKS

SourceKind = Literal["onnx", "torch-module", "huggingface"]
TEXT_TASKS = ("text-classification", "feature-extraction")  # a Hugging Face folder only
FOLDER_TASKS = ("text-classification", "feature-extraction", "image-classification")


def check_options(
    task: str,
    labels: Sequence[str],
    image: ImageOptions | None,
    source: SourceKind,
    text: TextOptions | None = None,
) -> None:
    """Refuse a task this import cannot make from `source`, or options that do not belong."""
    if task not in IMPORTABLE_TASKS:
        raise ImportRefused(
            f"task {task!r} cannot be imported; use one of: {', '.join(IMPORTABLE_TASKS)}"
        )
    if source == "huggingface":
        _check_folder_options(task, labels, image, text)
        return
    if task in TEXT_TASKS:
        raise ImportRefused(
            f"{task} imports from a Hugging Face folder (config.json, the weights and "
            "tokenizer.json, as save_pretrained writes them): the function serves text through "
            "the model's own tokenizer, which an ONNX file or a torch module does not carry"
        )
    if text is not None:
        raise ImportRefused(
            "the text options (max length, truncation, pooling, normalisation) belong to a "
            "Hugging Face folder imported as text-classification or feature-extraction"
        )
    if task == "tensor":
        if labels:
            raise ImportRefused(
                "the tensor task serves the graph's tensors as they are and has no labels; drop "
                "--labels, or import as image-classification"
            )
        if image is not None:
            raise ImportRefused(
                "the tensor task has no image preprocessing; drop the image options, or import "
                "as image-classification"
            )
        return
    if not labels:
        raise ImportRefused(
            "image-classification needs the class names, in logit order: --labels a,b,c or "
            "--labels-file FILE (one per line)"
        )
    check_label_names(labels)
    if image is None:
        raise ImportRefused(
            "image-classification needs its image scheme: at least --mean and --std (the "
            "normalisation the model was trained with, e.g. ImageNet's 0.485,0.456,0.406 and "
            "0.229,0.224,0.225)"
        )


def _check_folder_options(
    task: str, labels: Sequence[str], image: ImageOptions | None, text: TextOptions | None
) -> None:
    """A Hugging Face folder brings its own scheme, labels (id2label) and tokenizer."""
    if task not in FOLDER_TASKS:
        raise ImportRefused(
            f"a Hugging Face folder imports as {', '.join(FOLDER_TASKS)}, not {task}; for "
            "other graphs, export the model to ONNX yourself and import the .onnx file"
        )
    if image is not None:
        raise ImportRefused(
            "a Hugging Face folder's image scheme comes from its preprocessor_config.json; drop "
            "the image options (--mean, --std, --image-size, ...)"
        )
    if labels:
        if task == "feature-extraction":
            raise ImportRefused("feature-extraction has no labels; drop --labels")
        check_label_names(labels)
    if text is not None:
        if task not in TEXT_TASKS:
            raise ImportRefused(
                "the text options (max length, truncation, pooling, normalisation) belong to "
                "text-classification and feature-extraction"
            )
        if task != "feature-extraction" and (text.pooling != "mean" or text.normalize):
            raise ImportRefused(
                "pooling and normalisation make embeddings: they belong to feature-extraction"
            )
        if text.max_length is not None and text.max_length < 2:
            raise ImportRefused(
                f"max length {text.max_length}: give at least 2 tokens (the special tokens of "
                "most tokenizers take two)"
            )


def check_label_names(labels: Sequence[str]) -> None:
    if len(set(labels)) != len(labels) or not all(label.strip() for label in labels):
        twice = sorted({label for label in labels if labels.count(label) > 1})
        raise ImportRefused(
            f"labels must be distinct and non-empty (repeated: {', '.join(twice) or 'none'}; "
            f"{sum(1 for label in labels if not label.strip())} empty)"
        )


def check_classifier_graph(
    inputs: list[TensorSpec], outputs: list[TensorSpec], labels: Sequence[str]
) -> None:
    """One FP32 input; the first output [N, C] with C = the number of labels where fixed."""
    if len(inputs) != 1 or inputs[0].datatype != "FP32":
        found = ", ".join(f"{s.name} {s.datatype} {shape_text(s.shape)}" for s in inputs)
        raise ImportRefused(
            f"image-classification takes one FP32 image input; the graph takes {found}; import "
            "it with --task tensor instead"
        )
    logits = outputs[0]
    if len(logits.shape) != 2:
        raise ImportRefused(
            f"image-classification needs the first output to be logits [N, classes]; "
            f"{logits.name!r} is {shape_text(logits.shape)}"
        )
    check_label_count(logits, logits.shape[1], labels)


def check_label_count(logits: TensorSpec, width: int, labels: Sequence[str]) -> None:
    if width != -1 and width != len(labels):
        raise ImportRefused(
            f"output {logits.name!r} gives {width} scores per input but {len(labels)} labels "
            "were given; give one label per score, in the model's output order"
        )
