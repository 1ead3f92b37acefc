"""`--scores`: an imported classifier answers softmax (the default), sigmoid (multi-label) or its
logits, as declared in the manifest and served through the Lambda handler; a Hugging Face folder
trained for multi-label classification is served with sigmoids unless told otherwise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from importing import ImageOptions, ImportRefused, import_model
from modelfn.artifact import read_manifest
from tests.functions.conftest import handler_for
from tests.functions.test_openapi import Checker
from tests.support.import_sources import nothing_written

LABELS = ["a", "b", "c", "d"]


def import_cnn(source: Path, out: Path, **options: object) -> Path:
    return import_model(
        source,
        name="small-cnn",
        task="image-classification",
        out_dir=out,
        labels=LABELS,
        image=ImageOptions(mean=(0.5,) * 3, std=(0.5,) * 3),
        log=lambda _: None,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("how", ["sigmoid", "logits"])
def test_an_imported_classifier_answers_the_declared_scores(
    small_cnn_onnx: Path, tmp_path: Path, how: str
) -> None:
    version = import_cnn(small_cnn_onnx, tmp_path / "out", scores=how)
    manifest = read_manifest(version)
    assert manifest.scores == how and manifest.imported is not None
    assert manifest.imported.options["scores"] == how
    serve = Checker(handler_for(version, tmp_path / "serve"))
    pixels = np.random.default_rng(0).integers(0, 256, size=(8, 8, 3)).tolist()
    reply = serve(
        "POST", "/models/small-cnn/predict", {"inputs": [pixels], "parameters": {"top_k": 4}}
    )
    assert reply.status == 200, reply.body
    [answer] = reply.json()["outputs"]
    x = (np.asarray(pixels, np.float32)[None].transpose(0, 3, 1, 2) / 255.0 - 0.5) / 0.5
    session = ort.InferenceSession(str(version / "model.onnx"))
    logits = session.run(None, {session.get_inputs()[0].name: x})[0][0].astype(np.float64)
    want = 1.0 / (1.0 + np.exp(-logits)) if how == "sigmoid" else logits
    assert answer["label"] == LABELS[int(np.argmax(want))]
    assert [t["score"] for t in answer["top_k"]] == pytest.approx(
        sorted(want, reverse=True), abs=1e-5
    )


def test_scores_belong_to_classifiers(small_cnn_onnx: Path, tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match="a tensor model serves its outputs as they are"):
        import_model(small_cnn_onnx, name="t", task="tensor", out_dir=tmp_path, scores="sigmoid")
    assert nothing_written(tmp_path)


def test_a_multi_label_folder_is_served_with_sigmoids(
    hf_bert_classifier: Path, tmp_path: Path
) -> None:
    from tests.support.hf_folders import import_quietly

    folder = tmp_path / "multi-label"
    shutil.copytree(hf_bert_classifier, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    (folder / "config.json").write_text(
        json.dumps({**config, "problem_type": "multi_label_classification"}), encoding="utf-8"
    )
    version = import_quietly(folder, tmp_path / "out", name="tags", task="text-classification")
    assert read_manifest(version).scores == "sigmoid"
    reply = Checker(handler_for(version, tmp_path / "serve"))(
        "POST", "/models/tags/predict", {"inputs": ["a film", "another film entirely"]}
    )
    assert reply.status == 200, reply.body
    for answer in reply.json()["outputs"]:
        scores = [t["score"] for t in answer["top_k"]]
        assert all(0.0 < s < 1.0 for s in scores) and sum(scores) != pytest.approx(1.0)
