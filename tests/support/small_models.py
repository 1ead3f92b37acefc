"""Small torch modules the import tests point `modelfn import` at, each showing one behaviour
(`tests.support.small_models:<factory>`); the ResNet-18 of tests/support/resnet.py is the real one."""

from __future__ import annotations

import torch
from torch import nn


class Regressor(nn.Module):
    """A tensor model with two inputs: features [N, 16] float and ids [N, 4] int64 (an embedding
    table of 10 rows) -> ([N, 3] scores, [N, 8] embedding summary)."""

    def __init__(self, features: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.head = nn.Linear(features + 8, 3)

    def forward(self, x: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        summary = self.embed(ids).mean(dim=1)
        return self.head(torch.cat([x, summary], dim=1)), summary


def regressor(features: int = 16) -> Regressor:
    return Regressor(features)


class Counting(nn.Module):
    """Adds how many times forward ran: the exporter bakes in one count, torch moves on, so the
    graph and the module disagree (a stateful forward, which the parity gate must refuse)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 4)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(x) + float(self.calls)


def counting() -> Counting:
    return Counting()


class ReturnsDict(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"y": self.linear(x)}


def returns_dict() -> ReturnsDict:
    return ReturnsDict()


def not_a_module() -> str:
    return "a string"


def fails_to_build(width: int = 4) -> nn.Module:
    raise ValueError(f"width {width} is not supported by this model")


class TiedLanguageModel(nn.Module):
    """An embedding and a decoder sharing one matrix (as ptb-lstm ties them): [N, T] ids -> [N, T, 10]."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.decoder = nn.Linear(6, 10)
        self.decoder.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.embed(ids))


def tied() -> TiedLanguageModel:
    return TiedLanguageModel()


class Branching(nn.Module):
    """Python control flow on a tensor's value, which torch.export cannot capture: the dynamo
    exporter fails and the legacy one traces the branch the example takes. `threshold` -1e9:
    every realistic input takes the same branch; 0: inputs differ in which branch they take."""

    def __init__(self, threshold: float = -1e9) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 4)
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > self.threshold:
            return self.linear(x) * 2
        return self.linear(x)


def branching(threshold: float = -1e9) -> Branching:
    return Branching(threshold)
