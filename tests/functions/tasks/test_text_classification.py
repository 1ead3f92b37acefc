"""imdb-sentiment served by the real handler: tokenisation replayed, answers equal to training."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from mangum import Mangum

from architectures import load_torch_model
from functions.limits import MAX_BATCH, MAX_TEXT_BYTES
from modelfn.artifact import read_manifest
from tests.functions.conftest import call, handler_for, invoke
from tests.support.text_models import SHARED_DATA
from tools.local.events import http_api_event
from training.data.imdb import PREPROCESSING, load_imdb
from training.text_classification import build_vocabulary, featurise, pad

MODEL = "imdb-sentiment"
PREDICT = f"/models/{MODEL}/predict"
INFER = f"/v2/models/{MODEL}/infer"


@pytest.fixture(scope="module")
def handler(imdb_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Mangum:
    return handler_for(imdb_artifact, tmp_path_factory.mktemp("imdb-function"))


@pytest.fixture(scope="module")
def imdb() -> Any:
    return load_imdb(SHARED_DATA / "imdb")


def torch_probabilities(folder: Path, texts: list[str]) -> np.ndarray:
    """What training's own code computes for `texts`: its vocabulary, features and module."""
    from modelfn.text import Tokenizer

    manifest = read_manifest(folder)
    imdb_data = load_imdb(SHARED_DATA / "imdb")
    # The vocabulary training built, rebuilt from the data with training's function.
    vocabulary = build_vocabulary(
        imdb_data.train.texts + imdb_data.valid.texts,
        PREPROCESSING,
        min_count=manifest.training.hyperparameters["min_count"],
    )
    rows = featurise(texts, Tokenizer.build(PREPROCESSING, vocabulary))
    with torch.no_grad():
        logits = load_torch_model(folder)(pad(rows))
    return torch.softmax(logits, dim=1).numpy()


def test_the_vocabulary_file_is_what_training_built_from_the_data(
    imdb_artifact: Path, imdb: Any
) -> None:
    manifest = read_manifest(imdb_artifact)
    shipped = (imdb_artifact / "vocab.json").read_text(encoding="utf-8")
    rebuilt = build_vocabulary(
        imdb.train.texts + imdb.valid.texts,
        PREPROCESSING,
        manifest.training.hyperparameters["min_count"],
    )
    assert shipped.splitlines()[1:4] == [f'"{t}",' for t in rebuilt[:3]]
    assert manifest.preprocessing == PREPROCESSING  # the rules travel in the manifest


def test_real_reviews_get_the_probabilities_training_computes(
    handler: Mangum, imdb_artifact: Path, imdb: Any
) -> None:
    texts = imdb.test.texts[:MAX_BATCH]
    reply = call(handler, "POST", PREDICT, {"inputs": texts, "parameters": {"top_k": 2}})
    assert reply.status == 200, reply.body
    want = torch_probabilities(imdb_artifact, texts)
    labels = read_manifest(imdb_artifact).labels
    for out, row in zip(reply.json()["outputs"], want, strict=True):
        assert out["label"] == labels[int(row.argmax())]
        assert out["score"] == pytest.approx(float(row.max()), abs=1e-5)
        assert [t["label"] for t in out["top_k"]] == [labels[i] for i in np.argsort(-row)]


def test_served_accuracy_on_the_test_file_equals_the_training_run(
    handler: Mangum, imdb_artifact: Path, imdb: Any
) -> None:
    hits = 0
    for start in range(0, len(imdb.test), MAX_BATCH):
        texts = imdb.test.texts[start : start + MAX_BATCH]
        outputs = call(handler, "POST", PREDICT, {"inputs": texts}).json()["outputs"]
        truth = imdb.test.labels[start : start + MAX_BATCH]
        hits += sum(
            out["label"] == imdb.label_names[t] for out, t in zip(outputs, truth, strict=True)
        )
    assert hits / len(imdb.test) == read_manifest(imdb_artifact).metrics["accuracy"]


