"""Texts in, token lists out: the checks every text task makes, and the vocabulary it loads.

Tokenisation itself is `modelfn.text.Tokenizer`, the code training used, driven by the version's
`TextPreprocessing` and vocabulary file; nothing here re-implements it. Every problem is a
BadInput naming the input: `inputs[2]: empty text`, `inputs[0]: 3,120 tokens, over ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from functions.errors import BadInput
from functions.limits import MAX_BATCH, MAX_TEXT_BYTES, MAX_TOTAL_TOKENS
from functions.observability import capture_draft
from modelfn.artifact import (
    ArtifactError,
    Manifest,
    TensorSpec,
    TextPreprocessing,
    parse_vocabulary,
    read_verified,
)
from modelfn.input_features import token_text_features
from modelfn.text import Tokenizer

TEXT_INPUT = "text"  # the OIP input of every text task: BYTES [batch], one UTF-8 text each


def text_input_spec() -> TensorSpec:
    return TensorSpec(name=TEXT_INPUT, datatype="BYTES", shape=[-1])


def load_tokenizer(manifest: Manifest, folder: Path) -> Tokenizer:
    """The version's tokenizer; the vocabulary's bytes are checked against the manifest as read."""
    pre = manifest.preprocessing
    if not isinstance(pre, TextPreprocessing):
        raise ArtifactError(f"{manifest.name}: task {manifest.task} needs text preprocessing")
    data = read_verified(folder, manifest, pre.vocabulary)
    return Tokenizer.build(pre, parse_vocabulary(data, source=str(folder / pre.vocabulary)))


def read_texts(inputs: list[Any], tokenizer: Tokenizer, name: str = "inputs") -> list[list[str]]:
    """Each input's tokens; BadInput for a non-string, empty, too long or wordless text.

    `name` is how messages name the list: `inputs` on the friendly route, the tensor's name
    (`text`) over OIP.
    """
    if not inputs:
        raise BadInput(f"{name}: empty; send at least one text")
    if len(inputs) > MAX_BATCH:
        raise BadInput(
            f"{name}: {len(inputs)} texts, at most {MAX_BATCH} per request; split the batch"
        )
    max_tokens = tokenizer.spec.max_tokens
    texts, total = [], 0
    for i, text in enumerate(inputs):
        where = f"{name}[{i}]"
        if not isinstance(text, str):
            raise BadInput(f"{where}: expected a string of text, got {type(text).__name__}")
        size = len(text.encode("utf-8", errors="surrogatepass"))
        if size > MAX_TEXT_BYTES:
            raise BadInput(
                f"{where}: {size:,} bytes of text, over the limit of {MAX_TEXT_BYTES:,}; shorten it"
            )
        if not text.strip():
            raise BadInput(f"{where}: empty text; send at least one word")
        tokens = tokenizer.tokens(text)
        if not tokens:
            raise BadInput(f"{where}: no words left after tokenisation (only punctuation?)")
        if len(tokens) > max_tokens:
            raise BadInput(
                f"{where}: {len(tokens):,} tokens, over this model's maximum of {max_tokens:,}; "
                "shorten the text or split it"
            )
        total += len(tokens)
        texts.append(tokens)
    if total > MAX_TOTAL_TOKENS:
        raise BadInput(
            f"{name}: {total:,} tokens in all, over the limit of {MAX_TOTAL_TOKENS:,} per request; "
            "send fewer texts per request"
        )
    draft = capture_draft()
    if draft is not None:  # a sampled request: lengths and unknown words, never the words
        unknown = tokenizer.spec.unknown_token
        draft.features = [
            token_text_features(text, tokens, unknown)
            for text, tokens in zip(inputs, texts, strict=True)
        ]
    return texts


def texts_of(tensor: NDArray[Any], name: str = TEXT_INPUT) -> list[str]:
    """An OIP BYTES tensor [batch] -> its texts; BadInput naming the element that is not UTF-8."""
    texts = []
    for i, value in enumerate(tensor.reshape(-1)):
        try:
            texts.append(bytes(value).decode("utf-8"))
        except UnicodeDecodeError:
            raise BadInput(f"{name}[{i}]: not UTF-8 text") from None
    return texts


def padded(rows: list[list[int]], pad: int) -> NDArray[np.int64]:
    """Ragged id lists -> int64 [len(rows), longest], right-padded with `pad`."""
    out = np.full((len(rows), max(len(r) for r in rows)), pad, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out
