"""Each bundle runs in a fresh virtual environment holding only its requirements.txt (from PyPI):
Pillow for images, the pinned tokenizers for a Hugging Face text model, never modelfn or torch.

About 15 s a model for the pip install (pip's cache helps on re-runs); skipped only where PyPI
cannot be reached.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge.bundle import REQUIREMENTS_FILE, RUNNER_FILE, extract_bundle
from edge.export import ExportResult

OFFLINE = (
    "NewConnectionError",
    "Network is unreachable",
    "Temporary failure in name resolution",
    "No route to host",
)


def fresh_venv(folder: Path, where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    python = where / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", str(folder / REQUIREMENTS_FILE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        if any(sign in done.stderr for sign in OFFLINE):
            pytest.skip(f"PyPI not reachable, cannot build the fresh venv: {done.stderr[-300:]}")
        raise AssertionError(f"pip install -r {REQUIREMENTS_FILE} failed: {done.stderr[-2000:]}")
    return python


@pytest.mark.parametrize(
    ("fixture", "argv"),
    [
        ("imdb_bundle", ["a truly wonderful film"]),
        ("ptb_bundle", ["--mode", "generate", "the company said"]),
        ("cifar_bundle", ["@image"]),
        # Hugging Face text models: tokenizers (pinned) joins onnxruntime and numpy.
        ("imported_text_bundle", ["a truly wonderful film"]),
        ("imported_embedder_bundle", ["a truly wonderful film"]),
    ],
)
def test_bundle_runs_with_only_its_requirements(
    fixture: str, argv: list[str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    result: ExportResult = request.getfixturevalue(fixture)
    folder = extract_bundle(result.path, tmp_path / "device")
    python = fresh_venv(folder, tmp_path / "venv")
    for absent in ("torch", "modelfn", "pydantic"):
        probe = subprocess.run(
            [str(python), "-c", f"import {absent}"], cwd=tmp_path, capture_output=True, check=False
        )
        assert probe.returncode != 0, f"{absent} is importable in the fresh venv"
    if argv == ["@image"]:
        image = tmp_path / "image.png"
        image.write_bytes(__import__("base64").b64decode(result.manifest.self_test[0].input))
        argv = [str(image)]
    self_test = subprocess.run(
        [str(python), str(folder / RUNNER_FILE), "--self-test"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert self_test.returncode == 0, self_test.stderr
    done = subprocess.run(
        [str(python), str(folder / RUNNER_FILE), "--json", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert "label" in answer or "generated" in answer or len(answer.get("embedding", [])) == 64