# Real IMDB test reviews and their words as the manifest's rules give them, written out by hand
# (not by modelfn.text): lower case, `<br />` and punctuation other than ! and ? to spaces, ! and ?
# words of their own, quotes stripped from a word's ends but not from inside it ("doesn't").
HAND_TOKENISED = {
    148: (
        "what a waste of talent a very poor semi coherent script cripples this film rather "
        "unimaginative direction too some very faint echoes of fargo here but it just doesn't "
        "come off"
    ),
    308: (
        "the best movie about friendship ! especially between an aids infected person and a "
        "normal person this is a great movie for everyone to see even though there is strong "
        "language used i have seen it 25 times"
    ),
}


@pytest.mark.parametrize("index", sorted(HAND_TOKENISED))
def test_served_tokens_of_real_reviews_are_the_hand_written_ones(
    imdb_artifact: Path, imdb: Any, index: int
) -> None:
    from functions.tasks.text_inputs import load_tokenizer

    served = load_tokenizer(read_manifest(imdb_artifact), imdb_artifact)  # what the task loads
    vocabulary = set(json.loads((imdb_artifact / "vocab.json").read_text(encoding="utf-8")))
    words = HAND_TOKENISED[index].split()
    expected = [w if w in vocabulary else PREPROCESSING.unknown_token for w in words]
    assert served.tokens(imdb.test.texts[index]) == expected


def test_served_scores_are_the_training_run_s_recorded_predictions(
    handler: Mangum, imdb_artifact: Path, imdb: Any
) -> None:
    # The report training wrote holds its own predictions on real test reviews (its most
    # confident mistakes, with their probabilities): the function must give the same.
    report = json.loads((imdb_artifact / "report.json").read_text(encoding="utf-8"))
    recorded = report["most_confident_mistakes"]
    assert recorded, "the training run recorded no predictions to compare with"
    texts = [imdb.test.texts[m["test_index"]] for m in recorded[:MAX_BATCH]]
    outputs = call(handler, "POST", PREDICT, {"inputs": texts}).json()["outputs"]
    for out, mistake in zip(outputs, recorded, strict=False):
        assert out["label"] == mistake["predicted"] != mistake["true"]
        assert out["score"] == pytest.approx(mistake["confidence"], abs=1e-5)
    # And the counts behind the training run's confusion matrix, recomputed from served answers.
    matrix = np.zeros((2, 2), dtype=int)
    labels = read_manifest(imdb_artifact).labels
    for start in range(0, len(imdb.test), MAX_BATCH):
        batch = imdb.test.texts[start : start + MAX_BATCH]
        answers = call(handler, "POST", PREDICT, {"inputs": batch}).json()["outputs"]
        for out, truth in zip(answers, imdb.test.labels[start : start + MAX_BATCH], strict=True):
            matrix[int(truth), labels.index(out["label"])] += 1
    assert matrix.tolist() == report["confusion_matrix"]["rows_true_columns_predicted"]


def test_the_default_top_k_is_every_label_of_a_binary_classifier(handler: Mangum) -> None:
    (out,) = call(handler, "POST", PREDICT, {"inputs": ["a truly wonderful film"]}).json()[
        "outputs"
    ]
    assert len(out["top_k"]) == 2 and sum(t["score"] for t in out["top_k"]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("inputs", "expect"),
    [
        ([""], "inputs[0]: empty text"),
        (["fine", "   \n"], "inputs[1]: empty text"),
        (["...  ,,"], "inputs[0]: no words left after tokenisation"),
        ([42], "inputs[0]: expected a string of text, got int"),
        ([["a", "b"]], "inputs[0]: expected a string of text, got list"),
        (["word " * 2501], "inputs[0]: 2,501 tokens, over this model's maximum of 2,500"),
        (
            ["x" * (MAX_TEXT_BYTES + 1)],
            f"inputs[0]: {MAX_TEXT_BYTES + 1:,} bytes of text, over the limit",
        ),
        (
            ["ok"] * (MAX_BATCH + 1),
            f"inputs: {MAX_BATCH + 1} texts, at most {MAX_BATCH} per request",
        ),
        ([], "inputs: List should have at least 1 item"),
    ],
)
def test_bad_texts_are_400s_naming_the_input(
    handler: Mangum, inputs: list[Any], expect: str
) -> None:
    reply = call(handler, "POST", PREDICT, {"inputs": inputs})
    assert reply.status == 400
    assert expect in reply.json()["error"]


