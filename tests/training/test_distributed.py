"""Data-parallel training: `modelfn train --nproc 2` runs two gloo ranks under torchrun."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfn.artifact import read_manifest
from modelfn.store import LocalStore, list_published
from tests.support.text_models import SHARED_DATA
from tools.cli import main
from training.distributed import SINGLE, Ranks


def test_two_ranks_train_the_one_process_model(
    ptb_artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    argv = ["train", "ptb-lstm", "--preset", "tiny", "--nproc", "2", "--quiet", "--data", str(SHARED_DATA),
            "--publish", str(store), "--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 0
    [published] = list_published(LocalStore(store))  # rank 0 published once; rank 1 did not
    assert len(published.versions) == 1
    two = read_manifest(store / "ptb-lstm" / published.versions[0])
    one = read_manifest(ptb_artifact)  # the same preset and seed in one process
    assert two.training.hyperparameters["threads"] == 1  # the two cores shared out, one a rank
    # The ranks split each batch's streams and DDP averages their gradients: the same steps as
    # one process up to the order of floating-point sums.
    for metric in ("valid_perplexity", "test_perplexity", "test_sentence_perplexity"):
        assert two.metrics[metric] == pytest.approx(one.metrics[metric], rel=1e-3)


def test_ranks_shard_and_average() -> None:
    ranks = [Ranks(rank=r, world=2) for r in range(2)]
    assert [r.shard(list(range(6))) for r in ranks] == [[0, 2, 4], [1, 3, 5]]
    assert ranks[0].main and not ranks[1].main
    assert SINGLE.shard([1, 2]) == [1, 2] and SINGLE.mean(0.5) == 0.5
