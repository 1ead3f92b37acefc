"""A drift report as data (`DriftReport`, written as drift.json) and as a page (drift.md).

tools/drift/compare.py fills it from a version's reference statistics and its captured records;
`drift_files` turns it into the files `modelfn drift` writes: drift.json, drift.md and one PNG
per feature (and for the labels and the confidence) beside them.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from modelfn.input_features import Kind
from tools.drift.plots import shares_png
from tools.drift.statistics import MIN_INPUTS, PSI_FLAG, PSI_MODERATE, Level

DRIFT_JSON, DRIFT_MD = "drift.json", "drift.md"
Verdict = Literal["stable", "moderate", "drift", "too few records"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Histogram(_Strict):
    """Reference and captured counts over the same bins, named for people ("< 12.5", "[12.5,
    40)", "cat"), the bins PSI was computed over."""

    bins: list[str]
    reference: list[int]
    captured: list[int]


class FeatureDrift(_Strict):
    name: str
    kind: Kind
    reference_count: int
    captured_count: int
    reference_mean: float
    captured_mean: float
    psi: float
    level: Level = Field(description="The PSI's band: stable, moderate or drift.")
    flag: bool = Field(description="level is drift and enough inputs were captured to say so.")
    ks: float | None = Field(
        default=None,
        description="Continuous features: the two-sample Kolmogorov-Smirnov D against the "
        "reference's CDF rebuilt from its percentiles (to about 0.01).",
    )
    p_value: float | None = Field(
        default=None, description="KS's asymptotic p-value, n = captured * reference / (sum)."
    )
    histogram: Histogram
    plot: str | None = None


class AnswerDrift(_Strict):
    """A classifier's answers: its predicted labels, or its top score's histogram."""

    reference_count: int
    captured_count: int
    psi: float
    level: Level
    flag: bool
    total_variation: float | None = Field(
        default=None, description="Labels: half the L1 distance of the two label shares (0 to 1)."
    )
    histogram: Histogram
    plot: str | None = None


class Thresholds(_Strict):
    psi_flag: float = PSI_FLAG
    psi_moderate: float = PSI_MODERATE
    min_inputs: int = MIN_INPUTS


class DriftReport(_Strict):
    model: str
    version: str = Field(description="The version whose records are compared with its reference.")
    other_versions: dict[str, int] = Field(
        default_factory=dict,
        description="Versions also captured in the window, not compared: version -> records.",
    )
    generated_at: datetime
    since: datetime | None = Field(description="Records at or after this time; None: all.")
    first_record: datetime
    last_record: datetime
    reference_data: str = Field(description="What the reference statistics were measured on.")
    reference_examples: int
    records: int = Field(description="Captured requests compared.")
    inputs: int = Field(description="Inputs in them (a request may carry several).")
    thresholds: Thresholds = Thresholds()
    features: list[FeatureDrift]
    missing_features: list[str] = Field(
        default_factory=list,
        description="Reference features no captured input carries (records written by other code).",
    )
    labels: AnswerDrift | None = None
    confidence: AnswerDrift | None = None
    verdict: Verdict
    flagged: list[str] = Field(
        description="What is above the PSI threshold: features, labels, confidence."
    )

    def answers(self) -> list[tuple[str, AnswerDrift]]:
        """("labels", ...) and ("confidence", ...), those the report has."""
        return [(n, a) for n, a in (("labels", self.labels), ("confidence", self.confidence)) if a]


# --- drift.md ------------------------------------------------------------------------------------

_VERDICT = {
    "stable": "stable: no PSI reaches {moderate}",
    "moderate": "moderate: {names} between {moderate} and {flag}; look at their plots",
    "drift": "**drift**: {names} above PSI {flag}",
    "too few records": "too few records to judge ({inputs} inputs, fewer than {min_inputs}); "
    "the figures below are noisy, nothing is flagged",
}


def _number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return ""
    if value != 0 and abs(value) < 10 ** (-digits):
        return f"{value:.1e}"
    return f"{value:.{digits}f}" if math.isfinite(value) else str(value)


def _level(level: Level, flag: bool) -> str:
    return f"**{level}**" if flag else level