def test_bad_parameters_are_400s_naming_the_field(handler: Mangum) -> None:
    for parameters, expect in [
        ({"top_k": 3}, "parameters.top_k: 3 is out of range; use 1..2"),
        ({"top_k": "1"}, "parameters.top_k"),
        ({"mode": "score"}, "parameters.mode: Extra inputs are not permitted"),
    ]:
        reply = call(handler, "POST", PREDICT, {"inputs": ["good"], "parameters": parameters})
        assert (reply.status, expect in reply.json()["error"]) == (400, True), reply.json()


# --- Open Inference Protocol: BYTES in, named tensors out ----------------------------------------


def test_oip_bytes_json_round_trip(handler: Mangum, imdb_artifact: Path, imdb: Any) -> None:
    texts = imdb.test.texts[:3]
    request = {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": texts}]}
    reply = call(handler, "POST", INFER, request)
    assert reply.status == 200, reply.body
    outputs = {o["name"]: o for o in reply.json()["outputs"]}
    want = torch_probabilities(imdb_artifact, texts)
    labels = read_manifest(imdb_artifact).labels
    assert outputs["label"]["datatype"] == "BYTES" and outputs["label"]["shape"] == [3]
    assert outputs["label"]["data"] == [labels[int(i)] for i in want.argmax(1)]
    assert outputs["probabilities"]["shape"] == [3, 2]
    np.testing.assert_allclose(outputs["probabilities"]["data"], want.ravel(), atol=1e-5)


def test_oip_bytes_binary_in_and_out(handler: Mangum) -> None:
    texts = ["a truly wonderful film", "dull, dull, dull"]
    raw = b"".join(struct.pack("<I", len(t.encode())) + t.encode() for t in texts)
    header = {
        "inputs": [
            {
                "name": "text",
                "shape": [2],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{"name": "label", "parameters": {"binary_data": True}}, {"name": "score"}],
    }
    import json

    head = json.dumps(header).encode()
    event = http_api_event(
        "POST",
        INFER,
        headers={
            "inference-header-content-length": str(len(head)),
            "content-type": "application/octet-stream",
        },
        body=head + raw,
    )
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == head + raw
    reply = invoke(handler, event)
    assert reply.status == 200, reply.body
    length = int(reply.headers["inference-header-content-length"])
    meta = json.loads(reply.body[:length])
    label, score = meta["outputs"]
    assert (
        label["parameters"]["binary_data_size"] == len(reply.body) - length and "data" not in label
    )
    assert len(score["data"]) == 2
    binary, words = reply.body[length:], []
    while binary:
        (n,) = struct.unpack_from("<I", binary)
        words.append(binary[4 : 4 + n].decode())
        binary = binary[4 + n :]
    assert len(words) == 2 and set(words) <= {"positive", "negative"}


@pytest.mark.parametrize(
    ("tensor", "expect"),
    [
        (
            {"name": "text", "shape": [1], "datatype": "BYTES", "data": [7]},
            "BYTES data must be strings",
        ),
        (
            {"name": "text", "shape": [2], "datatype": "BYTES", "data": ["a"]},
            "data has 1 values, shape [2] needs 2",
        ),
        (
            {"name": "text", "shape": [1], "datatype": "FP32", "data": [1.0]},
            "datatype 'FP32'; the model takes 'BYTES'",
        ),
        ({"name": "text", "shape": [1], "datatype": "BYTES", "data": [""]}, "text[0]: empty text"),
        (
            {"name": "tokens", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]},
            "the model has no input 'tokens'",
        ),
    ],
)
def test_oip_bad_text_tensors_are_400s(
    handler: Mangum, tensor: dict[str, Any], expect: str
) -> None:
    reply = call(handler, "POST", INFER, {"inputs": [tensor]})
    assert reply.status == 400
    assert expect in reply.json()["error"]


def test_oip_metadata_lists_the_text_signature(handler: Mangum) -> None:
    meta = call(handler, "GET", f"/v2/models/{MODEL}").json()
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in meta["outputs"]] == [
        ("label", "BYTES", [-1]), ("score", "FP32", [-1]), ("probabilities", "FP32", [-1, 2]),
    ]  # fmt: skip
