"""The rule that picks a version's examples.json from held-out data (training/examples.py)."""

from __future__ import annotations

import numpy as np

from training.examples import (
    review_examples,
    sentence_examples,
    spread_over_labels,
)


def test_labels_are_taken_in_turn_in_the_splits_order() -> None:
    labels = [3, 3, 1, 0, 1, 3, 0]
    assert spread_over_labels(labels, range(7), 4) == [3, 2, 0, 6]
    assert spread_over_labels(labels, range(7), 10) == [3, 2, 0, 6, 4, 1, 5]
    assert spread_over_labels(labels, [1, 4], 4) == [4, 1]


def test_reviews_are_short_and_keep_their_text_and_label() -> None:
    texts = ["word " * 81, "a fine film", "dull", "great fun", "awful"]
    chosen = review_examples(texts, np.array([1, 1, 0, 1, 0]), ["negative", "positive"], "test")
    assert [(e.index, e.label, e.input) for e in chosen] == [
        (2, "negative", "dull"),
        (1, "positive", "a fine film"),
        (4, "negative", "awful"),
        (3, "positive", "great fun"),
    ]


def test_sentences_without_the_unknown_token_of_readable_length() -> None:
    sentences = [
        ["too", "short"],
        ["the", "<unk>", "company", "said", "it", "would", "sell"],
        ["the", "company", "said", "it", "would", "sell", "its", "stake"],
        ("word " * 21).split(),
    ]
    (chosen,) = sentence_examples(sentences, "<unk>", "test")
    assert (chosen.index, chosen.input, chosen.label) == (2, " ".join(sentences[2]), None)
