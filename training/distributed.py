"""Data-parallel training on the engine PyTorch ships: torchrun + DistributedDataParallel.

    torchrun --nproc_per_node 2 -m training ptb-lstm --preset smoke      # or: modelfn train --nproc 2
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 4 -m training ...

torchrun starts one process per rank and sets RANK, LOCAL_RANK and WORLD_SIZE; `from_env` joins
the process group (gloo on the CPU, nccl on GPUs). Every rank builds the same model from the
same seed and reads the same data, then trains on its own share of each batch (`shard`): DDP
averages the gradients, so a step sees the whole batch as in one process. Losses are averaged
over the ranks (`mean`); evaluation runs on every rank over the whole held-out split, so every
rank agrees on it; only rank 0 logs, checkpoints, writes the artifact and publishes. In a single
process (no torchrun) everything here is a no-op. Model code does not change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from training.errors import TrainingError


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that logs, checkpoints, writes and publishes."""
        return self.rank == 0

    def shard(self, batch: Any) -> Any:
        """This rank's share of a batch along its first axis: every `world`-th item from `rank`."""
        return batch[self.rank :: self.world]

    def mean(self, value: float) -> float:
        """`value` averaged over the ranks (each rank's mean over an equal share)."""
        if self.world == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return float(tensor.item()) / self.world

    def wrap(
        self, model: nn.Module, *, batch_size: int, device: torch.device | None = None
    ) -> nn.Module:
        """DDP around `model` across the ranks; the model itself in one process.

        Every rank takes an equal share of each batch of `batch_size` (images or text streams),
        so DDP's average of their gradients is the whole batch's.
        """
        if batch_size % self.world:
            raise TrainingError(
                f"batch_size {batch_size} does not split evenly over {self.world} processes; "
                "use a multiple of the process count"
            )
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        if device is not None and device.type == "cuda":  # one GPU per process (nccl)
            return DistributedDataParallel(model, device_ids=[device])
        return DistributedDataParallel(model)


SINGLE = Ranks()


def from_env() -> Ranks:
    """The ranks torchrun describes in the environment (joining its process group), else SINGLE."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return SINGLE
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return Ranks(rank=dist.get_rank(), world=dist.get_world_size())


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (its own methods: `initial_state`, `config`)."""
    inner: nn.Module = getattr(model, "module", model)
    return inner
