"""Real text artifacts for tests: the `tiny` presets trained on the real data, once per session.

Training a tiny PTB LSTM and a tiny IMDB classifier takes seconds each on two cores; a session
fixture (tests/conftest.py) shares them, so every test of the text functions serves a real
graph, a real vocabulary and real preprocessing, exactly as `modelfn train` writes them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelfn.registry import REPO_ROOT

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
TINY_DATA = {
    "ptb-lstm": "ptb/ptb.test.txt",
    "imdb-sentiment": "imdb/test.csv",
    "cifar10-cnn": "cifar-10-batches-py/test_batch",
}


def train_tiny(name: str, out_dir: Path) -> Path:
    """Train `name` with its `tiny` preset into `out_dir`; skip the test without the data."""
    needed = SHARED_DATA / TINY_DATA[name]
    if not needed.is_file():
        pytest.skip(f"{needed} not found (expected <repo>/../shared/data); needed to train {name}")
    from training.pipeline import train_model

    return train_model(
        name, data_dir=SHARED_DATA, preset="tiny", out_dir=out_dir, log=lambda _: None
    )
