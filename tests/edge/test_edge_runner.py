"""The bundle's run.py replays serving's preprocessing and answers from files, arguments and stdin."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.bundle import RUNNER_FILE, extract_bundle
from edge.export import ExportResult
from edge.standalone_runner import Tokenizer as RunnerTokenizer
from edge.standalone_runner import image_tensor
from modelfn.artifact import ImagePreprocessing, parse_vocabulary, read_manifest
from modelfn.text import Tokenizer
from tests.support.text_models import SHARED_DATA


def real_texts() -> list[str]:
    ptb, imdb = SHARED_DATA / "ptb" / "ptb.test.txt", SHARED_DATA / "imdb" / "test.csv"
    if not ptb.is_file() or not imdb.is_file():
        pytest.skip(f"{ptb} or {imdb} not found (expected <repo>/../shared/data)")
    reviews = imdb.read_text(encoding="utf-8").splitlines()[1:400]
    handmade = [
        "The company said $5.5 million, 12% more; it isn't Mr. Smith's (U.S.) plan!",
        "<br />Great!!",
    ]
    return ptb.read_text(encoding="utf-8").splitlines()[:400] + reviews + handmade


@pytest.mark.parametrize("fixture", ["ptb_artifact", "imdb_artifact"])
def test_runner_tokens_equal_modelfn_text(fixture: str, request: pytest.FixtureRequest) -> None:
    folder: Path = request.getfixturevalue(fixture)
    manifest = read_manifest(folder)
    spec = manifest.preprocessing
    vocabulary = parse_vocabulary((folder / spec.vocabulary).read_bytes())  # type: ignore[union-attr]
    ours = Tokenizer.build(spec, vocabulary)  # type: ignore[arg-type]
    runner = RunnerTokenizer(spec.model_dump(), vocabulary)
    for text in real_texts():
        tokens = ours.tokens(text)
        assert runner.tokens(text) == tokens, text
        assert runner.features(tokens) == ours.features(tokens), text


def test_runner_image_tensor_equals_serving(cifar_artifact: Path) -> None:
    from modelfn.images import normalise
    from training.data.cifar10 import load_cifar10

    spec = read_manifest(cifar_artifact).preprocessing
    assert isinstance(spec, ImagePreprocessing)
    pixels = (
        load_cifar10(SHARED_DATA / "cifar-10-batches-py").test.images[:16].transpose(0, 2, 3, 1)
    )
    ours = np.concatenate([image_tensor(p, spec.model_dump()) for p in pixels])
    assert np.array_equal(ours, normalise(pixels, spec))


def run(folder: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(folder / RUNNER_FILE), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_image_files_json_and_fp32(cifar_bundle: ExportResult, tmp_path: Path) -> None:
    from PIL import Image

    from training.data.cifar10 import load_cifar10

    folder = extract_bundle(cifar_bundle.path, tmp_path)
    test = load_cifar10(SHARED_DATA / "cifar-10-batches-py").test
    image = tmp_path / "cat.png"
    Image.fromarray(test.images[0].transpose(1, 2, 0)).resize((64, 64)).save(
        image
    )  # resized back by run.py
    done = run(folder, "--json", str(image))
    answer = json.loads(done.stdout)
    assert done.returncode == 0 and answer["label"] in cifar_bundle.manifest.labels
    assert answer["precision"] == ("int8" if cifar_bundle.manifest.graphs.int8 else "fp32")
    assert json.loads(run(folder, "--json", "--fp32", str(image)).stdout)["precision"] == "fp32"


def test_text_from_stdin(imdb_bundle: ExportResult, tmp_path: Path) -> None:
    folder = extract_bundle(imdb_bundle.path, tmp_path)
    done = run(folder, "--json", stdin="a truly wonderful film\nthe worst movie I have seen\n")
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert done.returncode == 0 and [a["input"] for a in answers] == [
        "a truly wonderful film",
        "the worst movie I have seen",
    ]
    assert {a["label"] for a in answers} <= {"negative", "positive"}


def test_language_model_modes(ptb_bundle: ExportResult, tmp_path: Path) -> None:
    folder = extract_bundle(ptb_bundle.path, tmp_path)
    generated = run(folder, "--json", "--mode", "generate", "the company said")
    assert generated.returncode == 0 and "generated" in json.loads(generated.stdout)
    nexts = json.loads(run(folder, "--json", "--top-k", "4", "the company said").stdout)[
        "next_words"
    ]
    assert len(nexts) == 4 and nexts[0]["probability"] >= nexts[-1]["probability"]
    empty = run(folder, "...")
    assert empty.returncode == 2 and "no words left" in empty.stderr
