"""`modelfn drift` end to end over a store, on real inputs and real shifts.

Images: the real CIFAR-10 sample's 800 training images are the reference, its 200 test images
the captured requests (no drift), then the same 200 brightened (drift). Texts: IMDB reviews
measured with the IMDB model's own tokenizer (vocabulary from the training reviews, as the smoke
preset builds it): the test reviews are the reference, the validation reviews the captured ones
(no drift), then Penn Treebank's sentences (drift).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelfn.input_features import image_features, token_text_features
from modelfn.reference_stats import reference_stats
from modelfn.registry import REPO_ROOT
from modelfn.store import LocalStore
from tests.support.captured import capture_records, publish_with_reference, put_records
from tools.cli import main
from tools.cli.drift import DRIFT_FLAGGED
from tools.drift.compare import compare
from tools.drift.statistics import MIN_INPUTS, PSI_FLAG

DATA = REPO_ROOT.parent / "shared" / "data"
CIFAR = DATA / "cifar-10-batches-py"
IMDB, PTB = DATA / "imdb", DATA / "ptb"
VERSION = "20260101T000000Z-0123abcd"  # a version no store holds
CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]  # fmt: skip


# --- real inputs, measured as the function measures them -----------------------------------------


def cifar_features(images: np.ndarray) -> list[dict[str, float]]:
    """uint8 [N, 3, 32, 32] as the model sees them (32x32, no resize): one dict per image."""
    return image_features([(32, 32)] * len(images), images.transpose(0, 2, 3, 1))


@pytest.fixture(scope="module")
def cifar() -> Any:
    if not (CIFAR / "test_batch").is_file():
        pytest.skip(f"real CIFAR-10 sample not found at {CIFAR} (expected <repo>/../shared/data)")
    from training.data.cifar10 import load_cifar10

    return load_cifar10(CIFAR)


@pytest.fixture(scope="module")
def imdb_measure() -> Any:
    """text -> its features under the IMDB model's tokenizer, and the loaded IMDB sample."""
    if not (IMDB / "test.csv").is_file():
        pytest.skip(f"IMDB sample not found at {IMDB} (expected <repo>/../shared/data/imdb)")
    from modelfn.text import Tokenizer
    from training.data.imdb import PREPROCESSING, load_imdb
    from training.text_classification import build_vocabulary

    data = load_imdb(IMDB)
    tokenizer = Tokenizer.build(PREPROCESSING, build_vocabulary(data.train.texts, PREPROCESSING, 1))

    def measure(texts: list[str]) -> list[dict[str, float]]:
        unknown = PREPROCESSING.unknown_token
        return [token_text_features(t, tokenizer.tokens(t), unknown) for t in texts]

    return measure, data


@pytest.fixture(scope="module")
def ptb_sentences() -> list[str]:
    path = PTB / "ptb.test.txt"
    if not path.is_file():
        pytest.skip(f"Penn Treebank not found at {PTB} (expected <repo>/../shared/data/ptb)")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()][:300]


# --- the store a drift run reads -----------------------------------------------------------------


def drift_run(
    tmp_path: Path,
    model: str,
    reference: list[dict[str, float]],
    captured: list[dict[str, float]],
    capsys: pytest.CaptureFixture[str],
    *extra: str,
) -> tuple[int, dict[str, Any], str]:
    """Publish a version with `reference`'s statistics, capture `captured` for it, run `modelfn
    drift`: its exit code, drift.json and stdout."""
    store = LocalStore(tmp_path / "store")
    stats = reference_stats(reference, data=f"{len(reference)} real held-out inputs")
    version = publish_with_reference(store, tmp_path / "build", model, stats)
    put_records(store, capture_records(model, version, captured), batch="delivery-1")
    out = tmp_path / "drift"
    code = main(["drift", model, "--store", str(store.root), "--out", str(out), *extra])
    report = json.loads((out / "drift.json").read_text()) if (out / "drift.json").is_file() else {}
    return code, report, capsys.readouterr().out


def psis(report: dict[str, Any]) -> dict[str, float]:
    return {f["name"]: f["psi"] for f in report["features"]}


