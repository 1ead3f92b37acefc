"""Evaluation metrics as pure numpy functions: no torch, no state, no sklearn.

Conventions: `y_true` and `y_pred` are int class indices of shape [N]; the confusion matrix is
indexed [true class, predicted class]. A class with no predictions has precision 0 and a class
with no examples has recall 0 (scikit-learn's `zero_division=0`), so an unused class pulls the
macro averages down instead of vanishing from them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassificationReport:
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    precision: np.ndarray  # float64 [num_classes]
    recall: np.ndarray  # float64 [num_classes]
    f1: np.ndarray  # float64 [num_classes]
    support: np.ndarray  # int64 [num_classes], true examples per class
    confusion: np.ndarray  # int64 [num_classes, num_classes], [true, predicted]

    def figures(self, labels: list[str]) -> dict[str, float]:
        """Accuracy, macro and per-class (`precision.<label>`, ...) figures, as manifests record them."""
        per_class = {"precision": self.precision, "recall": self.recall, "f1": self.f1}
        return {
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            **{
                f"{name}.{label}": float(value)
                for name, values in per_class.items()
                for label, value in zip(labels, values, strict=True)
            },
        }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true, predicted]; raises if a label falls outside 0..num_classes-1."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(
            f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal-length 1-D arrays"
        )
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} has labels outside 0..{num_classes - 1}")
    flat = y_true * num_classes + y_pred
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(y_true == y_pred))


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def precision_recall_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from a [true, predicted] confusion matrix."""
    cm = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(cm)
    precision = _safe_div(tp, cm.sum(axis=0))  # column sums: predicted as the class
    recall = _safe_div(tp, cm.sum(axis=1))  # row sums: truly the class
    f1 = _safe_div(2 * precision * recall, precision + recall)
    return precision, recall, f1


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int
) -> ClassificationReport:
    """Accuracy, macro (unweighted mean over classes) and per-class precision/recall/F1."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    precision, recall, f1 = precision_recall_f1(cm)
    return ClassificationReport(
        accuracy=accuracy(y_true, y_pred),
        macro_precision=float(precision.mean()),
        macro_recall=float(recall.mean()),
        macro_f1=float(f1.mean()),
        precision=precision,
        recall=recall,
        f1=f1,
        support=cm.sum(axis=1),
        confusion=cm,
    )


def perplexity(mean_nll: float) -> float:
    """exp of the mean per-token negative log-likelihood in nats (language models)."""
    if mean_nll < 0 or math.isnan(mean_nll):
        raise ValueError(f"mean negative log-likelihood must be >= 0 nats, got {mean_nll}")
    return math.exp(mean_nll)
