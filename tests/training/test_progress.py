"""The live progress bar: drawn on stderr when asked, silent otherwise."""

from __future__ import annotations

import pytest

from training.progress import Progress


def test_an_enabled_bar_shows_steps_loss_and_learning_rate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bar = Progress(4, enabled=True, description="cifar10-cnn")
    for _ in range(4):
        bar.step(0.6931, 0.01, epoch="1/2")
    bar.bar.refresh()
    bar.close()
    err = capsys.readouterr().err
    assert "cifar10-cnn" in err and "4/4" in err and "loss=0.6931" in err and "lr=0.01" in err


def test_a_disabled_bar_draws_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress(3, enabled=False)
    bar.step(1.0, 0.1)
    bar.close()
    assert capsys.readouterr() == ("", "")
