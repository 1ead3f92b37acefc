"""The real held-out inputs a version ships in `examples.json` (`modelfn.artifact.Examples`).

The API documentation of a function (functions/openapi.py) and pages that show a model at work
use them, so what they show is the data set's own test data, picked by a fixed rule from the
split the model was scored on, never from what it trained on. Each is an input exactly as the
friendly predict route takes it: a base64 PNG for an image, the text itself otherwise.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterable, Sequence

import numpy as np

from modelfn.artifact import Example

COUNT = 4  # enough for the docs to show a few answers, small enough to read (a PNG is ~3 kB)
# Reviews a reader takes in at a glance; IMDB's run to 2,500 words.
MAX_REVIEW_WORDS = 80
# Sentences long enough to be a prompt and short enough to read.
SENTENCE_WORDS = (6, 20)


def spread_over_labels(
    labels: Sequence[int] | np.ndarray, eligible: Iterable[int], count: int
) -> list[int]:
    """Up to `count` of the `eligible` indices: the first of each label, then the second, ...

    Taking the labels in turn makes the examples show different answers, and the split's own
    order makes the choice the same on every run.
    """
    by_label: dict[int, list[int]] = {}
    for i in eligible:
        by_label.setdefault(int(labels[i]), []).append(i)
    picked: list[int] = []
    for rank in range(count):
        for label in sorted(by_label):
            if rank < len(by_label[label]) and len(picked) < count:
                picked.append(by_label[label][rank])
    return picked


def png_base64(image: np.ndarray) -> str:
    """uint8 [3, H, W] (the data sets' CHW) -> the base64 PNG a client would send."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0))).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def image_examples(
    images: np.ndarray, labels: np.ndarray, label_names: list[str], split: str, count: int = COUNT
) -> list[Example]:
    """Images of `count` different classes from the held-out split, as base64 PNGs."""
    return [
        Example(input=png_base64(images[i]), split=split, index=i, label=label_names[labels[i]])
        for i in spread_over_labels(labels, range(len(labels)), count)
    ]


def review_examples(
    texts: list[str], labels: np.ndarray, label_names: list[str], split: str, count: int = COUNT
) -> list[Example]:
    """Short held-out reviews (at most MAX_REVIEW_WORDS words), the labels taken in turn."""
    short = (i for i, text in enumerate(texts) if len(text.split()) <= MAX_REVIEW_WORDS)
    return [
        Example(input=texts[i], split=split, index=i, label=label_names[labels[i]])
        for i in spread_over_labels(labels, short, count)
    ]


def sentence_examples(
    sentences: list[list[str]], unknown_token: str, split: str, count: int = COUNT
) -> list[Example]:
    """The first held-out sentences of SENTENCE_WORDS words with no unknown-word token.

    A user never types the corpus's `<unk>`, so a sentence with one would be a poor prompt.
    """
    low, high = SENTENCE_WORDS
    chosen = [
        i
        for i, words in enumerate(sentences)
        if low <= len(words) <= high and unknown_token not in words
    ][:count]
    return [Example(input=" ".join(sentences[i]), split=split, index=i) for i in chosen]
