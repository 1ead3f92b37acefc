"""Training records its version's reference statistics on the held-out split (issue 23 item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfn.artifact import read_manifest
from modelfn.input_features import IMAGE_KINDS, TEXT_KINDS
from modelfn.reference_stats import CONFIDENCE_BINS, QUANTILE_POINTS


def test_the_image_reference_covers_the_test_split_and_the_answers(cifar_artifact: Path) -> None:
    manifest = read_manifest(cifar_artifact)
    reference = manifest.reference
    assert reference is not None and manifest.data is not None
    held = manifest.data.examples["test"]
    assert reference.examples == held and f"{held} images" in reference.data
    assert set(reference.features) == set(IMAGE_KINDS)
    width = reference.features["width"]
    assert width.quantiles == [32.0] * QUANTILE_POINTS and width.counts == [0, held, 0]
    brightness = reference.features["brightness"]
    assert sum(brightness.counts) == held and 60 < brightness.mean < 180
    assert brightness.counts[0] == brightness.counts[-1] == 0  # nothing below min or above max
    assert brightness.quantiles == sorted(brightness.quantiles)
    # The trained model's answers: every label counted, the test accuracy's share agreeing.
    assert reference.labels is not None and list(reference.labels) == manifest.labels
    assert sum(reference.labels.values()) == held
    assert reference.confidence is not None and len(reference.confidence) == CONFIDENCE_BINS
    assert sum(reference.confidence) == held


@pytest.mark.parametrize("fixture", ["imdb_artifact", "ptb_artifact"])
def test_the_text_reference_is_lengths_and_unknown_words(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    manifest = read_manifest(request.getfixturevalue(fixture))
    reference = manifest.reference
    assert reference is not None and set(reference.features) == set(TEXT_KINDS)
    tokens, chars = reference.features["tokens"], reference.features["chars"]
    assert 1 <= tokens.quantiles[0] < tokens.quantiles[-1]
    assert chars.mean > tokens.mean  # a word is longer than one character
    assert 0 <= reference.features["oov_rate"].mean < 0.5
    if manifest.task == "language-modeling":  # no labels to count
        assert reference.labels is None and reference.confidence is None
    else:
        assert reference.labels is not None
        assert sum(reference.labels.values()) == reference.examples
