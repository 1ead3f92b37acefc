"""The tokenizer every layer shares: the manifest's rules, replayed the same way everywhere."""

from __future__ import annotations

import pytest

from modelfn.artifact import (
    ArtifactError,
    Substitution,
    TextPreprocessing,
    parse_vocabulary,
    vocabulary_json,
)
from modelfn.text import Tokenizer, ngrams

PTB_LIKE = TextPreprocessing(
    lowercase=True,
    substitutions=[Substitution(pattern=r"(?i)(\w)(n't)\b", replacement=r"\1 \2")],
    strip_chars=".,\"'",
    number_pattern=r"[0-9]+(?:[.,][0-9]+)*",
    number_token="N",
    unknown_token="<unk>",
    eos_token="<eos>",
    max_tokens=10,
)
VOCAB = ["<eos>", "<unk>", "N", "the", "mr.", "did", "n't", "say"]


def test_rules_apply_in_order_and_the_vocabulary_is_consulted_first() -> None:
    tok = Tokenizer.build(PTB_LIKE, VOCAB)
    # "Mr." lower-cases to the known "mr." (keeps its period); "say." is unknown, so its period
    # is stripped; "3,000" is a number; "N" and "<unk>" are vocabulary words as written.
    assert tok.tokens('Mr. Smith didn\'t say "3,000." N <unk>') == [
        "mr.", "<unk>", "did", "n't", "say", "N", "N", "<unk>",
    ]  # fmt: skip
    assert tok.encode("the say") == [3, 7]
    assert tok.tokens("... , ''") == []  # punctuation alone disappears


def test_an_empty_vocabulary_gives_the_normalised_words_to_build_one_from() -> None:
    assert Tokenizer.build(PTB_LIKE, []).words("The 5 cats, didn't") == [
        "the",
        "N",
        "cats",
        "did",
        "n't",
    ]


def test_ngram_features_follow_the_unigrams_and_only_known_ngrams_count() -> None:
    spec = PTB_LIKE.model_copy(update={"ngrams": 2})
    tok = Tokenizer.build(spec, [*VOCAB, "the say", "did n't"])
    tokens = tok.tokens("the say did n't the")
    assert ngrams(tokens, 2) == ["the say", "say did", "did n't", "n't the"]
    assert tok.features(tokens) == [3, 7, 5, 6, 3, 8, 9]


def test_special_tokens_must_be_in_the_vocabulary_and_padding_must_be_id_zero() -> None:
    with pytest.raises(
        ArtifactError, match=r"preprocessing.eos_token '<eos>' is not in the vocabulary"
    ):
        Tokenizer.build(PTB_LIKE, ["<unk>", "N"])
    padded = PTB_LIKE.model_copy(update={"padding_token": "<pad>"})
    with pytest.raises(ArtifactError, match=r"padding_token '<pad>' must have id 0"):
        Tokenizer.build(padded, [*VOCAB, "<pad>"])


def test_a_bad_regular_expression_is_an_artifact_error() -> None:
    bad = PTB_LIKE.model_copy(update={"substitutions": [Substitution(pattern="(", replacement="")]})
    with pytest.raises(ArtifactError, match="invalid regular expression"):
        Tokenizer.build(bad, VOCAB)


def test_the_vocabulary_file_round_trips_and_refuses_what_is_not_a_token_list() -> None:
    data = vocabulary_json(["<pad>", "naïve", "the say"])
    assert parse_vocabulary(data) == ["<pad>", "naïve", "the say"]
    assert data.decode().splitlines()[1:4] == [
        '"<pad>",',
        '"naïve",',
        '"the say"',
    ]  # a token a line
    for bad, message in [
        (b"\xff", "not UTF-8 JSON"),
        (b'{"a": 1}', "JSON list of non-empty strings"),
        (b'["a", ""]', "JSON list of non-empty strings"),
        (b'["a", "a"]', "lists a token twice"),
    ]:
        with pytest.raises(ArtifactError, match=message):
            parse_vocabulary(bad)


def test_number_rule_needs_both_halves() -> None:
    with pytest.raises(ValueError, match="number_pattern and number_token go together"):
        TextPreprocessing.model_validate({**PTB_LIKE.model_dump(), "number_token": None})