def test_cifar_test_images_against_training_images_do_not_drift(
    cifar: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, out = drift_run(
        tmp_path,
        "cifar10-cnn",
        cifar_features(cifar.train.images),
        cifar_features(cifar.test.images),
        capsys,
    )
    assert code == 0, out
    assert report["verdict"] in ("stable", "moderate") and report["flagged"] == []
    assert report["inputs"] == len(cifar.test.images) >= MIN_INPUTS
    assert max(psis(report).values()) < PSI_FLAG
    assert {f["name"] for f in report["features"]} >= {"brightness", "width", "std_b"}
    # width and height are discrete: no Kolmogorov-Smirnov; brightness is continuous.
    by_name = {f["name"]: f for f in report["features"]}
    assert by_name["width"]["ks"] is None and by_name["brightness"]["ks"] is not None
    assert by_name["brightness"]["p_value"] > 0.01


@pytest.mark.parametrize(
    "brighten",
    [
        pytest.param(lambda x: np.clip(x * 1.5, 0, 255), id="times-1.5"),
        pytest.param(lambda x: np.clip(x + 60.0, 0, 255), id="plus-60"),
    ],
)
def test_brightened_cifar_images_are_flagged(
    cifar: Any, brighten: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    brighter = brighten(cifar.test.images.astype(np.float64))
    code, report, out = drift_run(
        tmp_path,
        "cifar10-cnn",
        cifar_features(cifar.train.images),
        cifar_features(brighter),
        capsys,
    )
    assert code == DRIFT_FLAGGED, out
    assert report["verdict"] == "drift" and "brightness" in report["flagged"]
    brightness = next(f for f in report["features"] if f["name"] == "brightness")
    assert brightness["psi"] > PSI_FLAG and brightness["flag"]
    assert brightness["captured_mean"] > brightness["reference_mean"] + 30
    assert brightness["p_value"] < 1e-6
    # The image's size did not change, and the report says so.
    assert next(f for f in report["features"] if f["name"] == "width")["psi"] < 0.01
    assert "verdict: drift" in out and "brightness" in out
    page = (tmp_path / "drift" / "drift.md").read_text()
    assert "| brightness | continuous |" in page and "**drift**" in page
    png = (tmp_path / "drift" / "brightness.png").read_bytes()
    assert png.startswith(b"\x89PNG") and "![brightness.png](brightness.png)" in page


def test_imdb_reviews_do_not_drift_and_penn_treebank_sentences_do(
    imdb_measure: Any, ptb_sentences: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measure, data = imdb_measure
    reference = measure(data.test.texts)
    code, report, out = drift_run(
        tmp_path / "imdb", "imdb-sentiment", reference, measure(data.valid.texts), capsys
    )
    assert code == 0, out
    assert max(psis(report).values()) < PSI_FLAG and report["inputs"] >= MIN_INPUTS

    code, report, out = drift_run(
        tmp_path / "ptb", "imdb-sentiment", reference, measure(ptb_sentences), capsys
    )
    assert code == DRIFT_FLAGGED, out
    assert {"chars", "tokens"} <= set(report["flagged"])
    # A news sentence is a tenth of a review's length.
    chars = next(f for f in report["features"] if f["name"] == "chars")
    assert chars["captured_mean"] < chars["reference_mean"] / 4


# --- what the command decides --------------------------------------------------------------------


def test_too_few_records_report_figures_but_flag_nothing(
    cifar: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    brighter = np.clip(cifar.test.images[:40].astype(np.float64) * 1.5, 0, 255)
    code, report, out = drift_run(
        tmp_path,
        "cifar10-cnn",
        cifar_features(cifar.train.images),
        cifar_features(brighter),
        capsys,
    )
    assert code == 0, out
    assert report["verdict"] == "too few records" and report["flagged"] == []
    assert psis(report)["brightness"] > PSI_FLAG  # the figure is there, the flag is not


def test_since_and_version_choose_the_records(
    cifar: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Old brightened records fall outside --since; a second version's records are counted but
    compared only when named, against its own reference."""
    store = LocalStore(tmp_path / "store")
    stats = reference_stats(cifar_features(cifar.train.images), data="CIFAR-10 training sample")
    old = publish_with_reference(store, tmp_path / "a", "cifar10-cnn", stats)
    new = publish_with_reference(store, tmp_path / "b", "cifar10-cnn", stats, b"retrained")
    plain = cifar_features(cifar.test.images)
    bright = cifar_features(np.clip(cifar.test.images.astype(np.float64) * 1.5, 0, 255))
    days_ago = datetime.now(UTC) - timedelta(days=3)
    put_records(store, capture_records("cifar10-cnn", old, bright, start=days_ago), "old")
    put_records(store, capture_records("cifar10-cnn", old, plain), "recent")
    put_records(store, capture_records("cifar10-cnn", new, bright[:150]), "canary")
    out = tmp_path / "drift"
    argv = ["drift", "cifar10-cnn", "--store", str(store.root), "--out", str(out)]

    assert main([*argv, "--since", "24h"]) == 0  # the old version: 200 plain, most records
    report = json.loads((out / "drift.json").read_text())
    assert report["version"] == old and report["records"] == 200
    assert report["other_versions"] == {new: 150}
    assert f"--version {new}" in capsys.readouterr().out

    assert main([*argv, "--since", "7d"]) == DRIFT_FLAGGED  # 200 bright + 200 plain
    assert json.loads((out / "drift.json").read_text())["records"] == 400

    assert main([*argv, "--since", "24h", "--version", new]) == DRIFT_FLAGGED
    report = json.loads((out / "drift.json").read_text())
    assert report["version"] == new and report["other_versions"] == {}


def test_no_records_exit_2_saying_how_to_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drift", "cifar10-cnn", "--store", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no capture records for cifar10-cnn" in err
    assert "[models.cifar10-cnn.capture]" in err and "sample_rate" in err


def test_a_version_without_reference_statistics_exits_2_saying_train_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    version = publish_with_reference(store, tmp_path / "build", "cifar10-cnn", None)
    features = [{"brightness": 100.0, "width": 32.0}] * 5
    put_records(store, capture_records("cifar10-cnn", version, features), "d")
    assert main(["drift", "cifar10-cnn", "--store", str(store.root)]) == 2
    err = capsys.readouterr().err
    assert f"cifar10-cnn {version} has no reference statistics" in err
    assert "modelfn train cifar10-cnn" in err


def test_records_of_an_unpublished_version_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path)
    put_records(store, capture_records("cifar10-cnn", VERSION, [{"width": 32.0}]), "d")
    assert main(["drift", "cifar10-cnn", "--store", str(tmp_path)]) == 2
    assert f"cifar10-cnn {VERSION}, which is not published" in capsys.readouterr().err


@pytest.mark.parametrize("since", ["24", "1w", "0h", "1.5h"])
def test_a_bad_duration_is_a_usage_error(since: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["drift", "cifar10-cnn", "--since", since])
    assert exit_.value.code == 2
    assert "30m, 24h, 7d" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["drift", "--help"])
    assert f"{DRIFT_FLAGGED}  drift flagged" in capsys.readouterr().out


# --- a classifier's answers ----------------------------------------------------------------------


def test_label_and_confidence_shift(cifar: Any) -> None:
    """Reference: the sample's true labels as the predictions, confident. Captured: the same
    images, answered mostly 'cat' with low scores, as a model shown unfamiliar inputs answers."""
    features = cifar_features(cifar.test.images)
    truth = [CIFAR_LABELS[i] for i in cifar.test.labels]
    stats = reference_stats(
        features,
        data="CIFAR-10 test sample",
        labels=CIFAR_LABELS,
        predicted=truth,
        scores=[0.9] * len(truth),
    )
    same = [{"label": label, "score": 0.92} for label in truth]
    unsure = [{"label": "cat" if i % 4 else truth[i], "score": 0.35} for i in range(len(truth))]
    now = datetime.now(UTC)
    for outputs, flagged in ((same, False), (unsure, True)):
        records = capture_records("cifar10-cnn", VERSION, features, outputs=outputs)
        report = compare(
            model="cifar10-cnn",
            version=VERSION,
            reference=stats,
            records=records,
            since=None,
            now=now,
            plots=False,
        )
        assert report.labels is not None and report.confidence is not None
        assert report.labels.flag is flagged and report.confidence.flag is flagged
        assert (report.verdict == "drift") is flagged
    # 3 in 4 answers moved to 'cat' from a uniform 10%: total variation 0.75 * 0.9 = 0.675.
    assert report.labels.total_variation == pytest.approx(0.675, abs=0.03)
    assert set(report.flagged) == {"labels", "confidence"}
