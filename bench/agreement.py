"""What "the same answer" means when two servers answer the same real inputs: the same labels (the
classifiers) and next words (the language model), and every score beside them (the label's
score, the top-k scores, the next words' probabilities) within SCORE_TOLERANCE.

The torch eager model and the ONNX graph compute in float32, in different orders: on the three
models their probabilities differ by about 1e-6, so 1e-4 passes them and catches a server that
answers the right label with a wrong probability (a softmax on the wrong axis, a stale version).
"""

from __future__ import annotations

from typing import Any

SCORE_TOLERANCE = 1e-4  # absolute, on probabilities in [0, 1]
# How benchmarks.md states what was compared.
ANSWERS_COMPARED = f"the same labels and next words, every score within {SCORE_TOLERANCE:g}"


def answers(body: dict[str, Any]) -> list[Any]:
    """The discrete answers: the label (classifiers) or the next words (LM), per input."""
    out = []
    for item in body["outputs"]:
        if "label" in item:
            out.append(item["label"])
        else:
            out.append([w["word"] for w in item["next"]])
    return out


def scores(body: dict[str, Any]) -> list[float]:
    """Every probability an answer carries, in order: score and top-k scores, or next words'."""
    out: list[float] = []
    for item in body["outputs"]:
        if "label" in item:
            out += [item["score"], *(t["score"] for t in item.get("top_k", []))]
        else:
            out += [w["probability"] for w in item["next"]]
    return out


def disagreement(body: dict[str, Any], reference: dict[str, Any]) -> str | None:
    """None where `body` answers as `reference` does; else what differs, for the error."""
    if answers(body) != answers(reference):
        return f"answers {answers(body)} where the reference gave {answers(reference)}"
    mine, theirs = scores(body), scores(reference)
    if len(mine) != len(theirs):
        return f"{len(mine)} scores where the reference gave {len(theirs)}"
    worst = max((abs(a - b) for a, b in zip(mine, theirs, strict=True)), default=0.0)
    if worst > SCORE_TOLERANCE:
        return f"scores differ by up to {worst:.3g} (tolerance {SCORE_TOLERANCE:g})"
    return None
