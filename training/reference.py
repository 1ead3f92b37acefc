"""A trained version's reference statistics (modelfn/reference_stats.py), on its held-out split.

The features are modelfn/input_features.py's, computed on the inputs as a client would send them
(a test image's pixels, a test review's text), so `modelfn drift` compares like with like; the
answers are the trained model's own on the same split.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modelfn.input_features import image_features, token_text_features
from modelfn.reference_stats import ReferenceStats, classifier_answers, reference_stats
from modelfn.text import Tokenizer

_CHUNK = 1000  # images per pass: 10,000 CIFAR images at once would be 245 MB of float64


def image_reference(
    images_nchw: np.ndarray, logits: np.ndarray, labels: Sequence[str], split: str
) -> ReferenceStats:
    """`images_nchw`: uint8 [N, 3, H, W] as the data set holds them; `logits`: [N, labels]."""
    features: list[dict[str, float]] = []
    for start in range(0, len(images_nchw), _CHUNK):
        chunk = images_nchw[start : start + _CHUNK].transpose(0, 2, 3, 1)  # to [N, H, W, 3]
        height, width = chunk.shape[1:3]
        features += image_features([(width, height)] * len(chunk), chunk)
    predicted, scores = classifier_answers(logits, labels)
    return reference_stats(
        features,
        data=f"the {split} split: {len(features)} images",
        labels=labels,
        predicted=predicted,
        scores=scores,
    )


def text_reference(
    texts: Sequence[str],
    tokenizer: Tokenizer,
    split: str,
    logits: np.ndarray | None = None,
    labels: Sequence[str] = (),
) -> ReferenceStats:
    """Texts as clients send them; a classifier's `logits` [N, labels] where it has answers."""
    unknown = tokenizer.spec.unknown_token
    features = [token_text_features(t, tokenizer.tokens(t), unknown) for t in texts]
    predicted, scores = classifier_answers(logits, labels) if logits is not None else (None, None)
    return reference_stats(
        features,
        data=f"the {split} split: {len(features)} texts",
        labels=labels or None,
        predicted=predicted,
        scores=scores,
    )
