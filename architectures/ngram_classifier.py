"""A bag-of-n-grams text classifier, optionally with naive-Bayes feature weights, in one file.

Each text arrives as the ids of its unigrams and known bigrams (`modelfn.text.Tokenizer.features`,
each present feature once), right-padded with id 0. Two shapes share this module:

- `dim = 0`: a linear model over the features (logistic regression); with `nb_weighting` each
  feature is scaled by its naive-Bayes log-count ratio r, which makes it NBLR, the logistic
  regression cousin of Wang & Manning's NBSVM (2012, "Baselines and Bigrams"), strong on small
  sentiment data sets;
- `dim > 0`: a fastText-style embedding bag (Joulin et al. 2016): the (r-scaled) embeddings of the
  features pooled, then one linear layer.

r is a buffer computed from the training data (`naive_bayes_ratios`), so it travels in the
safetensors file and the ONNX graph. docs/training.md compares the shapes on the IMDB split.

Input: tokens int64 [batch, length], 0 = padding. Output: logits float32 [batch, num_classes].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class NgramClassifierConfig:
    vocab_size: int = 0  # features incl. padding (id 0); training sets it from the vocabulary
    num_classes: int = 2
    dim: int = 0  # 0: linear over the features; > 0: embedding width of a fastText bag
    # Over a text's features: "sum"; "mean" (divided by their count); "l2" (divided by the L2 norm
    # of their weights, so long and short texts weigh alike, as TF-IDF vectors are normalised).
    pooling: str = "sum"
    nb_weighting: bool = True  # scale features by their naive-Bayes log-count ratio (2 classes)
    dropout: float = 0.0  # on the pooled embedding (dim > 0 only)


class NgramClassifier(nn.Module):
    feature_weights: torch.Tensor  # buffer [vocab_size]: each n-gram's weight in the pooling

    def __init__(self, config: NgramClassifierConfig) -> None:
        super().__init__()
        if config.pooling not in ("sum", "mean", "l2"):
            raise ValueError(f"pooling must be 'sum', 'mean' or 'l2', got {config.pooling!r}")
        if config.nb_weighting and config.num_classes != 2:
            raise ValueError("nb_weighting needs exactly 2 classes (a log-count ratio of two)")
        self.config = config
        width = config.dim or config.num_classes
        self.embedding = nn.Embedding(config.vocab_size, width, padding_idx=0)
        # Zero start: a linear model's weights grow from "no opinion"; the bag's start small.
        if config.dim == 0:
            nn.init.zeros_(self.embedding.weight)
        else:
            nn.init.normal_(self.embedding.weight, std=0.1)
            self.embedding.weight.data[0].zero_()
        self.register_buffer("feature_weights", torch.ones(config.vocab_size))
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.dim, config.num_classes) if config.dim else None
        self.bias = nn.Parameter(torch.zeros(config.num_classes)) if not config.dim else None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        weight = self.feature_weights[tokens] * (tokens != 0)  # [B, L]; padding weighs 0
        pooled: torch.Tensor = (self.embedding(tokens) * weight.unsqueeze(-1)).sum(1)  # [B, width]
        if self.config.pooling == "mean":
            pooled = pooled / (tokens != 0).sum(1, keepdim=True).clamp(min=1)
        elif self.config.pooling == "l2":
            pooled = pooled / weight.square().sum(1, keepdim=True).sqrt().clamp(min=1e-6)
        if self.head is None:
            assert self.bias is not None
            return pooled + self.bias
        logits: torch.Tensor = self.head(self.dropout(pooled))
        return logits


def naive_bayes_ratios(
    features: list[list[int]], labels: torch.Tensor, vocab_size: int, alpha: float = 1.0
) -> torch.Tensor:
    """r = log((p / |p|_1) / (q / |q|_1)) per feature, from binary features of two classes.

    p and q count the positive (label 1) and negative (label 0) texts with each feature, plus
    `alpha` (Wang & Manning 2012, section 2.1). Padding (id 0) gets 0.
    """
    counts = torch.full((2, vocab_size), alpha, dtype=torch.float64)
    for ids, label in zip(features, labels.tolist(), strict=True):
        counts[label, ids] += 1.0  # ids are unique per text (binary features)
    p, q = counts[1] / counts[1].sum(), counts[0] / counts[0].sum()
    r = torch.log(p / q).float()
    r[0] = 0.0
    return r
