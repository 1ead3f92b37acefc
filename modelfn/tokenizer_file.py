"""Texts -> a graph's token tensors, as a manifest's `TokenizerPreprocessing` and its tokenizer
file (a Hugging Face `tokenizer.json`) define them.

The one implementation of it: `modelfn import` holds it equal to `transformers.AutoTokenizer` on
the folder it imports, and the function runs it on every request. The Rust `tokenizers` library
runs the file's pipeline (normaliser, pre-tokeniser, model, post-processor); truncation and
padding are set from the manifest, whatever the file's own `truncation` and `padding` sections
say, so that what serving does is what the contract declares. No torch, no transformers:
`tokenizers` is imported when a tokenizer is built, so functions that serve other models never
load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from modelfn.artifact import ArtifactError, TokenizerPreprocessing


@dataclass(frozen=True)
class Encoded:
    """A batch of texts as token ids, before padding (one list per text)."""

    ids: list[list[int]]
    type_ids: list[list[int]]

    @property
    def lengths(self) -> list[int]:
        """Tokens per text, special tokens included (what OpenAI's `usage` counts)."""
        return [len(ids) for ids in self.ids]


class TokenizerFile:
    """A `TokenizerPreprocessing` bound to its tokenizer file's bytes."""

    def __init__(self, spec: TokenizerPreprocessing, data: bytes, source: str = "") -> None:
        """Build the tokenizer; ArtifactError naming `source` if the bytes are not one."""
        from tokenizers import Tokenizer

        where = source or spec.file
        try:
            tokenizer = Tokenizer.from_str(data.decode("utf-8"))
        except Exception as exc:  # not UTF-8, not JSON, or tokenizers' own plain Exception
            raise ArtifactError(f"{where} is not a tokenizers tokenizer.json: {exc}") from exc
        if not 0 <= spec.pad_id < tokenizer.get_vocab_size(with_added_tokens=True):
            raise ArtifactError(
                f"preprocessing.pad_id {spec.pad_id} is not an id of {where} "
                f"({tokenizer.get_vocab_size(with_added_tokens=True)} tokens)"
            )
        tokenizer.no_padding()  # padding is done below, to the batch's longest or max_length
        if spec.truncation:
            # What transformers sets for `truncation=True, max_length=...`; the post-processor's
            # special tokens are kept, the text's own tokens are cut.
            tokenizer.enable_truncation(
                spec.max_length, stride=0, strategy="longest_first", direction=spec.truncation_side
            )
        else:
            tokenizer.no_truncation()
        self.spec = spec
        self._tokenizer: Any = tokenizer
        # The id out-of-vocabulary text becomes (WordPiece's [UNK]); None for a tokenizer that
        # has none (byte-level BPE spells every text in known tokens).
        unk = getattr(tokenizer.model, "unk_token", None)
        self.unknown_id: int | None = tokenizer.token_to_id(unk) if unk else None

    def encode(self, texts: list[str]) -> Encoded:
        """Each text's ids and type ids, special tokens added, truncated if the spec says so.

        Without truncation a text may come out longer than `max_length`: the caller refuses it.
        """
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        return Encoded([e.ids for e in encodings], [e.type_ids for e in encodings])

    def feeds(self, encoded: Encoded) -> dict[str, NDArray[np.int64]]:
        """The graph's int64 inputs for the batch, by the names `spec.inputs` gives, padded."""
        spec = self.spec
        width = spec.max_length if spec.padding == "max_length" else max(encoded.lengths, default=0)
        ids = np.full((len(encoded.ids), width), spec.pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, (tokens, type_ids) in enumerate(zip(encoded.ids, encoded.type_ids, strict=True)):
            where = (
                slice(0, len(tokens))
                if spec.padding_side == "right"
                else slice(width - len(tokens), width)
            )
            ids[row, where] = tokens
            mask[row, where] = 1
            types[row, where] = type_ids
        names = spec.inputs
        feeds = {names.input_ids: ids}
        if names.attention_mask is not None:
            feeds[names.attention_mask] = mask
        if names.token_type_ids is not None:
            feeds[names.token_type_ids] = types
        return feeds
