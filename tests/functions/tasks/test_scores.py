"""A classifier's answered scores follow its manifest's `scores`: softmax (the default), sigmoid
(multi-label) or the logits; the function's and the edge runner's agree."""

from __future__ import annotations

import numpy as np
import pytest

from edge.standalone_runner import scored as runner_scored
from functions.tasks.classification import label_tensors, postprocess, scored, sigmoid

LABELS = ["toxic", "insult", "threat"]
LOGITS = np.array([[2.0, -1.0, 0.5], [-800.0, 800.0, 0.0]], dtype=np.float32)


def test_sigmoid_scores_each_label_on_its_own_without_overflow() -> None:
    got = sigmoid(LOGITS)
    want = 1.0 / (1.0 + np.exp(-LOGITS[:1].astype(np.float64)))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    assert got[1].tolist() == [0.0, 1.0, 0.5]  # the tails, with no overflow warning
    assert got[0].sum() > 1.0  # not a distribution: multi-label


@pytest.mark.parametrize("how", ["softmax", "sigmoid", "logits"])
def test_the_ranking_and_the_answered_score(how: str) -> None:
    answers = postprocess(LOGITS, LABELS, top_k=3, scores=how)  # type: ignore[arg-type]
    rows = scored(LOGITS, how)  # type: ignore[arg-type]
    for answer, row in zip(answers, rows, strict=True):
        assert answer.label == LABELS[int(np.argmax(row))]
        assert [t.score for t in answer.top_k] == pytest.approx(sorted(row, reverse=True))
    if how == "logits":
        assert answers[0].score == 2.0
    tensors = label_tensors(LOGITS, LABELS, how)  # type: ignore[arg-type]
    np.testing.assert_allclose(tensors["probabilities"], rows.astype(np.float32))
    np.testing.assert_allclose(runner_scored(LOGITS[0].astype(np.float64), how), rows[0])


def test_softmax_is_the_default() -> None:
    [answer] = postprocess(LOGITS[:1], LABELS, top_k=1)
    assert answer.score == pytest.approx(float(scored(LOGITS[:1], "softmax").max()))
