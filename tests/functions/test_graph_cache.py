"""The optimised-graph cache in /tmp: reused on the next init, refused when its bytes changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from functions import onnx_session
from functions.model_loader import load_model
from functions.settings import FunctionSettings
from modelfn.artifact import ONNX_FILE
from tests.functions.conftest import TinyModel, random_pixels


def cached_graph(settings: FunctionSettings, tiny: TinyModel) -> Path:
    entry = tiny.manifest.files[ONNX_FILE]
    return onnx_session.cached_graph_path(settings.cache_dir, entry.sha256, ort.__version__)


def spy_cache_reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per session built, whether the cached graph was used."""
    hits: list[bool] = []
    real = onnx_session.read_cached_graph

    def spy(path: Path) -> bytes | None:
        data = real(path)
        hits.append(data is not None)
        return data

    monkeypatch.setattr(onnx_session, "read_cached_graph", spy)
    return hits


def answers(settings: FunctionSettings) -> np.ndarray:
    model = load_model(settings)
    batch = model.task.predict(model.run, [random_pixels(1)[0].tolist()], {"top_k": 10})
    return np.array([[s.score for s in sorted(c.top_k, key=lambda s: s.label)] for c in batch])


def test_the_second_init_loads_the_optimised_graph_from_the_cache(
    published: TinyModel, settings: FunctionSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    hits = spy_cache_reads(monkeypatch)
    first = answers(settings)
    path = cached_graph(settings, published)
    assert path.is_file() and path.with_suffix(".sha256").is_file()
    second = answers(settings)
    assert hits == [False, True]
    np.testing.assert_allclose(second, first, rtol=1e-6)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "drop the sha256 record"])
def test_a_damaged_cache_file_is_refused_and_rebuilt_from_the_verified_graph(
    published: TinyModel,
    settings: FunctionSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    expected = answers(settings)
    path = cached_graph(settings, published)
    good = path.read_bytes()
    if damage == "flip a byte":
        path.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    elif damage == "truncate":
        path.write_bytes(good[: len(good) // 2])
    else:
        path.with_suffix(".sha256").unlink()
    hits = spy_cache_reads(monkeypatch)
    np.testing.assert_allclose(answers(settings), expected, rtol=1e-6)
    assert hits == [False]  # refused: the session was built from the artifact's own graph
    if damage != "drop the sha256 record":
        assert "optimised graph cache refused" in caplog.text
    assert path.read_bytes() == good  # and the cache holds a good copy again
    assert answers(settings).shape == expected.shape and hits == [False, True]


def test_without_a_cache_dir_nothing_is_written(published: TinyModel, tmp_path: Path) -> None:
    graph = published.folder / ONNX_FILE
    session = onnx_session.create_session(graph, published.manifest.files[ONNX_FILE])
    assert [o.name for o in session.get_outputs()] == [t.name for t in published.manifest.outputs]
    assert not any(tmp_path.rglob(f"*{onnx_session.GRAPH_CACHE}*"))
