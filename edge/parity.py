"""fp32 and int8 graphs of a bundle, scored on real test data through the bundle's runner.

The test data arrives as `TestData` (the runner's input forms); the tools read it with training's
loaders (tools/edge_test_data.py), so edge export stands beside training, not on it.

The figures come from the runner's own code (`standalone_runner.Bundle`), so they describe what a
device computes: test accuracy and label agreement for the classifiers, test perplexity for the
language model. Sessions run on one thread so the figures repeat bit for bit (they go into the
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
    assert data.texts is not None and bundle.tokenizer is not None
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


def latency_ms(bundle: Bundle, data: TestData) -> float:
    """Median milliseconds of one single-input call (one image, one review, 35 words)."""
    call: Callable[[], Any]
    if data.images is not None:
        one = data.images[:1]
        call = lambda: bundle.classify_pixels(one)
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
    if task == "language-modeling":
        return f"test perplexity at most {limits.max_perplexity_increase:.2%} above fp32"
    return f"test accuracy at most {limits.max_accuracy_drop * 100:.2f} points below fp32"
