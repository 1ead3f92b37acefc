"""The evaluation report of a run: report.json, report.md and PNG plots, files of the version.

Written beside the manifest (and listed in it, with their sha256) by the pipeline, from the
metrics and the task's `Evaluation`: learning curves for every model; the confusion matrix,
per-class precision/recall/F1 and the most confident mistakes (image thumbnails, review
snippets) for classifiers; perplexity by sentence length for the language model. Plots are
matplotlib on its file-only backend, so the report builds on a machine without a screen.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from training.figures import png, use_file_backend
from training.trained_model import Evaluation

REPORT_JSON, REPORT_MD = "report.json", "report.md"
CURVES_PNG, CONFUSION_PNG, MISTAKES_PNG, LENGTH_PNG = (
    "learning_curves.png",
    "confusion_matrix.png",
    "mistakes.png",
    "perplexity_by_length.png",
)


def report_files(
    name: str, labels: list[str], metrics: dict[str, float], evaluation: Evaluation
) -> dict[str, bytes]:
    """File name -> bytes of every report file of one run."""
    use_file_backend()
    files: dict[str, bytes] = {}
    if evaluation.history:
        files[CURVES_PNG] = _learning_curves(name, evaluation.history)
    if evaluation.classes is not None:
        files[CONFUSION_PNG] = _confusion(evaluation.classes.confusion, labels)
    if any(m.image is not None for m in evaluation.mistakes):
        files[MISTAKES_PNG] = _mistake_thumbnails(evaluation)
    if evaluation.by_length:
        files[LENGTH_PNG] = _by_length(evaluation.by_length)
    summary = _summary(name, labels, metrics, evaluation)
    files[REPORT_JSON] = (json.dumps(summary, indent=2) + "\n").encode()
    files[REPORT_MD] = _markdown(summary, sorted(f for f in files if f.endswith(".png"))).encode()
    return files


def _summary(
    name: str, labels: list[str], metrics: dict[str, float], evaluation: Evaluation
) -> dict[str, Any]:
    summary: dict[str, Any] = {"model": name, "metrics": metrics, "history": evaluation.history}
    classes = evaluation.classes
    if classes is not None:
        summary["per_class"] = [
            {
                "label": label,
                "precision": float(classes.precision[i]),
                "recall": float(classes.recall[i]),
                "f1": float(classes.f1[i]),
                "support": int(classes.support[i]),
            }
            for i, label in enumerate(labels)
        ]
        summary["confusion_matrix"] = {
            "labels": labels,
            "rows_true_columns_predicted": classes.confusion.tolist(),
        }
    if evaluation.mistakes:
        summary["most_confident_mistakes"] = [
            {
                "test_index": m.index,
                "true": m.true,
                "predicted": m.predicted,
                "confidence": m.confidence,
                **({"text": m.text} if m.text is not None else {}),
            }
            for m in evaluation.mistakes
        ]
    if evaluation.by_length:
        summary["perplexity_by_sentence_length"] = [
            {"words": words, "sentences": n, "tokens": tokens, "perplexity": ppl}
            for words, n, tokens, ppl in evaluation.by_length
        ]
    return summary


def _markdown(summary: dict[str, Any], plots: list[str]) -> str:
    lines = [f"# Evaluation report: {summary['model']}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.6g} |" for k, v in summary["metrics"].items()]
    if summary["history"]:
        keys = list(dict.fromkeys(k for row in summary["history"] for k in row))
        lines += ["", "## By epoch", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += [
            "| " + " | ".join(f"{row[k]:.4g}" if k in row else "" for k in keys) + " |"
            for row in summary["history"]
        ]
    if "per_class" in summary:
        lines += [
            "",
            "## Per class (test split)",
            "",
            "| label | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {c['label']} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['support']} |"
            for c in summary["per_class"]
        ]
    if "most_confident_mistakes" in summary:
        lines += [
            "",
            "## Most confident mistakes",
            "",
            "| test # | true | predicted | confidence | text |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {m['test_index']} | {m['true']} | {m['predicted']} | {m['confidence']:.3f} | {m.get('text', '').replace('|', '/')} |"
            for m in summary["most_confident_mistakes"]
        ]
    if "perplexity_by_sentence_length" in summary:
        lines += [
            "",
            "## Perplexity by sentence length (test split)",
            "",
            "| words | sentences | tokens | perplexity |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['words']} | {r['sentences']} | {r['tokens']} | {r['perplexity']:.2f} |"
            for r in summary["perplexity_by_sentence_length"]
        ]
    lines += ["", *(f"![{p}]({p})" for p in plots), ""]
    return "\n".join(lines)


# --- plots ---------------------------------------------------------------------------------------


def _learning_curves(name: str, history: list[dict[str, float]]) -> bytes:
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    # Every series any epoch has (a refit may cover fewer epochs than the selection did).
    series = [
        k
        for k in dict.fromkeys(k for row in history for k in row)
        if k not in ("epoch", "seconds", "lr")
    ]
    panels = [
        (keys, title)
        for keys, title in (
            ([k for k in series if k.endswith("loss")], "loss (nats)"),
            ([k for k in series if not k.endswith("loss")], "metric"),
        )
        if keys
    ]
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, (keys, title) in zip(axes[0], panels, strict=True):
        for key in keys:
            points = [
                (e, row[key])
                for e, row in zip(epochs, history, strict=True)
                if key in row and math.isfinite(row[key])
            ]
            ax.plot(*zip(*points, strict=True), marker="o", label=key)
        ax.set_xlabel("epoch")
        ax.set_title(f"{name}: {title}")
        ax.legend()
        ax.grid(alpha=0.3)
    return png(figure)


def _confusion(confusion: np.ndarray, labels: list[str]) -> bytes:
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(1 + 0.6 * len(labels), 1 + 0.6 * len(labels)))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return png(figure)


def _mistake_thumbnails(evaluation: Evaluation) -> bytes:
    import matplotlib.pyplot as plt

    shown = [m for m in evaluation.mistakes if m.image is not None]
    columns = min(6, len(shown))
    rows = math.ceil(len(shown) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.7 * columns, 1.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, mistake in zip(axes.ravel(), shown):
        assert mistake.image is not None
        ax.imshow(mistake.image.transpose(1, 2, 0))
        ax.set_title(
            f"#{mistake.index} {mistake.true}\n-> {mistake.predicted} {mistake.confidence:.2f}",
            fontsize=7,
        )
    return png(figure)


def _by_length(rows: list[tuple[str, int, int, float]]) -> bytes:
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar([r[0] for r in rows], [r[3] for r in rows])
    ax.set_xlabel("sentence length (words)")
    ax.set_ylabel("perplexity")
    ax.grid(alpha=0.3, axis="y")
    return png(figure)
