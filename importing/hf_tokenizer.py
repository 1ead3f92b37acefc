"""A Hugging Face folder's tokenizer as the contract declares it (`TokenizerPreprocessing`), and
transformers' AutoTokenizer as the reference the function's tokenizer is held to.

transformers reads `tokenizer.json` plus `tokenizer_config.json` (the pad token, the maximum
length, the padding and truncation sides, which tensors the model takes); the function runs
`tokenizer.json` alone with the `tokenizers` library and the settings the manifest declares
(`modelfn.tokenizer_file`). The import reads those settings from AutoTokenizer, then compares
the two on every text it checks (the user's examples and SAMPLE_TEXTS), ids, attention mask,
token types and padding, and refuses any difference, naming the text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from importing.errors import ImportRefused
from importing.hf_folder import HfFolder
from modelfn.artifact import TOKENIZER_FILE, TokenizerInputs, TokenizerPreprocessing
from modelfn.tokenizer_file import TokenizerFile

# transformers' model_max_length when a tokenizer does not know its own (VERY_LARGE_INTEGER).
UNKNOWN_LENGTH = 10**9
# Checked when the user gives no example texts: punctuation, digits, accents, other scripts, an
# emoji, a word the vocabulary will not have, and a text long enough to be cut at max_length.
SAMPLE_TEXTS = (
    "A truly wonderful film.",
    "The worst thing I have seen in years; avoid it!",
    "Prices rose 3.5% in 2024 (naïve café, Größe, 東京) 🙂 supercalifragilistic",
    " ".join(["It was fine, not great, not terrible."] * 200),
)

Feeds = dict[str, NDArray[Any]]


@dataclass(frozen=True)
class TextSource:
    """A text model's two tokenizers: what the function runs, and what transformers runs."""

    tokenizer: TokenizerFile
    reference: Callable[[list[str]], Feeds]  # AutoTokenizer's padded tensors, by graph input


def text_source(
    folder: HfFolder,
    model_inputs: set[str],
    *,
    max_length: int | None,
    truncation: bool,
) -> TextSource:
    """The declared tokenizer for `folder`, and AutoTokenizer on the same folder.

    `model_inputs` are the names the model's forward takes; the graph takes those of the
    tokenizer's tensors (input_ids, and attention_mask and token_type_ids where both have them).
    """
    from transformers import AutoTokenizer

    assert folder.tokenizer is not None  # read_folder made sure, for a text task
    try:
        auto = AutoTokenizer.from_pretrained(
            str(folder.path), local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImportRefused(
            f"transformers cannot load the tokenizer of {folder.path.name}: {exc}; save it with "
            "tokenizer.save_pretrained(FOLDER)"
        ) from exc
    if getattr(auto, "backend_tokenizer", None) is None:
        raise ImportRefused(
            f"{folder.path.name}'s tokenizer loads as {type(auto).__name__}, which does not run "
            f"{TOKENIZER_FILE}; save a fast tokenizer (AutoTokenizer.from_pretrained(..., "
            "use_fast=True).save_pretrained(FOLDER))"
        )
    # The graph's inputs, in this order (importing/hf_models.py's wrappers take them so).
    names = [n for n in TokenizerInputs.model_fields if n in auto.model_input_names]
    names = [n for n in names if n in model_inputs]
    if names[:2] != ["input_ids", "attention_mask"]:
        raise ImportRefused(
            f"the tokenizer gives {auto.model_input_names} and the model takes "
            f"{sorted(model_inputs & set(TokenizerInputs.model_fields))}; modelfn serves text "
            "models that take input_ids and an attention_mask (the function pads batches, and "
            "the mask keeps padding from changing the answers)"
        )
    if auto.pad_token_id is None:
        raise ImportRefused(
            f"{folder.path.name}'s tokenizer has no pad token, so texts of different lengths "
            "cannot share a batch; set tokenizer.pad_token (e.g. to its eos or unk token) and "
            "save_pretrained again"
        )
    spec = TokenizerPreprocessing(
        file=TOKENIZER_FILE,
        max_length=_max_length(auto, folder, max_length),
        truncation=truncation,
        truncation_side=_side(auto.truncation_side, "truncation_side"),
        padding="longest",
        padding_side=_side(auto.padding_side, "padding_side"),
        pad_id=int(auto.pad_token_id),
        inputs=TokenizerInputs(**{n: n for n in names}),
    )
    tokenizer = TokenizerFile(spec, folder.tokenizer.read_bytes(), str(folder.tokenizer))

    def reference(texts: list[str]) -> Feeds:
        encoded = auto(
            texts,
            padding=True,
            truncation=spec.truncation,
            max_length=spec.max_length if spec.truncation else None,
            return_tensors="np",
        )
        return {name: np.asarray(encoded[name], dtype=np.int64) for name in names}

    return TextSource(tokenizer, reference)


def _side(value: str, setting: str) -> Literal["right", "left"]:
    if value == "right":
        return "right"
    if value == "left":
        return "left"
    raise ImportRefused(f"the tokenizer's {setting} is {value!r}; it must be right or left")


def _max_length(auto: Any, folder: HfFolder, given: int | None) -> int:
    """The longest sequence the model takes: the tokenizer's model_max_length and the config's
    max_position_embeddings, the smaller where both say; `given` must fit both."""
    limits = {}
    if 0 < auto.model_max_length < UNKNOWN_LENGTH:
        limits["the tokenizer's model_max_length"] = int(auto.model_max_length)
    positions = folder.config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        limits["config.json's max_position_embeddings"] = positions
    if given is not None:
        over = [f"{k} ({v})" for k, v in limits.items() if given > v]
        if over:
            raise ImportRefused(
                f"--max-length {given} is longer than {' and '.join(over)}; give at most "
                f"{min(limits.values())}"
            )
        return given
    if not limits:
        raise ImportRefused(
            f"{folder.path.name} does not say how many tokens the model takes (no "
            "model_max_length, no max_position_embeddings): give --max-length"
        )
    return min(limits.values())


def sample_texts() -> list[tuple[str, str]]:
    """SAMPLE_TEXTS as `check_same_tokens` takes them: (name in messages, text)."""
    return [(f"sample text {i + 1}", text) for i, text in enumerate(SAMPLE_TEXTS)]


def check_same_tokens(source: TextSource, texts: list[tuple[str, str]]) -> None:
    """ImportRefused unless the function's tokenizer gives AutoTokenizer's tensors for each text,
    alone and as one padded batch; `texts` are (name in messages, text)."""
    for name, text in texts:
        _compare(source, [text], name)
    _compare(source, [t for _, t in texts], f"the {len(texts)} texts as one padded batch")


def _compare(source: TextSource, texts: list[str], where: str) -> None:
    ours = source.tokenizer.feeds(source.tokenizer.encode(texts))
    theirs = source.reference(texts)
    for name, want in theirs.items():
        got = ours[name]
        if got.shape != want.shape or not np.array_equal(got, want):
            if got.shape == want.shape:
                row, col = (int(i) for i in np.argwhere(got != want)[0])
                detail = f"first at row {row}, position {col}: {got[row, col]} vs {want[row, col]}"
            else:
                detail = f"shape {list(got.shape)} vs {list(want.shape)}"
            raise ImportRefused(
                f"{TOKENIZER_FILE} run by the tokenizers library (what the function runs) gives "
                f"another {name} than transformers' AutoTokenizer for {where} ({detail}). The "
                "tokenizer's settings outside tokenizer.json are not replayed: load it with "
                "AutoTokenizer and save_pretrained it again, so that tokenizer.json holds its "
                "whole pipeline"
            )
