"""The text models' training: loss goes down, artifacts are complete, graphs agree with torch."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from architectures import ARCHITECTURES, load_torch_model
from architectures.ngram_classifier import (
    NgramClassifier,
    NgramClassifierConfig,
    naive_bayes_ratios,
)
from architectures.ptb_lstm import PtbLstm, PtbLstmConfig
from modelfn.artifact import (
    EXAMPLES_FILE,
    VOCAB_FILE,
    TextPreprocessing,
    parse_examples,
    parse_vocabulary,
    verify_artifact,
)
from modelfn.text import Tokenizer
from training.config import LanguageModelConfig, TextClassifierConfig
from training.data import imdb, ptb
from training.errors import TrainingError
from training.language_model import build_vocabulary, encode_sentences, to_stream
from training.loop import batchify, evaluate_stream, make_optimizer, train_bptt_epoch
from training.recipe import model_builder
from training.text_classification import featurise, fit, held_out_splits, predict_logits


def test_a_short_lm_run_lowers_the_validation_loss(ptb_dir: Path) -> None:
    data = ptb.load_ptb(ptb_dir)
    vocabulary = build_vocabulary(data.train, ptb.PREPROCESSING)
    tokenizer = Tokenizer.build(ptb.PREPROCESSING, vocabulary)
    train = batchify(to_stream(encode_sentences(data.train, tokenizer), 0)[:30000], 16)
    valid = batchify(to_stream(encode_sentences(data.valid[:300], tokenizer), 0), 4)
    torch.manual_seed(0)
    model = PtbLstm(PtbLstmConfig(vocab_size=len(vocabulary), embedding_dim=32, hidden_size=32))
    cfg = LanguageModelConfig(
        epochs=1,
        batch_size=16,
        bptt=20,
        optimizer="adamw",
        lr=3e-3,
        weight_decay=0.0,
        schedule="cosine",
        grad_clip=0.25,
    )
    before = evaluate_stream(model, valid, 20)
    assert before == pytest.approx(math.log(len(vocabulary)), rel=0.01)  # uniform at the start
    train_bptt_epoch(
        model, train, make_optimizer(model, cfg), cfg, bptt=20, step=0, steps_per_epoch=94
    )
    assert evaluate_stream(model, valid, 20) < before - 1.0  # nats: perplexity falls by e or more


def test_a_short_classifier_run_beats_chance_on_held_out_reviews(imdb_dir: Path) -> None:
    data = imdb.load_imdb(imdb_dir)
    cfg = TextClassifierConfig(
        epochs=2,
        batch_size=32,
        optimizer="adamw",
        lr=1e-2,
        weight_decay=0.0,
        schedule="step",
        decay_factor=1.0,
        min_count=2,
    )
    torch.manual_seed(0)
    build = lambda **d: NgramClassifier(NgramClassifierConfig(pooling="l2", **d))
    *_, losses, curve = fit(
        build,
        data.train.texts,
        torch.from_numpy(data.train.labels),
        imdb.PREPROCESSING,
        cfg,
        torch.Generator().manual_seed(0),
        2,
        (data.valid.texts, data.valid.labels),
    )
    # From log(2) nats at the start (zero weights) to well below it, and far above chance.
    assert losses[1] < losses[0] < math.log(2) and min(curve) > 0.8


def test_naive_bayes_ratios_favour_the_class_a_feature_appears_in() -> None:
    r = naive_bayes_ratios([[1, 2], [1, 3], [3]], torch.tensor([1, 1, 0]), vocab_size=4)
    assert r[0] == 0 and r[2] > 0 and r[3] < r[2]  # 2 only in positives; 3 in one of each
    assert r[1] > 0


def test_held_out_splits_are_positional_and_disjoint() -> None:
    ((fit_idx, held),) = held_out_splits(train=8, total=10, folds=0)
    assert held == [8, 9] and fit_idx == list(range(8))
    folds = held_out_splits(train=8, total=10, folds=3)
    assert [h for _, h in folds] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert all(not set(f) & set(h) for f, h in folds)
    with pytest.raises(TrainingError, match="selection_folds = 1 holds nothing out"):
        held_out_splits(8, 10, 1)


def test_the_ptb_artifact_is_complete_and_rebuilds(ptb_artifact: Path, ptb_dir: Path) -> None:
    manifest = verify_artifact(ptb_artifact)
    assert set(manifest.files) == {
        "model.safetensors", "model.onnx", VOCAB_FILE, EXAMPLES_FILE, "report.json", "report.md",
        "learning_curves.png", "perplexity_by_length.png",
    }  # fmt: skip
    # Examples: whole test sentences without the corpus's <unk>, found again by their index.
    test = ptb.load_ptb(ptb_dir).test
    shipped = parse_examples((ptb_artifact / EXAMPLES_FILE).read_bytes()).examples
    assert len(shipped) == 4
    for example in shipped:
        assert example.split == "test" and example.input == " ".join(test[example.index])
        assert "<unk>" not in example.input and 6 <= len(example.input.split()) <= 20
    assert isinstance(manifest.preprocessing, TextPreprocessing) and manifest.labels == []
    assert manifest.metrics["onnx_max_abs_diff"] <= 1e-4
    assert {"test_perplexity", "test_sentence_perplexity", "valid_perplexity"} <= set(
        manifest.metrics
    )
    assert manifest.data.examples == {"train": 42068, "valid": 3370, "test": 3761}
    vocabulary = parse_vocabulary((ptb_artifact / VOCAB_FILE).read_bytes())
    assert vocabulary[0] == "<eos>" and len(vocabulary) == 10000
    # Tied weights: stored once, and the rebuilt module shares them again.
    model = load_torch_model(ptb_artifact)
    assert model.decoder.weight is model.embedding.weight


def test_the_lm_graph_matches_torch_on_other_lengths_with_a_carried_state(
    ptb_artifact: Path, ptb_dir: Path
) -> None:
    model = load_torch_model(ptb_artifact)
    vocabulary = parse_vocabulary((ptb_artifact / VOCAB_FILE).read_bytes())
    tokenizer = Tokenizer.build(ptb.PREPROCESSING, vocabulary)
    stream = to_stream(encode_sentences(ptb.load_ptb(ptb_dir).test[:200], tokenizer), 0)
    session = ort.InferenceSession(str(ptb_artifact / "model.onnx"))
    h, c = model.initial_state(3)
    for length in (1, 7, 50):  # the state flows from call to call, as in serving
        tokens = stream[: 3 * length].view(3, length)
        stream = stream[3 * length :]
        with torch.no_grad():
            want = model(tokens, h, c)
        got = session.run(None, {"tokens": tokens.numpy(), "h0": h.numpy(), "c0": c.numpy()})
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w.numpy(), atol=1e-4)
        h, c = want[1], want[2]


def test_the_imdb_artifact_is_complete_and_its_graph_matches_torch(
    imdb_artifact: Path, imdb_dir: Path
) -> None:
    manifest = verify_artifact(imdb_artifact)
    assert set(manifest.files) == {
        "model.safetensors", "model.onnx", VOCAB_FILE, EXAMPLES_FILE, "report.json", "report.md",
        "learning_curves.png", "confusion_matrix.png",
    }  # fmt: skip
    # Examples: short test reviews, both labels, each the data set's own text and label.
    test = imdb.load_imdb(imdb_dir).test
    shipped = parse_examples((imdb_artifact / EXAMPLES_FILE).read_bytes()).examples
    assert [e.label for e in shipped] == ["negative", "positive", "negative", "positive"]
    for example in shipped:
        assert example.input == test.texts[example.index] and len(example.input.split()) <= 80
        assert example.label == manifest.labels[test.labels[example.index]]
    assert manifest.labels == ["negative", "positive"]
    assert manifest.metrics["onnx_max_abs_diff"] <= 1e-4
    assert {"accuracy", "macro_f1", "f1.positive", "recall.negative"} <= set(manifest.metrics)
    model = load_torch_model(imdb_artifact)
    vocabulary = parse_vocabulary((imdb_artifact / VOCAB_FILE).read_bytes())
    rows = featurise(
        imdb.load_imdb(imdb_dir).test.texts[:20],
        Tokenizer.build(manifest.preprocessing, vocabulary),
    )  # type: ignore[arg-type]
    session = ort.InferenceSession(str(imdb_artifact / "model.onnx"))
    for batch in (rows[:1], rows[:20]):  # one review alone, and twenty padded together
        from training.text_classification import pad

        (got,) = session.run(None, {"tokens": pad(batch).numpy()})
        np.testing.assert_allclose(got, predict_logits(model, batch, 64).numpy(), atol=1e-4)


def test_a_size_the_data_fixes_must_agree_with_the_config() -> None:
    build = model_builder(
        ARCHITECTURES["ptb_lstm"],
        PtbLstmConfig(vocab_size=5000),
        explicit={"vocab_size": 5000},
        where="ptb-lstm.toml [full.model]",
        log=lambda _: None,
    )
    with pytest.raises(
        TrainingError, match=r"\[full.model\] vocab_size = 5000, but the data gives 10000"
    ):
        build(vocab_size=10000)


@pytest.mark.parametrize(
    ("name", "fixture"), [("ptb-lstm", "ptb_artifact"), ("imdb-sentiment", "imdb_artifact")]
)
def test_the_same_seed_gives_the_same_weights(
    name: str, fixture: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from modelfn.artifact import WEIGHTS_FILE, read_manifest
    from tests.support.text_models import train_tiny

    first = read_manifest(request.getfixturevalue(fixture))
    again = read_manifest(train_tiny(name, tmp_path))
    assert again.files[WEIGHTS_FILE].sha256 == first.files[WEIGHTS_FILE].sha256
    assert again.files["model.onnx"].sha256 == first.files["model.onnx"].sha256
    timing = {"train_tokens_per_second"}  # wall time, not a property of the weights
    assert {k: v for k, v in again.metrics.items() if k not in timing} == {
        k: v for k, v in first.metrics.items() if k not in timing
    }


def test_early_stopping_keeps_the_best_validation_epoch(ptb_dir: Path) -> None:
    import dataclasses

    from training.language_model import train_language_model
    from training.run import Run

    full = ptb.load_ptb(ptb_dir)
    data = dataclasses.replace(
        full, train=full.train[:600], valid=full.valid[:150], test=full.test[:150]
    )
    cfg = LanguageModelConfig(
        epochs=6,
        batch_size=8,
        eval_batch_size=4,
        bptt=20,
        optimizer="adamw",
        lr=3e-2,
        weight_decay=0.0,
        schedule="step",
        decay_factor=1.0,
        grad_clip=None,
        early_stopping_patience=1,
        parity_sequences=2,
    )  # a rate this high overfits 600 sentences within a few epochs
    torch.manual_seed(0)
    lines: list[str] = []
    trained = train_language_model(
        lambda **d: PtbLstm(PtbLstmConfig(embedding_dim=16, hidden_size=16, **d)),
        data,
        ptb.PREPROCESSING,
        cfg,
        torch.Generator().manual_seed(0),
        Run(log=lines.append),
    )
    valid = [row["valid_perplexity"] for row in trained.evaluation.history]
    best = int(np.argmin(valid))
    assert len(valid) == best + 2 < 6  # stopped one epoch after the best
    assert trained.metrics["valid_perplexity"] == pytest.approx(valid[best])
    assert any(line.startswith(f"kept epoch {best + 1} ") for line in lines)
