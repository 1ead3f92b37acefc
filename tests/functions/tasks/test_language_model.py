"""ptb-lstm served by the real handler: next words, perplexity and generation against torch."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from mangum import Mangum

from architectures import load_torch_model
from functions.limits import MAX_BATCH
from functions.tasks import language_model as lm
from modelfn.artifact import parse_vocabulary, read_manifest
from tests.functions.conftest import call, handler_for
from tests.support.text_models import SHARED_DATA
from training.data.ptb import PREPROCESSING, load_ptb
from training.language_model import build_vocabulary

MODEL = "ptb-lstm"
PREDICT = f"/models/{MODEL}/predict"
INFER = f"/v2/models/{MODEL}/infer"


@pytest.fixture(scope="module")
def handler(ptb_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Mangum:
    return handler_for(ptb_artifact, tmp_path_factory.mktemp("ptb-function"))


@pytest.fixture(scope="module")
def ptb() -> Any:
    return load_ptb(SHARED_DATA / "ptb")


@pytest.fixture(scope="module")
def vocabulary(ptb_artifact: Path) -> list[str]:
    return parse_vocabulary((ptb_artifact / "vocab.json").read_bytes())


def torch_log_probs(folder: Path, vocabulary: list[str], words: list[str]) -> np.ndarray:
    """Training's module, fed <eos> + the words from the zero state: log-probs [len+1, vocab]."""
    model = load_torch_model(folder)
    ids = torch.tensor([[0, *(vocabulary.index(w) for w in words)]])
    with torch.no_grad():
        logits, _, _ = model(ids, *model.initial_state(1))
    return torch.log_softmax(logits[0].double(), dim=-1).numpy()


def predict(handler: Mangum, inputs: list[Any], **parameters: Any) -> Any:
    reply = call(handler, "POST", PREDICT, {"inputs": inputs, "parameters": parameters})
    assert reply.status == 200, reply.body
    return reply.json()["outputs"]


def test_the_vocabulary_is_training_s_and_the_corpus_tokenises_to_itself(
    vocabulary: list[str], ptb: Any
) -> None:
    from modelfn.text import Tokenizer

    assert vocabulary == build_vocabulary(ptb.train, PREPROCESSING)
    tokenizer = Tokenizer.build(PREPROCESSING, vocabulary)
    # Every real sentence of every split comes back as the corpus wrote it: the function feeds the
    # model exactly the ids training streamed.
    for split in ("train", "valid", "test"):
        assert all(tokenizer.tokens(" ".join(s)) == s for s in ptb.split(split))


def test_raw_text_is_mapped_to_the_corpus_conventions(handler: Mangum) -> None:
    (out,) = predict(
        handler, ["The company's 3.5% stake, Mr. Zyzzyva said, wasn't sold for $5 million."]
    )
    assert out["tokens"] == [
        "the", "company", "'s", "N", "N", "stake", "mr.", "<unk>", "said", "was", "n't", "sold",
        "for", "$", "N", "million",
    ]  # fmt: skip


def test_next_words_are_torch_s_top_k(
    handler: Mangum, ptb_artifact: Path, vocabulary: list[str], ptb: Any
) -> None:
    sentences = [ptb.test[i] for i in (0, 5, 17)]
    outputs = predict(handler, [" ".join(s) for s in sentences], mode="next", top_k=4)
    for words, out in zip(sentences, outputs, strict=True):
        row = torch_log_probs(ptb_artifact, vocabulary, words)[-1]
        best = np.argsort(-row, kind="stable")[:4]
        assert [w["word"] for w in out["next"]] == [vocabulary[i] for i in best]
        np.testing.assert_allclose(
            [w["probability"] for w in out["next"]], np.exp(row[best]), rtol=1e-4
        )


