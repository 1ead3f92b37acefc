"""How a training run reports and persists itself: what every task's trainer is handed.

The trainers differ in what they train; this is what they share: where log lines go, whether
a live progress bar is drawn, where epochs are checkpointed (and whether to resume), and which
data-parallel rank this process is. Only rank 0 speaks, draws and checkpoints: the pipeline
hands the other ranks a silent log and no bar, and `checkpoint` writes from rank 0 alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from training.checkpoint import Checkpointer, Resumed
from training.distributed import SINGLE, Ranks

CPU = torch.device("cpu")


@dataclass(frozen=True)
class Run:
    log: Callable[[str], None] = print
    progress: bool = False  # a live bar on stderr (then `log` should be `tqdm.write`)
    checkpointer: Checkpointer | None = None
    ranks: Ranks = SINGLE
    # Where the image and language-model trainers compute (training.loop.training_device).
    device: torch.device = CPU
    # Called with each epoch's history record once it is complete (`modelfn tune` reports the
    # validation metric to its pruner there; raising stops the run).
    on_epoch: Callable[[dict[str, float]], None] | None = None

    def epoch_done(self, record: dict[str, float]) -> None:
        if self.on_epoch is not None:
            self.on_epoch(record)

    def resume(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator | None
    ) -> Resumed:
        """Where training starts: after the checkpointed epoch on `--resume` (every rank loads
        it), else at epoch 0."""
        if self.checkpointer is None:
            return Resumed()
        resumed = self.checkpointer.restore(model, optimizer, generator)
        if resumed.epoch:
            self.log(f"resumed after epoch {resumed.epoch} from {self.checkpointer.folder}")
        return resumed

    def checkpoint(
        self,
        *,
        epoch: int,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator | None,
        history: list[dict[str, float]],
    ) -> None:
        """Save the state after `epoch`, from rank 0 only; without a run folder, nothing."""
        if self.checkpointer is not None and self.ranks.main:
            self.checkpointer.save(
                epoch=epoch,
                step=step,
                model=model,
                optimizer=optimizer,
                generator=generator,
                history=history,
            )
