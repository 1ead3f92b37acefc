"""Text -> tokens -> ids, as a manifest's `TextPreprocessing` and vocabulary file define it.

The one implementation of tokenisation: training builds its vocabulary and its tensors with it,
and the functions replay it on every request, so a served model sees exactly the ids it was
trained on. The rules are data in the manifest; this module only interprets them (see
`modelfn.artifact.TextPreprocessing` for the order of the steps).

Pure Python and `re`: no numpy, no torch, so the functions import it for free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from modelfn.artifact import ArtifactError, TextPreprocessing


@dataclass(frozen=True)
class Tokenizer:
    """A compiled `TextPreprocessing` plus its vocabulary (token -> id = position in the file)."""

    spec: TextPreprocessing
    vocabulary: list[str]
    ids: dict[str, int] = field(repr=False)
    _substitutions: list[tuple[re.Pattern[str], str]] = field(repr=False)
    _number: re.Pattern[str] | None = field(repr=False)

    @classmethod
    def build(cls, spec: TextPreprocessing, vocabulary: list[str]) -> Tokenizer:
        """Compile `spec` against `vocabulary`; ArtifactError if a special token or regex is bad.

        An empty vocabulary gives the tokenizer that training builds a vocabulary with (`words`).
        """
        ids = {token: i for i, token in enumerate(vocabulary)}
        for name in ("unknown_token", "eos_token", "padding_token", "number_token"):
            token = getattr(spec, name)
            if vocabulary and token is not None and token not in ids:
                raise ArtifactError(
                    f"preprocessing.{name} {token!r} is not in the vocabulary ({spec.vocabulary})"
                )
        if vocabulary and spec.padding_token is not None and ids[spec.padding_token] != 0:
            raise ArtifactError(
                f"preprocessing.padding_token {spec.padding_token!r} must have id 0"
            )
        try:
            substitutions = [(re.compile(s.pattern), s.replacement) for s in spec.substitutions]
            number = re.compile(spec.number_pattern) if spec.number_pattern else None
        except re.error as exc:
            raise ArtifactError(f"preprocessing has an invalid regular expression: {exc}") from exc
        return cls(spec, list(vocabulary), ids, substitutions, number)

    # --- the steps, in the order TextPreprocessing documents -------------------------------------

    def words(self, text: str) -> list[str]:
        """The words of `text` after every rule but the unknown-token mapping.

        With an empty vocabulary these are the normalised words a vocabulary is built from.
        """
        for pattern, replacement in self._substitutions:
            text = pattern.sub(replacement, text)
        return [word for raw in text.split() if (word := self._normalise(raw))]

    def tokens(self, text: str) -> list[str]:
        """The vocabulary tokens of `text`: its words, the unknown token for those not known."""
        unknown = self.spec.unknown_token
        return [word if word in self.ids else unknown for word in self.words(text)]

    def _normalise(self, word: str) -> str:
        if word in self.ids:
            return word
        if self.spec.lowercase:
            word = word.lower()
            if word in self.ids:
                return word
        word = word.strip(self.spec.strip_chars) if self.spec.strip_chars else word
        if word and self._number is not None and self._number.fullmatch(word):
            return self.spec.number_token or word
        return word

    def encode(self, text: str) -> list[int]:
        """Unigram token ids of `text`."""
        return [self.ids[token] for token in self.tokens(text)]

    def features(self, tokens: list[str]) -> list[int]:
        """Ids of the unigrams, then of every known 2..ngrams-gram (bag-of-n-grams models).

        With `spec.binary`, each id once, where it first occurs (presence features).
        """
        grams = (self.ids.get(gram) for gram in ngrams(tokens, self.spec.ngrams))
        ids = [self.ids[token] for token in tokens] + [i for i in grams if i is not None]
        return list(dict.fromkeys(ids)) if self.spec.binary else ids


def ngrams(tokens: list[str], n: int) -> list[str]:
    """Every run of 2..n consecutive tokens, joined by one space, in order of n then position."""
    grams = []
    for size in range(2, n + 1):
        grams += [" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)]
    return grams
