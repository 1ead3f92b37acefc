"""fp32 and int8 graphs of a bundle, scored on real test data through the bundle's runner.

The test data arrives as `TestData` (the runner's input forms); the tools read it with training's
loaders (tools/edge_test_data.py), so edge export stands beside training, not on it.

The figures come from the runner's own code (`standalone_runner.Bundle`), so they describe what a
device computes: test accuracy and label agreement for the classifiers, test perplexity for the
language model, and for a feature extractor, which has no answer to score, how close each int8
embedding stays to fp32's (cosine similarity) and whether each text's nearest neighbour stays
the same. Sessions run on one thread so the figures repeat bit for bit (they go into the
bundle, which must be byte-identical on re-export); latency is measured too, but reported beside
the bundle, never in it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.standalone_runner import Bundle
from modelfn.registry import EdgeEntry

LM_ROWS = 16  # parallel streams the test text is cut into (perplexity is per token either way)
LM_STEPS = 35  # time steps per graph call while scoring
LATENCY_RUNS = 30  # single-input calls timed per graph; the median is reported


# uint8 [N, H, W, 3], or N arrays [H, W, 3] of their own sizes (the user's photos): the runner
# fits each image to the model's size with the model's scheme, as it does on a device.
Images = np.ndarray | list[np.ndarray]


@dataclass(frozen=True)
class TestData:
    """A task's test split in the runner's input forms (tools/edge_test_data.py reads it)."""

    images: Images | None = None
    texts: list[str] | None = None
    labels: np.ndarray | None = None  # int64 [N]
    sentences: list[list[str]] | None = None  # language model: words, no <eos>
    calibration: Images | None = None  # images to calibrate int8 on, never the test images
    source: str = ""  # where the test and calibration examples came from, in words


# --- figures -------------------------------------------------------------------------------------


def predicted_labels(bundle: Bundle, data: TestData) -> np.ndarray:
    if data.images is not None:
        return np.concatenate(
            [
                bundle.classify_pixels(data.images[i : i + 100]).argmax(axis=1)
                for i in range(0, len(data.images), 100)
            ]
        )
    assert data.texts is not None
    if bundle.tokenizer_json is not None:
        # One text a call, as run.py answers one line: no padding from a longer neighbour.
        return np.asarray([int(bundle.classify_text(t).argmax()) for t in data.texts])
    assert bundle.tokenizer is not None
    tokenizer = bundle.tokenizer
    # The whole review, as training scored it: no request-size limit applies here.
    return np.asarray(
        [
            bundle.token_logits(tokenizer.tokens(t) or [tokenizer.spec["unknown_token"]]).argmax()
            for t in data.texts
        ]
    )


def perplexity(bundle: Bundle, sentences: list[list[str]]) -> float:
    """exp(mean negative log-likelihood) of the test stream `<eos> s1 <eos> s2 <eos> ...`."""
    assert bundle.tokenizer is not None
    ids, unknown = (
        bundle.tokenizer.ids,
        bundle.tokenizer.ids[bundle.tokenizer.spec["unknown_token"]],
    )
    eos = ids[bundle.tokenizer.spec["eos_token"]]
    stream = [eos]
    for sentence in sentences:
        stream += [ids.get(w, unknown) for w in sentence] + [eos]
    per_row = (len(stream) - 1) // LM_ROWS
    data = np.asarray(stream[: per_row * LM_ROWS + 1], np.int64)
    inputs, targets = data[:-1].reshape(LM_ROWS, per_row), data[1:].reshape(LM_ROWS, per_row)
    state = bundle.zero_state(LM_ROWS)
    nll = 0.0
    for start in range(0, per_row, LM_STEPS):
        out = bundle.run(
            {"tokens": inputs[:, start : start + LM_STEPS], "h0": state[0], "c0": state[1]}
        )
        state = (out["hn"], out["cn"])
        logits = out["logits"]
        top = logits.max(axis=-1, keepdims=True)
        lse = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1, dtype=np.float64))
        picked = np.take_along_axis(logits, targets[:, start : start + LM_STEPS, None], axis=2)[
            ..., 0
        ]
        nll += float((lse - picked).sum())
    return math.exp(nll / targets.size)


def embeddings(bundle: Bundle, texts: list[str]) -> np.ndarray:
    """float32 [N, dimensions], one text a call as run.py embeds a line."""
    return np.concatenate([bundle.embed([t]) for t in texts])


def latency_ms(bundle: Bundle, data: TestData) -> float:
    """Median milliseconds of one single-input call (one image, one review, 35 words)."""
    call: Callable[[], Any]
    if data.images is not None:
        one = data.images[:1]
        call = lambda: bundle.classify_pixels(one)
    elif data.texts is not None and bundle.tokenizer_json is not None:
        feeds = bundle.tokenizer_json.feeds(data.texts[:1])
        call = lambda: bundle.run(feeds)
    elif data.texts is not None:
        assert bundle.tokenizer is not None
        tokens = bundle.tokenizer.tokens(data.texts[0])
        call = lambda: bundle.token_logits(tokens)
    else:
        ids = np.zeros((1, LM_STEPS), np.int64)
        call = lambda: bundle.lm_logits(ids, bundle.zero_state(1))
    for _ in range(3):
        call()  # warm-up: first calls allocate
    times = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


@dataclass(frozen=True)
class Comparison:
    """The fp32 and int8 graphs side by side on the test data, and the verdict."""

    scores: dict[str, float]  # each graph's headline figure, `fp32_...` and `int8_...`
    agreement: dict[str, float]  # what compares the two answers, and how many examples
    refused: str | None  # why int8 must not ship (it loses more than the threshold), or None
    measured: str  # the figures the threshold reads, in words


def compare(fp32: Bundle, int8: Bundle, data: TestData, task: str, limits: EdgeEntry) -> Comparison:
    if task == "feature-extraction":
        assert data.texts is not None
        return _compare_embeddings(
            embeddings(fp32, data.texts), embeddings(int8, data.texts), data.texts, limits
        )
    fp32_figures, fp32_labels = score(fp32, data)
    int8_figures, int8_labels = score(int8, data)
    agreement: dict[str, float] = {}
    if fp32_labels is not None and int8_labels is not None:
        agreement["label_agreement"] = round(float((fp32_labels == int8_labels).mean()), 6)
        agreement["test_examples"] = len(fp32_labels)
    return Comparison(
        scores={
            **{f"fp32_{k}": v for k, v in fp32_figures.items()},
            **{f"int8_{k}": v for k, v in int8_figures.items()},
        },
        agreement=agreement,
        refused=refusal(task, fp32_figures, int8_figures, limits),
        measured=", ".join(f"{k} {v}" for k, v in int8_figures.items()),
    )


def _compare_embeddings(
    fp32: np.ndarray, int8: np.ndarray, texts: list[str], limits: EdgeEntry
) -> Comparison:
    """Cosine similarity of each text's int8 embedding to its fp32 one (the lowest gates int8),
    and the share of texts whose nearest other text is the same under both (what a search over
    these texts would return first)."""
    a, b = _unit(fp32.astype(np.float64)), _unit(int8.astype(np.float64))
    cosine = (a * b).sum(axis=1)
    worst = int(cosine.argmin())
    agreement = {
        "cosine_min": round(float(cosine.min()), 6),
        "cosine_mean": round(float(cosine.mean()), 6),
    }
    if len(texts) >= 3:  # with two texts, each one's nearest other text is the other
        agreement["neighbour_agreement"] = round(
            float((_nearest_other(a) == _nearest_other(b)).mean()), 6
        )
    agreement["test_examples"] = len(texts)
    refused = None
    if cosine[worst] < limits.min_cosine_similarity:
        refused = (
            f"int8's embedding of test text {worst + 1} ({texts[worst][:40]!r}) has cosine "
            f"similarity {cosine[worst]:.6f} to fp32's, under the limit of "
            f"{limits.min_cosine_similarity}"
        )
    measured = ", ".join(f"{k} {v}" for k, v in agreement.items() if k != "test_examples")
    return Comparison({}, agreement, refused, measured)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)  # type: ignore[no-any-return]


def _nearest_other(unit: np.ndarray) -> np.ndarray:
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return similarity.argmax(axis=1)  # type: ignore[no-any-return]


def score(bundle: Bundle, data: TestData) -> tuple[dict[str, float], np.ndarray | None]:
    """The graph's headline figure on the test data, and its predicted labels (classifiers)."""
    if data.sentences is not None:
        return {"perplexity": round(perplexity(bundle, data.sentences), 4)}, None
    assert data.labels is not None
    labels = predicted_labels(bundle, data)
    return {"accuracy": round(float((labels == data.labels).mean()), 6)}, labels


