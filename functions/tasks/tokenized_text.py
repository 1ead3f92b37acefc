"""Texts in, the graph inputs of a model with a Hugging Face tokenizer out (`kind: tokenizer`).

Tokenisation is `modelfn.tokenizer_file.TokenizerFile`, the code `modelfn import` held equal to
transformers' AutoTokenizer, driven by the version's `TokenizerPreprocessing` and its
`tokenizer.json`; nothing here re-implements it. This module makes the checks every text task
makes and names the input in each: `inputs[2]: empty text`, `inputs[0]: 700 tokens, over ...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from functions.errors import BadInput
from functions.limits import MAX_BATCH, MAX_TEXT_BYTES, MAX_TOTAL_TOKENS
from functions.observability import capture_draft
from modelfn.artifact import ArtifactError, Manifest, TokenizerPreprocessing, read_verified
from modelfn.input_features import token_text_features
from modelfn.tokenizer_file import TokenizerFile


@dataclass(frozen=True)
class TokenizedTexts:
    feeds: dict[str, NDArray[np.int64]]  # the graph's inputs, padded
    tokens: int  # in all, special tokens included, padding not


def load_tokenizer_file(manifest: Manifest, folder: Path) -> TokenizerFile:
    """The version's tokenizer, its file checked against the manifest as it is read; the graph
    must take exactly the tokenizer's tensors, as int64."""
    pre = manifest.preprocessing
    if not isinstance(pre, TokenizerPreprocessing):
        raise ArtifactError(f"{manifest.name}: task {manifest.task} needs tokenizer preprocessing")
    fed = pre.inputs.names()
    graph = {spec.name: spec for spec in manifest.inputs}
    if sorted(fed) != sorted(graph):
        raise ArtifactError(
            f"{manifest.name}: the tokenizer feeds {fed}, the graph takes {sorted(graph)}"
        )
    wrong = [name for name in fed if graph[name].datatype != "INT64"]
    if wrong:
        raise ArtifactError(f"{manifest.name}: token inputs {wrong} must be INT64")
    data = read_verified(folder, manifest, pre.file)
    return TokenizerFile(pre, data, source=str(folder / pre.file))


def encode_texts(
    tokenizer: TokenizerFile, inputs: list[Any], name: str = "inputs"
) -> TokenizedTexts:
    """The batch's graph inputs; BadInput for a non-string, empty or too long text, or a batch
    over the request limits. `name` is how messages name the list (`inputs`, or OIP's `text`)."""
    if not inputs:
        raise BadInput(f"{name}: empty; send at least one text")
    if len(inputs) > MAX_BATCH:
        raise BadInput(
            f"{name}: {len(inputs)} texts, at most {MAX_BATCH} per request; split the batch"
        )
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
    encoded = tokenizer.encode(inputs)
    spec = tokenizer.spec
    for i, length in enumerate(encoded.lengths):
        if length > spec.max_length:  # only without truncation: the tokenizer cut the others
            raise BadInput(
                f"{name}[{i}]: {length:,} tokens, over this model's maximum of "
                f"{spec.max_length:,}; shorten the text or split it"
            )
    total = sum(encoded.lengths)
    if total > MAX_TOTAL_TOKENS:
        raise BadInput(
            f"{name}: {total:,} tokens in all, over the limit of {MAX_TOTAL_TOKENS:,} per request; "
            "send fewer texts per request"
        )
    draft = capture_draft()
    if draft is not None:  # a sampled request: lengths and unknown tokens, never the words
        draft.features = [
            token_text_features(text, ids, tokenizer.unknown_id)
            for text, ids in zip(inputs, encoded.ids, strict=True)
        ]
    return TokenizedTexts(tokenizer.feeds(encoded), total)
