"""Captured records against a version's reference statistics: the figures of a `DriftReport`.

Every input of every record counts (a batch request's inputs are each an input the model saw).
Features are compared over the reference's own bins (modelfn/reference_stats.py `bin_counts`),
so both sides are cut at the same edges; a classifier's answers over its labels and over the
top score's ten bins (`confidence_counts`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from modelfn.capture import CaptureRecord
from modelfn.reference_stats import (
    CONFIDENCE_BINS,
    FeatureReference,
    ReferenceStats,
    bin_counts,
    confidence_counts,
)
from tools.drift.report import AnswerDrift, DriftReport, FeatureDrift, Histogram, Verdict
from tools.drift.statistics import (
    MIN_INPUTS,
    ks_p_value,
    ks_statistic,
    level,
    psi,
    total_variation,
)

LABELS_PLOT, CONFIDENCE_PLOT = "labels.png", "confidence.png"


def bin_names(cuts: Sequence[float]) -> list[str]:
    """People's names for the len(cuts) + 1 bins of a reference histogram. Its last cut lies just
    above the reference's maximum (`bin_edges`), so the last two read "[d9, max]" and "> max"."""

    def show(x: float) -> str:
        return f"{x:.4g}"

    names = [f"< {show(cuts[0])}"]
    for i in range(1, len(cuts)):
        names.append(f"[{show(cuts[i - 1])}, {show(cuts[i])}{']' if i == len(cuts) - 1 else ')'}")
    return [*names, f"> {show(cuts[-1])}"]


def captured_features(
    records: Sequence[CaptureRecord], names: Sequence[str]
) -> dict[str, list[float]]:
    """Each named feature's values over every input of every record (absent ones skipped)."""
    values: dict[str, list[float]] = {name: [] for name in names}
    for record in records:
        for features in record.features:
            for name in names:
                if name in features:
                    values[name].append(float(features[name]))
    return values


def captured_answers(records: Sequence[CaptureRecord]) -> tuple[list[str], list[float]]:
    """The predicted labels, and the scores answered with them, of every classifier answer."""
    labels: list[str] = []
    scores: list[float] = []
    for record in records:
        for output in record.outputs or []:
            if isinstance(output, dict) and isinstance(output.get("label"), str):
                labels.append(output["label"])
                if isinstance(output.get("score"), int | float):
                    scores.append(float(output["score"]))
    return labels, scores


def feature_drift(
    name: str, reference: FeatureReference, values: Sequence[float], *, plot: bool
) -> FeatureDrift:
    captured = bin_counts(reference.cuts, values)
    value = psi(reference.counts, captured)
    continuous = reference.kind == "continuous"
    d = ks_statistic(reference.quantiles, values) if continuous else None
    return FeatureDrift(
        name=name,
        kind=reference.kind,
        reference_count=reference.count,
        captured_count=len(values),
        reference_mean=reference.mean,
        captured_mean=float(np.mean(values)),
        psi=value,
        level=level(value),
        flag=level(value) == "drift" and len(values) >= MIN_INPUTS,
        ks=d,
        p_value=None if d is None else ks_p_value(d, len(values), reference.count),
        histogram=Histogram(
            bins=bin_names(reference.cuts), reference=reference.counts, captured=captured
        ),
        plot=f"{name}.png" if plot else None,
    )


def _answer_drift(histogram: Histogram, *, distance: bool, plot: str | None) -> AnswerDrift:
    value = psi(histogram.reference, histogram.captured)
    count = sum(histogram.captured)
    return AnswerDrift(
        reference_count=sum(histogram.reference),
        captured_count=count,
        psi=value,
        level=level(value),
        flag=level(value) == "drift" and count >= MIN_INPUTS,
        total_variation=total_variation(histogram.reference, histogram.captured)
        if distance
        else None,
        histogram=histogram,
        plot=plot,
    )


def label_drift(
    reference: dict[str, int], predicted: Sequence[str], *, plot: bool
) -> AnswerDrift | None:
    """Predicted labels against the reference's, over every label either side saw."""
    if not predicted or sum(reference.values()) == 0:
        return None
    counts = Counter(predicted)
    labels = [*reference, *sorted(set(counts) - set(reference))]
    histogram = Histogram(
        bins=labels,
        reference=[reference.get(label, 0) for label in labels],
        captured=[counts[label] for label in labels],
    )
    return _answer_drift(histogram, distance=True, plot=LABELS_PLOT if plot else None)


def confidence_drift(
    reference: list[int], scores: Sequence[float], *, plot: bool
) -> AnswerDrift | None:
    """The top score's histogram (ten bins over 0..1) against the reference's."""
    if not scores or sum(reference) == 0:
        return None
    width = 1 / CONFIDENCE_BINS
    histogram = Histogram(
        bins=[f"{i * width:.1f}-{(i + 1) * width:.1f}" for i in range(CONFIDENCE_BINS)],
        reference=reference,
        captured=confidence_counts(scores),
    )
    return _answer_drift(histogram, distance=False, plot=CONFIDENCE_PLOT if plot else None)


def verdict_of(inputs: int, flagged: Sequence[str], levels: Sequence[str]) -> Verdict:
    """Too few records before anything else; drift where something is flagged; moderate where
    a PSI passed PSI_MODERATE (or PSI_FLAG on too few of its own values to flag)."""
    if inputs < MIN_INPUTS:
        return "too few records"
    if flagged:
        return "drift"
    return "moderate" if {"moderate", "drift"} & set(levels) else "stable"


def compare(
    *,
    model: str,
    version: str,
    reference: ReferenceStats,
    records: Sequence[CaptureRecord],
    since: datetime | None,
    now: datetime,
    other_versions: dict[str, int] | None = None,
    plots: bool = True,
) -> DriftReport:
    """The drift report of `records` (one version's, oldest first) against its `reference`.
    `plots`: name a PNG per feature in the report (drift_files draws them)."""
    if not records:
        raise ValueError("a drift report needs at least one captured record")
    values = captured_features(records, list(reference.features))
    features = [
        feature_drift(name, ref, values[name], plot=plots)
        for name, ref in reference.features.items()
        if values[name]
    ]
    labels, scores = captured_answers(records)
    label_shift = label_drift(reference.labels, labels, plot=plots) if reference.labels else None
    confidence = (
        confidence_drift(reference.confidence, scores, plot=plots) if reference.confidence else None
    )
    answers = [(n, a) for n, a in (("labels", label_shift), ("confidence", confidence)) if a]
    inputs = sum(len(record.features) for record in records)
    levels = [f.level for f in features] + [a.level for _, a in answers]
    flagged = [f.name for f in features if f.flag] + [n for n, a in answers if a.flag]
    verdict = verdict_of(inputs, flagged, levels)
    return DriftReport(
        model=model,
        version=version,
        other_versions=other_versions or {},
        generated_at=now,
        since=since,
        first_record=records[0].time,
        last_record=records[-1].time,
        reference_data=reference.data,
        reference_examples=reference.examples,
        records=len(records),
        inputs=inputs,
        features=features,
        missing_features=[name for name in reference.features if not values[name]],
        labels=label_shift,
        confidence=confidence,
        verdict=verdict,
        flagged=flagged,
    )
