"""Reliability tests (issue 11): bounded in CI, longer under `make soak` (MODELFN_SOAK=1).

Every test here sizes its work with `scaled(ci, soak)`, so `make test` stays within its time
budget and `make soak` runs the same code longer; every random choice is seeded, so a failure
is reproducible from the seed the test prints.
"""

from __future__ import annotations

import os

SOAK = os.environ.get("MODELFN_SOAK") == "1"


def scaled(ci: int, soak: int) -> int:
    """How much work a test does: `ci` in `make test`, `soak` in `make soak`."""
    return soak if SOAK else ci


class Clock:
    """A ModelSlot clock (its retry and alias-TTL time) that a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
