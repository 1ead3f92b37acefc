"""Checkpoints of a training run, so an interrupted run resumes where it stopped.

A run folder holds, after every epoch:
- `model.safetensors`: the weights (safetensors `save_model`, which stores tied weights once);
- `optimizer.safetensors`: the optimiser's tensors (momentum, Adam's moments and step counts);
- `state.json`: the epoch and step reached, the history so far, the optimiser's other state
  and hyper-parameters, the random number generators' states, and what run this is (model,
  preset, seed and the full config), so a resume with other settings is refused by name.

Never a pickle: tensors in safetensors, everything else in JSON. Each checkpoint is written to
temporary files and renamed into place, so a run killed while saving leaves the previous
checkpoint whole. Resuming restores everything an epoch depends on, so a resumed run ends with
the same weights as an uninterrupted one of the same seed (a test checks the sha256).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.errors import TrainingError

MODEL_FILE, OPTIMIZER_FILE, STATE_FILE = "model.safetensors", "optimizer.safetensors", "state.json"


@dataclass
class Resumed:
    """Where a resumed run continues: after `epoch` (0 for a new run), at optimiser `step`."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Training time before the interruption: a resumed run's clock starts there."""
        return self.history[-1]["seconds"] if self.history else 0.0


@dataclass
class Checkpointer:
    """Saves a run's state after each epoch into `folder`, and restores it for `--resume`."""

    folder: Path
    identity: dict[str, Any]  # model, preset, seed, config: must match to resume
    resume: bool = False

    def restore(
        self, model: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator | None
    ) -> Resumed:
        """Load the last checkpoint into model, optimiser and RNGs; a new run starts at epoch 0."""
        if not self.resume:
            return Resumed()
        from safetensors.torch import load_file, load_model

        state_path = self.folder / STATE_FILE
        if not state_path.is_file():
            raise TrainingError(
                f"{self.folder} holds no checkpoint ({STATE_FILE}); nothing to resume"
            )
        state = json.loads(state_path.read_text(encoding="utf-8"))
        if state["identity"] != self.identity:
            differing = sorted(
                k for k in self.identity if state["identity"].get(k) != self.identity[k]
            )
            raise TrainingError(
                f"{self.folder} is a checkpoint of another run (differs in {', '.join(differing)}); "
                "resume with the same model, preset, seed and config, or start a new run"
            )
        load_model(model, str(self.folder / MODEL_FILE), strict=True)
        tensors = load_file(str(self.folder / OPTIMIZER_FILE))
        optimizer.load_state_dict(_optimizer_state(state["optimizer"], tensors))
        torch.set_rng_state(tensors["rng.torch"])
        if generator is not None:
            generator.set_state(tensors["rng.generator"])
        return Resumed(state["epoch"], state["step"], state["history"])

    def save(
        self,
        *,
        epoch: int,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator | None,
        history: list[dict[str, float]],
    ) -> None:
        from safetensors.torch import save_file, save_model

        self.folder.mkdir(parents=True, exist_ok=True)
        scalars, tensors = _split_optimizer_state(optimizer.state_dict())
        tensors["rng.torch"] = torch.get_rng_state()
        if generator is not None:
            tensors["rng.generator"] = generator.get_state()
        state = {
            "identity": self.identity,
            "epoch": epoch,
            "step": step,
            "history": history,
            "optimizer": scalars,
        }
        # Write all three under temporary names, then rename: a kill leaves the old set whole
        # (the state file goes last, and it names the epoch the other two belong to).
        save_model(model, str(self.folder / f".{MODEL_FILE}.tmp"))
        save_file(tensors, str(self.folder / f".{OPTIMIZER_FILE}.tmp"))
        (self.folder / f".{STATE_FILE}.tmp").write_text(
            json.dumps(state, indent=1), encoding="utf-8"
        )
        for name in (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE):
            os.replace(self.folder / f".{name}.tmp", self.folder / name)


def _split_optimizer_state(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """An optimiser state dict -> (JSON-able part, tensors named `optim.<param>.<key>`)."""
    tensors: dict[str, torch.Tensor] = {}
    per_param: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        per_param[str(index)] = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value.detach().contiguous()
                per_param[str(index)][key] = None  # a tensor, in the safetensors file
            else:
                per_param[str(index)][key] = value
    return {"state": per_param, "param_groups": state["param_groups"]}, tensors


def _optimizer_state(scalars: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state = {
        int(index): {
            key: tensors[f"optim.{index}.{key}"] if value is None else value
            for key, value in values.items()
        }
        for index, values in scalars["state"].items()
    }
    return {"state": state, "param_groups": scalars["param_groups"]}
