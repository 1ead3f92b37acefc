"""A word-level LSTM language model with tied input and output embeddings, in one file.

The shape is Zaremba, Sutskever & Vinyals 2014 ("Recurrent Neural Network Regularization"): an
embedding, a stack of LSTM layers and a softmax over the vocabulary, with dropout on the
non-recurrent connections only (embeddings in, between layers, outputs out). The output layer
shares its weight matrix with the input embedding (Press & Wolf 2017, Inan et al. 2017): a third
fewer parameters and lower perplexity on Penn Treebank. Where the LSTM is wider than the
embedding, a linear projection maps its output down before the tied decoder.

The recurrent state is an input and an output, so a caller scores or generates step by step
without re-running the prefix, and training carries it across truncated-BPTT windows.

Inputs: tokens int64 [batch, time]; h0, c0 float32 [num_layers, batch, hidden_size].
Outputs: logits float32 [batch, time, vocab_size]; hn, cn like h0, c0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class PtbLstmConfig:
    vocab_size: int = 10000  # Penn Treebank's 10k words incl. <eos>; training sets it from the data
    embedding_dim: int = 200  # Zaremba's small model: 200
    hidden_size: int = 200  # LSTM units per layer
    num_layers: int = 2
    dropout: float = 0.0  # on embeddings, between layers and on outputs (Zaremba medium: 0.5)
    tie_weights: bool = True
    init_range: float = 0.1  # uniform(-r, r) for every weight, as in Zaremba et al.


class PtbLstm(nn.Module):
    def __init__(self, config: PtbLstmConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.embedding_dim,
            config.hidden_size,
            config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        # Tying needs decoder inputs of embedding_dim: project a wider LSTM output down first.
        self.projection = (
            nn.Linear(config.hidden_size, config.embedding_dim, bias=False)
            if config.tie_weights and config.hidden_size != config.embedding_dim
            else None
        )
        decoder_in = config.embedding_dim if config.tie_weights else config.hidden_size
        self.decoder = nn.Linear(decoder_in, config.vocab_size)
        for p in self.parameters():
            nn.init.uniform_(p, -config.init_range, config.init_range)
        if config.tie_weights:
            self.decoder.weight = self.embedding.weight

    def initial_state(
        self, batch: int, device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Zeros: the state before any token, float32 [num_layers, batch, hidden_size] twice."""
        shape = (self.config.num_layers, batch, self.config.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(
        self, tokens: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.dropout(self.embedding(tokens))  # [B, T, E]
        out, (hn, cn) = self.lstm(x, (h0, c0))  # [B, T, H]
        out = self.dropout(out)
        if self.projection is not None:
            out = self.projection(out)  # [B, T, E]
        logits: torch.Tensor = self.decoder(out)  # [B, T, V]
        return logits, hn, cn
