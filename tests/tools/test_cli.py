"""The `modelfn` command: exit codes and messages a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfn.artifact import verify_artifact
from modelfn.registry import REPO_ROOT
from modelfn.store import LocalStore, list_published
from tools.cli import main

DATA = REPO_ROOT.parent / "shared" / "data"


def test_list_on_an_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--store", str(tmp_path)]) == 0
    assert "nothing published" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "no-such-model"], "unknown model 'no-such-model'"),
        (["train", "cifar10-cnn", "--publish", "gs://bucket"], "unknown scheme"),
        (["train", "cifar10-cnn", "--preset", "huge"], "no preset [huge]"),
        (["list", "--store", "ftp://x"], "unknown scheme"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.skipif(
    not (DATA / "cifar-10-batches-py").is_dir(), reason=f"CIFAR-10 sample not found at {DATA}"
)
def test_train_publishes_a_verified_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    argv = [
        "train",
        "cifar10-cnn",
        "--data",
        str(DATA),
        "--preset",
        "smoke",
        "--epochs",
        "1",
        "--publish",
        str(store),
        "--out",
        str(tmp_path / "build"),
        "--runs",
        str(tmp_path / "runs"),
        "--alias",
        "latest",
        "--alias",
        "candidate",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "accuracy: " in out and f"to file://{store}" in out
    [model] = list_published(LocalStore(store))
    assert model.name == "cifar10-cnn" and len(model.versions) == 1
    assert model.aliases == {"latest": model.versions[0], "candidate": model.versions[0]}
    verify_artifact(store / "cifar10-cnn" / model.versions[0])
    [run] = (tmp_path / "runs" / "cifar10-cnn").iterdir()  # the run's checkpoint folder
    assert run.name.endswith("-smoke-seed0") and (run / "state.json").is_file()


def test_alias_moves_a_pointer_to_a_published_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelfn.store import publish_artifact, read_alias
    from tests.support.manifests import write_artifact

    store = LocalStore(tmp_path / "store")
    version = publish_artifact(store, write_artifact(tmp_path / "build")).version
    assert (
        main(["alias", "cifar10-cnn", version, "--alias", "prod", "--store", str(store.root)]) == 0
    )
    assert read_alias(store, "cifar10-cnn", "prod").version == version
    assert (
        main(
            [
                "alias",
                "cifar10-cnn",
                "20990101T000000Z-00000000",
                "--alias",
                "prod",
                "--store",
                str(store.root),
            ]
        )
        == 2
    )
    assert "not published" in capsys.readouterr().err


@pytest.mark.parametrize("alias", ["Prod", "a/b", "../x", "9x", "x--y"])
def test_bad_alias_is_refused_before_training(
    alias: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "cifar10-cnn", "--alias", alias, "--publish", str(tmp_path)]) == 2
    assert f"alias {alias!r} is not valid" in capsys.readouterr().err


def test_serve_names_an_unpublished_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--store", str(tmp_path), "--models", "cifar10-cnn"]) == 2
    assert "cifar10-cnn: not published" in capsys.readouterr().err
    assert main(["serve", "--store", str(tmp_path), "--models", "cifar10-cnn,typo"]) == 2
    assert "unknown model 'typo'" in capsys.readouterr().err


@pytest.mark.parametrize("fixture", ["imdb_artifact", "ptb_artifact"])
def test_evaluate_recomputes_the_test_figures_through_the_handler(
    fixture: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    from modelfn.store import publish_artifact

    folder: Path = request.getfixturevalue(fixture)
    store = LocalStore(tmp_path / "store")
    manifest = publish_artifact(store, folder)
    argv = ["evaluate", manifest.name, "--store", str(store.root), "--data", str(DATA)]
    assert main([*argv, "--version", manifest.version]) == 0
    out = capsys.readouterr().out
    assert f"{manifest.name} ({manifest.version}), test split through the Lambda handler" in out
    metrics = (
        ["accuracy", "macro_f1", "f1.positive"] if manifest.labels else ["test_sentence_perplexity"]
    )
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    for metric in metrics:
        recorded, recomputed, difference = rows[metric]
        assert float(recorded) == pytest.approx(manifest.metrics[metric], rel=1e-5)
        # The served figure, recomputed from the handler's answers, is the recorded one.
        assert float(recomputed) == pytest.approx(manifest.metrics[metric], rel=1e-4)
        assert float(difference) <= 1e-4
    assert out.rstrip().endswith("served equals trained")
    assert main([*argv, "--version", "latest"]) == 2  # an alias is not a version


def test_evaluate_fails_when_served_and_trained_differ(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelfn.store import publish_artifact
    from tests.support.manifests import write_artifact

    store = LocalStore(tmp_path / "store")
    manifest = publish_artifact(store, write_artifact(tmp_path / "build"))

    def off_by_a_percent(*args: object, **kwargs: object) -> dict[str, tuple[float, float]]:
        return {"accuracy": (0.5, 0.505)}

    monkeypatch.setattr("tools.evaluate.served_metrics", off_by_a_percent)
    argv = ["evaluate", manifest.name, "--store", str(store.root), "--version", manifest.version]
    assert main(argv) == 1
    assert "MISMATCH: up to 1.0e-02 relative" in capsys.readouterr().out
