"""How an imported text model reads its input (`modelfn import` of a Hugging Face folder with a
text task): the tokenizer's length and truncation, and a feature extractor's pooling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Pooling = Literal["mean", "cls"]


@dataclass(frozen=True)
class TextOptions:
    """None and the defaults: what the folder says (the tokenizer's and config's length limit),
    texts cut to it rather than refused, the attention-masked mean, no normalisation."""

    max_length: int | None = None  # tokens, special tokens included
    truncation: bool = True  # False: the function refuses a longer text with a 400
    pooling: Pooling = "mean"  # feature-extraction: the mean of the tokens, or the first's
    normalize: bool = False  # feature-extraction: L2-normalise each embedding (cosine = dot)
