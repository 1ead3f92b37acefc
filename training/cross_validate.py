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

import dataclasses
import json
import sys
import time
from typing import Any

import numpy as np

from modelfn.registry import load_registry
from training.config import TextClassifierConfig, build_dataclass, load_preset
from training.data.location import data_root_for
from training.loop import seed_everything, set_threads
from training.pipeline import ARCHITECTURES, DATASETS
from training.text_classification import held_out_curve, held_out_splits


def cross_validate(
    name: str, candidate: dict[str, Any], *, preset: str = "full", folds: int = 5, seed: int = 0
) -> list[float]:
    """Mean held-out accuracy after each epoch over `folds` folds of training + validation data."""
    entry = load_registry().get(name)
    cfg = load_preset(entry.training_config_path(), preset, TextClassifierConfig)
    overrides = {k: v for k, v in candidate.items() if k != "model"}
    cfg = cfg.model_copy(update={**overrides, "model": {**cfg.model, **candidate.get("model", {})}})
    arch = ARCHITECTURES[entry.architecture]
    config = build_dataclass(arch.config, dict(cfg.model), where=f"candidate {candidate}")
    data = DATASETS[entry.dataset].load(data_root_for(None, entry.data_subdir) / entry.data_subdir)
    texts = data.train.texts + data.valid.texts
    labels = np.concatenate([data.train.labels, data.valid.labels])
    pre = DATASETS[entry.dataset].preprocessing(data)
    return [
        float(a)
        for a in held_out_curve(
            lambda **derived: arch.build(dataclasses.replace(config, **derived)),
            texts,
            labels,
            held_out_splits(len(data.train), len(texts), folds),
            pre,
            cfg,
            len(data.label_names),
            lambda _: seed_everything(seed),
        )
    ]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    threads = set_threads()
    for raw in argv[1:]:
        started = time.perf_counter()
        curve = cross_validate(argv[0], json.loads(raw))
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