def test_score_is_the_sentence_log_probability_training_computes(
    handler: Mangum, ptb_artifact: Path, vocabulary: list[str], ptb: Any
) -> None:
    words = ptb.test[3]
    (out,) = predict(handler, [" ".join(words)], mode="score")
    table = torch_log_probs(ptb_artifact, vocabulary, words)
    targets = [vocabulary.index(w) for w in words] + [0]  # the words, then <eos>
    want = sum(table[t, target] for t, target in enumerate(targets))
    assert out["token_count"] == len(words) + 1
    assert out["log_prob"] == pytest.approx(want, rel=1e-5)
    assert out["perplexity"] == pytest.approx(math.exp(-want / (len(words) + 1)), rel=1e-5)


def test_served_perplexity_of_the_test_file_equals_the_training_run(
    handler: Mangum, ptb_artifact: Path, ptb: Any
) -> None:
    log_prob, tokens = 0.0, 0
    texts = [" ".join(s) for s in ptb.test]
    for start in range(0, len(texts), MAX_BATCH):
        for out in predict(handler, texts[start : start + MAX_BATCH], mode="score"):
            log_prob += out["log_prob"]
            tokens += out["token_count"]
    assert tokens == 78669 + len(texts)  # every word and every sentence's <eos>
    trained = read_manifest(ptb_artifact).metrics["test_sentence_perplexity"]
    assert math.exp(-log_prob / tokens) == pytest.approx(trained, rel=1e-4)


