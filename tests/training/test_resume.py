"""Checkpoint and resume: an interrupted run, resumed, ends with the uninterrupted run's weights.

Runs are stopped by their log callback right after an epoch's checkpoint is written (as Ctrl-C
or a lost machine would stop them), so the tests compare checkpoints and skip the export.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from modelfn.artifact import sha256_file
from modelfn.registry import REPO_ROOT
from training.checkpoint import MODEL_FILE, OPTIMIZER_FILE, STATE_FILE
from training.errors import TrainingError
from training.pipeline import train_model

DATA = REPO_ROOT.parent / "shared" / "data"


class Interrupted(Exception):
    """Stands for Ctrl-C or a killed machine after an epoch's checkpoint."""


def stop_after(epoch: int, lines: list[str] | None = None) -> Callable[[str], None]:
    def log(line: str) -> None:
        if lines is not None:
            lines.append(line)
        if line.startswith(f"epoch {epoch:3d}/"):
            raise Interrupted(line)

    return log


def run(
    name: str, folder: Path, log: Callable[[str], None], resume: bool = False, **overrides: object
) -> None:
    settings = {"data_dir": DATA, "preset": "tiny", "epochs": 2, "seed": 3, **overrides}
    with pytest.raises(Interrupted):
        train_model(
            name, out_dir=folder / "out", run_dir=folder, resume=resume, log=log, **settings
        )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "needed"), [("cifar10-cnn", "cifar-10-batches-py"), ("ptb-lstm", "ptb")]
)
def test_a_resumed_run_ends_with_the_uninterrupted_weights(
    name: str, needed: str, tmp_path: Path
) -> None:
    if not (DATA / needed).is_dir():
        pytest.skip(f"{DATA / needed} not found")
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    run(name, whole, stop_after(2))  # uninterrupted: both epochs, then stopped before export
    run(name, cut, stop_after(1))  # interrupted after the first epoch's checkpoint
    assert json.loads((cut / STATE_FILE).read_text())["epoch"] == 1
    lines: list[str] = []
    run(name, cut, stop_after(2, lines), resume=True)
    assert any(line.startswith("resumed after epoch 1 from") for line in lines)
    assert not any(line.startswith("epoch   1/") for line in lines)  # epoch 1 is not trained again
    for file in (MODEL_FILE, OPTIMIZER_FILE):  # weights, moments, RNG states: bit for bit
        assert sha256_file(cut / file) == sha256_file(whole / file)
    assert history(cut) == history(whole)


def history(folder: Path) -> list[dict[str, float]]:
    """The checkpointed history without its wall-clock times, the one thing allowed to differ."""
    rows = json.loads((folder / STATE_FILE).read_text())["history"]
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_resume_refuses_another_run_s_checkpoint(tmp_path: Path) -> None:
    if not (DATA / "cifar-10-batches-py").is_dir():
        pytest.skip("CIFAR-10 sample not found")
    folder = tmp_path / "run"
    run("cifar10-cnn", folder, stop_after(1))
    with pytest.raises(TrainingError, match=r"checkpoint of another run \(differs in seed\)"):
        train_model(
            "cifar10-cnn",
            data_dir=DATA,
            preset="tiny",
            epochs=2,
            seed=4,
            out_dir=tmp_path,
            run_dir=folder,
            resume=True,
            log=lambda _: None,
        )
    with pytest.raises(TrainingError, match="holds no checkpoint"):
        train_model(
            "cifar10-cnn",
            data_dir=DATA,
            preset="tiny",
            out_dir=tmp_path,
            run_dir=tmp_path / "empty",
            resume=True,
            log=lambda _: None,
        )