def markdown(report: DriftReport) -> str:
    """drift.md: the verdict, a row per feature, the answers, how to read it, the plots."""
    # A PSI past the flag on too few of its own values to flag it still deserves a look.
    looked = [(f.name, f.level, f.flag) for f in report.features]
    looked += [(n, a.level, a.flag) for n, a in report.answers()]
    moderate = [name for name, lvl, flag in looked if lvl != "stable" and not flag]
    names = ", ".join(report.flagged if report.verdict == "drift" else moderate)
    verdict = _VERDICT[report.verdict].format(
        names=names,
        moderate=PSI_MODERATE,
        flag=PSI_FLAG,
        inputs=report.inputs,
        min_inputs=report.thresholds.min_inputs,
    )
    since = f"{report.since:%Y-%m-%d %H:%M} UTC" if report.since else "the first record"
    lines = [
        f"# Drift report: {report.model} {report.version}",
        "",
        f"Verdict: {verdict}.",
        "",
        (
            f"- Captured: {report.inputs} inputs in {report.records} requests, "
            f"{report.first_record:%Y-%m-%d %H:%M} to {report.last_record:%Y-%m-%d %H:%M} UTC "
            f"(since {since})."
        ),
        f"- Reference: {report.reference_data} ({report.reference_examples} inputs).",
    ]
    if report.other_versions:
        others = ", ".join(f"{v} ({n} records)" for v, n in report.other_versions.items())
        lines.append(f"- Also captured, not compared here (use --version): {others}.")
    if report.missing_features:
        lines.append(
            f"- No captured input carries {', '.join(report.missing_features)}: the records were "
            "written by code that measures other features than the reference's."
        )
    lines += [
        "",
        "| feature | kind | reference mean | captured mean | PSI | level | KS D | KS p-value |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {f.name} | {f.kind} | {f.reference_mean:.4g} | {f.captured_mean:.4g} "
        f"| {_number(f.psi)} | {_level(f.level, f.flag)} | {_number(f.ks)} | {_number(f.p_value)} |"
        for f in report.features
    ]
    answers = report.answers()
    if answers:
        lines += ["", "## Answers", "", "| | PSI | level | total variation |", "|---|---|---|---|"]
        lines += [
            f"| {name} | {_number(a.psi)} | {_level(a.level, a.flag)} | {_number(a.total_variation)} |"
            for name, a in answers
        ]
    lines += [
        "",
        "## How to read it",
        "",
        (
            f"- PSI (population stability index) compares the share of inputs in each of the "
            f"reference's bins (its deciles, plus below its minimum and above its maximum): below "
            f"{PSI_MODERATE} the population is stable, {PSI_MODERATE} to {PSI_FLAG} it moved "
            f"moderately, above {PSI_FLAG} it shifted and is flagged."
        ),
        (
            "- KS D is the largest gap between the reference's and the captured cumulative "
            "distributions (continuous features only); its p-value says whether they differ at all, "
            "not by how much: with many records a harmless shift has a tiny p-value."
        ),
        (
            "- Labels: a classifier predicting other classes than on its reference data; confidence: "
            "its top score's histogram moving (lower scores: inputs it finds unfamiliar)."
        ),
        f"- Fewer than {report.thresholds.min_inputs} captured inputs: figures only, no flag.",
    ]
    plots = [f.plot for f in report.features if f.plot] + [a.plot for _, a in answers if a.plot]
    if plots:
        lines += ["", "## Reference and captured, bin by bin", ""]
        lines += [f"![{plot}]({plot})" for plot in plots]
    return "\n".join(lines) + "\n"


def drift_files(report: DriftReport) -> dict[str, bytes]:
    """File name -> bytes: drift.json, drift.md and the PNG each feature or answer names."""
    files = {
        DRIFT_JSON: (report.model_dump_json(indent=2) + "\n").encode(),
        DRIFT_MD: markdown(report).encode(),
    }
    drawn: list[tuple[str, FeatureDrift | AnswerDrift]] = [(f.name, f) for f in report.features]
    for name, shown in drawn + list(report.answers()):
        if shown.plot:
            title = f"{report.model}: {name} (PSI {shown.psi:.3f}, {shown.level})"
            bins = shown.histogram
            files[shown.plot] = shares_png(title, bins.bins, bins.reference, bins.captured)
    return files
