"""Compare text-classifier configurations by k-fold cross-validation on the training data only.

    python -m training.cross_validate imdb-sentiment '{"model": {"dim": 16, "pooling": "mean"}}'

Each argument after the model name is one candidate: a JSON object whose `model` table
overrides the preset's model arguments and whose other keys override the preset's
hyper-parameters. Every candidate is trained on the same folds (`held_out_splits`, text i held
out in fold i % k) for the preset's `epochs`, and the mean held-out accuracy after each epoch is
printed with the best epoch count. The test split is never read: this is how docs/training.md
chose the published architecture.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from modelfn.artifact import TextPreprocessing
from modelfn.registry import load_registry
from training.config import (
    MODEL_PREFIX,
    TextClassifierConfig,
    load_preset,
    with_overrides,
)
from training.errors import TrainingError
from training.loop import seed_everything, set_threads
from training.recipe import quiet_log, recipe_for
from training.text_classification import held_out_curve, held_out_splits


def held_out_scorer(
    name: str, *, data_dir: str | None = None, seed: int = 0
) -> Callable[..., np.ndarray]:
    """`score(cfg, folds=None, after_fold=None)`: the mean held-out accuracy curve of a config.

    The data is read once; each call trains every fold of `cfg` (or of `folds` folds) from
    `seed`. `after_fold(k, mean so far)` runs after each fold (a tuner prunes there).
    """
    recipe = recipe_for(name)
    data = recipe.load_data(data_dir)
    texts = data.train.texts + data.valid.texts
    labels = np.concatenate([data.train.labels, data.valid.labels])
    pre = recipe.dataset.preprocessing(data)
    if not isinstance(pre, TextPreprocessing):
        raise TrainingError(
            f"cross-validation compares text classifiers; {name} is {recipe.entry.task}"
        )

    def score(
        cfg: TextClassifierConfig,
        folds: int | None = None,
        after_fold: Callable[[int, np.ndarray], None] | None = None,
    ) -> np.ndarray:
        build = recipe.builder(cfg, where=f"{name} [model]", log=quiet_log)
        k = cfg.selection_folds if folds is None else folds
        return held_out_curve(
            build,
            texts,
            labels,
            held_out_splits(len(data.train), len(texts), k),
            pre,
            cfg,
            len(data.label_names),
            lambda _: seed_everything(seed),
            after_fold=after_fold,
        )

    return score


def candidate_config(
    name: str, candidate: dict[str, Any], preset: str = "full"
) -> TextClassifierConfig:
    """The preset with a candidate's overrides: its `model` table and any other keys."""
    entry = load_registry().get(name)
    base = load_preset(entry.training_config_path(), preset, TextClassifierConfig)
    values = {k: v for k, v in candidate.items() if k != "model"}
    values |= {f"{MODEL_PREFIX}{k}": v for k, v in candidate.get("model", {}).items()}
    return with_overrides(base, values, where=f"candidate {json.dumps(candidate)}")


def cross_validate(
    name: str, candidate: dict[str, Any], *, preset: str = "full", folds: int = 5, seed: int = 0
) -> list[float]:
    """Mean held-out accuracy after each epoch over `folds` folds of training + validation data."""
    score = held_out_scorer(name, seed=seed)
    return [float(a) for a in score(candidate_config(name, candidate, preset), folds)]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    threads = set_threads()
    score = held_out_scorer(argv[0])  # the data, read once for every candidate
    for raw in argv[1:]:
        started = time.perf_counter()
        curve = [float(a) for a in score(candidate_config(argv[0], json.loads(raw)), 5)]
        best = int(np.argmax(curve))
        print(
            f"{raw}: held-out accuracy by epoch {' '.join(f'{a:.2%}' for a in curve)}; best "
            f"{curve[best]:.2%} after {best + 1} epochs ({time.perf_counter() - started:.0f} s, "
            f"{threads} threads)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
