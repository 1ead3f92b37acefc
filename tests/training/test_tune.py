"""`modelfn tune`: a short real search writes its study, its figures and a valid preset."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from modelfn.cli import main
from modelfn.registry import REPO_ROOT, load_registry
from training.config import ConfigError, TextClassifierConfig, load_preset
from training.tune import load_search

DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry whose imdb-sentiment reads a copy of its config, so presets land in the copy."""
    config = tmp_path / "imdb-sentiment.toml"
    shutil.copy(load_registry().get("imdb-sentiment").training_config_path(), config)
    registry = tmp_path / "models.toml"
    registry.write_text(
        (REPO_ROOT / "models.toml").read_text().replace("training/configs/imdb-sentiment.toml", str(config))
    )
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    return config


def test_a_two_trial_search_writes_a_study_figures_and_a_preset(
    own_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (DATA / "imdb" / "test.csv").is_file():
        pytest.skip(f"IMDB sample not found at {DATA}")
    storage = tmp_path / "study" / "imdb.db"
    argv = ["tune", "imdb-sentiment", "--trials", "2", "--base", "tiny", "--storage", str(storage),
            "--data", str(DATA), "--write-preset", "tuned"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "trial 0: held-out accuracy" in out and "the [tiny] preset (trial 0)" in out
    study = optuna.load_study(study_name="imdb-sentiment-tiny", storage=f"sqlite:///{storage}")
    assert len(study.trials) == 2
    first = study.trials[0].params
    tiny = load_preset(own_config, "tiny", TextClassifierConfig)
    assert first == {"lr": tiny.lr, "batch_size": tiny.batch_size, "weight_decay": tiny.weight_decay}
    assert (storage.parent / "imdb" / "optimization_history.png").is_file()
    tuned = load_preset(own_config, "tuned", TextClassifierConfig)
    assert tuned.lr == study.best_trial.params["lr"] and tuned.min_count == tiny.min_count
    # The study resumes: two more trials join the same file.
    assert main([*argv[:-2], "--write-preset", "tuned-again"]) == 0
    assert len(optuna.load_study(study_name="imdb-sentiment-tiny", storage=f"sqlite:///{storage}").trials) == 4
    assert main(argv) == 2  # [tuned] exists: refused by name, nothing overwritten
    assert "preset [tuned] exists already" in capsys.readouterr().err


def test_a_search_space_must_hold_the_base_preset(own_config: Path) -> None:
    text = own_config.read_text().replace("batch_size = { choices = [16, 32, 64] }", "batch_size = { choices = [128] }")
    own_config.write_text(text)
    with pytest.raises(ConfigError, match=r"batch_size does not hold the \[full\] preset's value 32"):
        from training.tune import tune

        tune("imdb-sentiment", trials=1, storage=own_config.parent / "s.db")
    assert set(load_search(own_config).parameters) == {"lr", "batch_size", "weight_decay"}


def test_models_without_a_search_objective_say_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["tune", "ptb-lstm", "--trials", "1", "--storage", str(tmp_path / "s.db")]) == 2
    assert "modelfn tune searches text-classification models so far; ptb-lstm is language-modeling" in capsys.readouterr().err