def test_a_batch_equals_its_texts_alone_and_chunking_changes_nothing(
    handler: Mangum, ptb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [" ".join(s) for s in ptb.test[20:26]]
    together = predict(handler, texts, mode="score")
    alone = [predict(handler, [t], mode="score")[0] for t in texts]
    monkeypatch.setattr(lm, "MAX_LOGITS_PER_CALL", 7)  # many short time chunks carrying the state
    chunked = predict(handler, texts, mode="score")
    for a, b, c in zip(together, alone, chunked, strict=True):
        assert a["log_prob"] == pytest.approx(b["log_prob"], rel=1e-5) == c["log_prob"]


def test_generation_reads_long_prompts_in_chunks_without_changing_a_word(
    handler: Mangum, ptb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = [" ".join(ptb.test[i]) for i in (1, 2, 3)]  # three lengths, read one group each
    whole = predict(handler, prompts, mode="generate", seed=3, max_tokens=8)
    monkeypatch.setattr(lm, "MAX_LOGITS_PER_CALL", 5)
    assert predict(handler, prompts, mode="generate", seed=3, max_tokens=8) == whole


def test_greedy_generation_follows_torch_s_argmax(
    handler: Mangum, ptb_artifact: Path, vocabulary: list[str]
) -> None:
    prompt = ["the", "company", "said"]
    (out,) = predict(handler, [" ".join(prompt)], mode="generate", temperature=0, max_tokens=6)
    words = list(prompt)
    for _ in range(len(out["generated"])):
        best = vocabulary[int(torch_log_probs(ptb_artifact, vocabulary, words)[-1].argmax())]
        assert best != "<eos>"
        words.append(best)
    assert out["generated"] == words[len(prompt) :]
    assert out["text"] == " ".join(out["generated"])


def test_the_same_seed_gives_the_same_words_and_none_draws_one(handler: Mangum) -> None:
    prompts = ["the company said", "stocks fell", "in new york"]
    first = predict(handler, prompts, mode="generate", seed=11, max_tokens=10, temperature=1.5)
    assert first == predict(
        handler, prompts, mode="generate", seed=11, max_tokens=10, temperature=1.5
    )
    assert all(out["seed"] == 11 and len(out["generated"]) <= 10 for out in first)
    drawn = predict(handler, prompts[:1], mode="generate")[0]
    replay = predict(handler, prompts[:1], mode="generate", seed=drawn["seed"])[0]
    assert replay["generated"] == drawn["generated"]


@pytest.mark.parametrize(
    ("parameters", "expect"),
    [
        ({"mode": "translate"}, "parameters.mode: Input should be 'next', 'score' or 'generate'"),
        ({"top_k": 0}, "parameters.top_k: 0 is out of range; use 1..100"),
        ({"top_k": 1.5}, "parameters.top_k"),
        ({"mode": "score", "top_k": 3}, "parameters.top_k: only used with mode 'next'"),
        ({"mode": "next", "seed": 3}, "parameters.seed: only used with mode 'generate'"),
        (
            {"mode": "generate", "max_tokens": 0},
            "parameters.max_tokens: 0 is out of range; use 1..200",
        ),
        ({"mode": "generate", "temperature": -1}, "parameters.temperature: -1.0 is out of range"),
        ({"mode": "generate", "seed": -5}, "parameters.seed: -5 is out of range"),
        ({"beam": 4}, "parameters.beam: Extra inputs are not permitted"),
    ],
)
def test_bad_parameters_are_400s_naming_the_field(
    handler: Mangum, parameters: dict[str, Any], expect: str
) -> None:
    reply = call(
        handler, "POST", PREDICT, {"inputs": ["the company said"], "parameters": parameters}
    )
    assert reply.status == 400
    assert expect in reply.json()["error"]


@pytest.mark.parametrize(
    ("inputs", "expect"),
    [
        ([" "], "inputs[0]: empty text"),
        (["(--)"], "inputs[0]: no words left after tokenisation"),
        (["word " * 257], "inputs[0]: 257 tokens, over this model's maximum of 256"),
        ([None], "inputs[0]: expected a string of text, got NoneType"),
    ],
)
def test_bad_texts_are_400s_naming_the_input(
    handler: Mangum, inputs: list[Any], expect: str
) -> None:
    reply = call(handler, "POST", PREDICT, {"inputs": inputs})
    assert reply.status == 400
    assert expect in reply.json()["error"]


def test_oip_modes_return_their_tensors(handler: Mangum, ptb: Any) -> None:
    texts = [" ".join(ptb.test[0]), "the company said"]
    tensor = {"name": "text", "shape": [2], "datatype": "BYTES", "data": texts}
    friendly = predict(handler, texts, mode="score")
    reply = call(handler, "POST", INFER, {"inputs": [tensor], "parameters": {"mode": "score"}})
    assert reply.status == 200, reply.body
    got = {o["name"]: o for o in reply.json()["outputs"]}
    assert set(got) == {"log_prob", "perplexity", "token_count"}
    assert got["token_count"]["data"] == [f["token_count"] for f in friendly]
    np.testing.assert_allclose(
        got["log_prob"]["data"], [f["log_prob"] for f in friendly], rtol=1e-5
    )
    nxt = call(handler, "POST", INFER, {"inputs": [tensor], "parameters": {"top_k": 3}}).json()
    words = {o["name"]: o for o in nxt["outputs"]}["next_words"]
    assert (words["datatype"], words["shape"]) == ("BYTES", [2, 3])
    gen = call(
        handler,
        "POST",
        INFER,
        {"inputs": [tensor], "parameters": {"mode": "generate", "seed": 1, "max_tokens": 3}},
    )
    (generated,) = gen.json()["outputs"]
    assert generated["name"] == "generated" and len(generated["data"]) == 2
    wrong = call(handler, "POST", INFER, {"inputs": [tensor], "outputs": [{"name": "perplexity"}]})
    assert wrong.status == 400 and "not produced by this request" in wrong.json()["error"]


def test_oip_metadata_lists_every_output_of_every_mode(handler: Mangum) -> None:
    meta = call(handler, "GET", f"/v2/models/{MODEL}").json()
    assert json.dumps(meta["inputs"]) == json.dumps(
        [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    )
    assert [o["name"] for o in meta["outputs"]] == [
        "next_words", "next_probabilities", "log_prob", "perplexity", "token_count", "generated",
    ]  # fmt: skip