def refusal(
    task: str, fp32: dict[str, float], int8: dict[str, float], limits: EdgeEntry
) -> str | None:
    """Why the int8 graph must not ship (it loses more than the model's threshold), or None."""
    if task == "language-modeling":
        growth = int8["perplexity"] / fp32["perplexity"] - 1
        if growth > limits.max_perplexity_increase:
            return (
                f"int8 perplexity {int8['perplexity']:.2f} is {growth:+.2%} against fp32's "
                f"{fp32['perplexity']:.2f}, over the limit of +{limits.max_perplexity_increase:.2%}"
            )
        return None
    drop = fp32["accuracy"] - int8["accuracy"]
    if drop > limits.max_accuracy_drop:
        return (
            f"int8 accuracy {int8['accuracy']:.2%} is {drop * 100:.2f} points below fp32's "
            f"{fp32['accuracy']:.2%}, over the limit of {limits.max_accuracy_drop * 100:.2f} points"
        )
    return None


def threshold_words(task: str, limits: EdgeEntry) -> str:
    if task == "feature-extraction":
        return (
            "cosine similarity of every test text's int8 embedding to its fp32 one at least "
            f"{limits.min_cosine_similarity}"
        )
    if task == "language-modeling":
        return f"test perplexity at most {limits.max_perplexity_increase:.2%} above fp32"
    return f"test accuracy at most {limits.max_accuracy_drop * 100:.2f} points below fp32"
