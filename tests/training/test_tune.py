"""`modelfn tune`: a short real search writes its study, its figures and a valid preset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest

from modelfn.registry import REPO_ROOT, load_registry
from tools.cli import main
from training.config import (
    ConfigError,
    ImageClassifierConfig,
    LanguageModelConfig,
    PresetConfig,
    TextClassifierConfig,
    load_preset,
)
from training.data import cifar10
from training.tune import load_search

DATA = REPO_ROOT.parent / "shared" / "data"


def own_config_of(model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry whose `model` reads a copy of its config, so presets land in the copy."""
    original = load_registry().get(model).training_config_path()
    config = tmp_path / original.name
    shutil.copy(original, config)
    registry = tmp_path / "models.toml"
    registry.write_text(
        (REPO_ROOT / "models.toml")
        .read_text()
        .replace(f"training/configs/{original.name}", str(config))
    )
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    return config


@pytest.fixture
def own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return own_config_of("imdb-sentiment", tmp_path, monkeypatch)


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
    assert first == {
        "lr": tiny.lr,
        "batch_size": tiny.batch_size,
        "weight_decay": tiny.weight_decay,
    }
    assert (storage.parent / "imdb" / "optimization_history.png").is_file()
    tuned = load_preset(own_config, "tuned", TextClassifierConfig)
    assert tuned.lr == study.best_trial.params["lr"] and tuned.min_count == tiny.min_count
    # The study resumes: two more trials join the same file.
    assert main([*argv[:-2], "--write-preset", "tuned-again"]) == 0
    assert (
        len(
            optuna.load_study(
                study_name="imdb-sentiment-tiny", storage=f"sqlite:///{storage}"
            ).trials
        )
        == 4
    )
    assert main(argv) == 2  # [tuned] exists: refused by name, nothing overwritten
    assert "preset [tuned] exists already" in capsys.readouterr().err


def test_a_search_space_must_hold_the_base_preset(own_config: Path) -> None:
    text = own_config.read_text().replace(
        "batch_size = { choices = [16, 32, 64] }", "batch_size = { choices = [128] }"
    )
    own_config.write_text(text)
    with pytest.raises(
        ConfigError, match=r"batch_size does not hold the \[full\] preset's value 32"
    ):
        from training.tune import tune

        tune("imdb-sentiment", trials=1, storage=own_config.parent / "s.db")
    assert set(load_search(own_config).parameters) == {"lr", "batch_size", "weight_decay"}


@pytest.mark.parametrize(
    ("model", "data_file", "what", "schema"),
    [
        (
            "cifar10-cnn",
            "cifar-10-batches-py/test_batch",
            "validation accuracy",
            ImageClassifierConfig,
        ),
        ("ptb-lstm", "ptb/ptb.valid.txt", "validation perplexity", LanguageModelConfig),
    ],
)
def test_image_and_language_models_search_on_validation_data_epoch_by_epoch(
    model: str,
    data_file: str,
    what: str,
    schema: type[PresetConfig],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if not (DATA / data_file).is_file():
        pytest.skip(f"{data_file} not found under {DATA}")
    config = own_config_of(model, tmp_path, monkeypatch)
    storage = tmp_path / "study.db"
    argv = ["tune", model, "--trials", "2", "--base", "tiny", "--storage", str(storage), "--data", str(DATA),
            "--write-preset", "tuned"]  # fmt: skip
    assert main(argv) == 0
    assert f"trial 0: {what}" in capsys.readouterr().out
    study = optuna.load_study(study_name=f"{model}-tiny", storage=f"sqlite:///{storage}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    # The pruner saw each epoch's validation figure; the trial's value is the last epoch's.
    first = study.trials[0]
    assert first.intermediate_values == {1: pytest.approx(first.value)}
    tuned = load_preset(config, "tuned", schema)
    best = study.best_trial.params
    assert tuned.lr == best["lr"] and tuned.model["dropout"] == best["model.dropout"]


def test_validation_is_carved_from_training_images_and_the_test_split_is_dropped(
    cifar_dir: Path,
) -> None:
    data = cifar10.load_cifar10(cifar_dir)
    carved = cifar10.carve_validation(data, 5)
    assert carved.test.name == "validation" and len(carved.test) == len(data.train) // 5
    assert len(carved.train) + len(carved.test) == len(data.train)
    np.testing.assert_array_equal(carved.test.images, data.train.images[::5])
    test_rows = {row.tobytes() for row in data.test.images}
    assert not any(row.tobytes() in test_rows for row in carved.test.images)


def test_a_config_without_a_search_table_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = own_config_of("ptb-lstm", tmp_path, monkeypatch)
    config.write_text(config.read_text().split("[search]")[0])
    assert main(["tune", "ptb-lstm", "--trials", "1", "--storage", str(tmp_path / "s.db")]) == 2
    assert "no [search] table; add one to search this model" in capsys.readouterr().err
