import math

import numpy as np
import pytest

from training.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    perplexity,
    precision_recall_f1,
)

# Worked by hand:      true 0 0 1 1 2 2
#                      pred 0 1 1 1 0 2
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 0, 2])


def test_confusion_matrix_rows_are_true_classes():
    assert confusion_matrix(Y_TRUE, Y_PRED, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_accuracy():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)


def test_per_class_and_macro_scores():
    report = classification_report(Y_TRUE, Y_PRED, 3)
    # precision = diag / column sums [2, 3, 1]; recall = diag / row sums [2, 2, 2]
    assert report.precision.tolist() == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert report.recall.tolist() == pytest.approx([1 / 2, 1.0, 1 / 2])
    # F1 = 2PR / (P + R): 0.5, 2*(2/3)/(5/3) = 0.8, 2*(1/2)/(3/2) = 2/3
    assert report.f1.tolist() == pytest.approx([0.5, 0.8, 2 / 3])
    assert report.macro_precision == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert report.macro_recall == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert report.macro_f1 == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert report.support.tolist() == [2, 2, 2]


def test_class_never_predicted_scores_zero_not_nan():
    precision, recall, f1 = precision_recall_f1(confusion_matrix([0, 1], [0, 0], 3))
    # class 1 is never predicted, class 2 never occurs: both 0 by convention.
    assert precision.tolist() == pytest.approx([0.5, 0.0, 0.0])
    assert recall.tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert f1.tolist() == pytest.approx([2 / 3, 0.0, 0.0])


def test_out_of_range_labels_are_rejected():
    with pytest.raises(ValueError, match=r"y_pred has labels outside 0\.\.2"):
        confusion_matrix([0, 1], [0, 3], 3)
    with pytest.raises(ValueError, match="equal-length"):
        confusion_matrix([0, 1], [0], 3)


def test_perplexity_is_exp_of_mean_nll():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(100)) == pytest.approx(100.0)
    assert perplexity(math.log(10_000)) == pytest.approx(10_000.0)  # uniform over PTB's vocabulary
    with pytest.raises(ValueError, match="nats"):
        perplexity(-0.1)
