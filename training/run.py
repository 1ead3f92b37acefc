"""How a training run reports and persists itself: what every task's trainer is handed.

The trainers differ in what they train; this is what they share: where log lines go, whether
a live progress bar is drawn, where epochs are checkpointed (and whether to resume), and which
data-parallel rank this process is. Only rank 0 speaks, draws and checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from training.checkpoint import Checkpointer
from training.distributed import SINGLE, Ranks


@dataclass(frozen=True)
class Run:
    log: Callable[[str], None] = print
    progress: bool = False  # a live bar on stderr (then `log` should be `tqdm.write`)
    checkpointer: Checkpointer | None = None
    ranks: Ranks = SINGLE

    def say(self, line: str) -> None:
        """Log `line` from rank 0 only (every rank computes the same figures)."""
        if self.ranks.main:
            self.log(line)

    @property
    def bar(self) -> bool:
        return self.progress and self.ranks.main

    @property
    def saver(self) -> Checkpointer | None:
        """The checkpointer on rank 0; the other ranks restore but never write."""
        return self.checkpointer if self.ranks.main else None
