"""A version's reference statistics: what its inputs and answers looked like on held-out data.

Training records them on the test split, `modelfn import --examples` on the user's examples, in
the manifest (`Manifest.reference`); `modelfn drift` compares captured requests against them.
For each input feature (modelfn/input_features.py) the reference keeps:
- `cuts` and `counts`: a histogram whose bins are the reference's own deciles (so each holds about
  a tenth of it) plus one bin below its minimum and one above its maximum, where a shifted
  population shows first; the population stability index (PSI) is computed over these bins;
- `quantiles`: 101 points of its distribution (0%, 1%, ..., 100%), the empirical CDF a
  Kolmogorov-Smirnov test reads for continuous features, to within a percentile;
and, for a classifier, the predicted-label counts and a histogram of the top score.

About a kilobyte of JSON per feature (an image model's nine: 9 kB, 19 kB as the manifest indents
it), whatever the data set's size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from modelfn.input_features import KINDS, Kind

QUANTILE_POINTS = 101  # 0%, 1%, ..., 100%
DECILES = [q / 10 for q in range(1, 10)]
CONFIDENCE_BINS = 10  # equal bins over 0..1 of the top label's score


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureReference(_Strict):
    kind: Kind
    count: int = Field(ge=1, description="Inputs the statistics were measured on.")
    mean: float
    std: float
    cuts: list[float] = Field(
        description="Ascending bin edges: bin 0 is below cuts[0], bin i is cuts[i-1] <= x < "
        "cuts[i], the last bin is at or above cuts[-1]."
    )
    counts: list[int] = Field(description="Reference inputs per bin: len(cuts) + 1 of them.")
    quantiles: list[float] = Field(
        description=f"{QUANTILE_POINTS} points: the 0th, 1st, ..., 100th percentile."
    )


class ReferenceStats(_Strict):
    data: str = Field(description="What the statistics were measured on, in words.")
    examples: int = Field(ge=1)
    features: dict[str, FeatureReference]
    labels: dict[str, int] | None = Field(
        default=None, description="Classifiers: how often each label was the predicted one."
    )
    confidence: list[int] | None = Field(
        default=None,
        description=f"Classifiers with probability scores: the top score's histogram, "
        f"{CONFIDENCE_BINS} equal bins over 0..1.",
    )


def bin_edges(values: np.ndarray) -> list[float]:
    """The reference's bin edges: its minimum, its deciles, and just above its maximum (so
    'above everything seen' is a bin of its own); repeated edges merged."""
    deciles = np.quantile(values, DECILES) if len(values) else []
    top = float(np.nextafter(values.max(), np.inf))
    return sorted({float(values.min()), *map(float, deciles), top})


def bin_counts(cuts: Sequence[float], values: Sequence[float] | np.ndarray) -> list[int]:
    """How many `values` fall in each of the len(cuts) + 1 bins `cuts` make."""
    where = np.searchsorted(np.asarray(cuts, dtype=np.float64), np.asarray(values), side="right")
    return [int(n) for n in np.bincount(where, minlength=len(cuts) + 1)]


def feature_reference(values: Sequence[float], kind: Kind) -> FeatureReference:
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ValueError("a feature's reference needs at least one value")
    cuts = bin_edges(array)
    return FeatureReference(
        kind=kind,
        count=int(array.size),
        mean=_short(array.mean()),
        std=_short(array.std()),
        cuts=cuts,  # exact: the counts were taken against them
        counts=bin_counts(cuts, array),
        quantiles=[_short(q) for q in np.quantile(array, np.linspace(0, 1, QUANTILE_POINTS))],
    )


def _short(value: float) -> float:
    """Six significant digits: the manifest stays small, and a KS test reads percentiles."""
    return float(f"{float(value):.6g}")


def confidence_counts(scores: Sequence[float]) -> list[int]:
    """The top scores' histogram over 0..1 in CONFIDENCE_BINS equal bins (1.0 in the last)."""
    scaled = (np.asarray(scores, dtype=np.float64) * CONFIDENCE_BINS).astype(int)
    where = np.clip(scaled, 0, CONFIDENCE_BINS - 1)
    return [int(n) for n in np.bincount(where, minlength=CONFIDENCE_BINS)]


def classifier_answers(logits: np.ndarray, labels: Sequence[str]) -> tuple[list[str], list[float]]:
    """Each row's predicted label and its softmax probability (what a softmax classifier
    answers), for a reference measured outside the function (training, import)."""
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    best = p.argmax(axis=1)
    return [labels[i] for i in best], [float(p[row, i]) for row, i in enumerate(best)]


def reference_stats(
    features: Sequence[Mapping[str, float]],
    *,
    data: str,
    labels: Sequence[str] | None = None,
    predicted: Sequence[str] | None = None,
    scores: Sequence[float] | None = None,
) -> ReferenceStats:
    """The reference of `features` (one dict per input, modelfn/input_features.py), and of a
    classifier's answers: `predicted` labels (each of `labels`) and their `scores` where those are
    probabilities."""
    if not features:
        raise ValueError("reference statistics need at least one input")
    names = [name for name in features[0] if name in KINDS]
    by_feature = {
        name: feature_reference([f[name] for f in features], KINDS[name]) for name in names
    }
    label_counts = None
    if predicted is not None:
        label_counts = {label: 0 for label in labels or []}
        for label in predicted:
            label_counts[label] = label_counts.get(label, 0) + 1
    return ReferenceStats(
        data=data,
        examples=len(features),
        features=by_feature,
        labels=label_counts,
        confidence=None if scores is None else confidence_counts(scores),
    )
