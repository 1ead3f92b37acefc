"""docs/import.md's walk-throughs, run as written: each `python -m examples.walkthrough...` and
`modelfn import` / `modelfn evaluate` line of the section is read from the document and run (in
a temporary folder, with shorter training), then the four imported models are served by the
local deployment and asked as the section asks them: the ResNet-18 and the BERT classifier on
the predict route, the ONNX scorer over OIP, the encoder with OpenAI's own client.

So the document cannot drift from what the commands do: a renamed flag, a changed script or a
model that stops importing fails here.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import io
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from modelfn.registry import REPO_ROOT, load_registry
from modelfn.store import LocalStore
from tools.cli import main
from tools.local.deployment import LocalDeployment, local_deployment

DOC = REPO_ROOT / "docs" / "import.md"
DATA = REPO_ROOT.parent / "shared" / "data"
WORK = "build/walkthrough"  # the folder the document works in
TRAINING_SECONDS = "3"  # a minute in the document; what is tested here is the path, not the figure
MODELS = ["my-resnet", "imdb-bert", "imdb-encoder", "scorer"]


def walkthrough_commands() -> list[list[str]]:
    """The section's script and modelfn commands, in order, as argument lists."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## Walk-throughs, offline") : text.index("## Evaluate and export")]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith((".venv/bin/python -m examples.", ".venv/bin/modelfn import",
                                ".venv/bin/modelfn evaluate")):  # fmt: skip
                commands.append(shlex.split(line))
    return commands


def in_folder(argv: list[str], work: Path) -> list[str]:
    """`argv` with the document's folder moved to `work` (globs expanded as the shell does) and
    training shortened."""
    out: list[str] = []
    for arg in argv:
        arg = arg.replace(WORK, str(work))
        out.extend(sorted(glob.glob(arg)) if "*" in arg else [arg])
    if "--seconds" in out:
        out[out.index("--seconds") + 1] = TRAINING_SECONDS
    return out


def run_modelfn(argv: list[str]) -> str:
    """`modelfn ARGV` in this process (as tests/tools do); returns what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(argv)
    assert status == 0, f"modelfn {shlex.join(argv)} exited {status}:\n{printed.getvalue()}"
    return printed.getvalue()


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """(the work folder, modelfn evaluate's report per model) after every command has run."""
    for needed in ("cifar-10-batches-py/test_batch", "imdb/train.csv"):
        if not (DATA / needed).is_file():
            pytest.skip(f"the walk-throughs train on {DATA / needed}, which is absent")
    work = tmp_path_factory.mktemp("walkthrough")
    registry = work / "models.toml"
    shutil.copy(REPO_ROOT / "models.toml", registry)
    patch = pytest.MonkeyPatch()
    patch.setenv("MODELFN_REGISTRY", str(registry))
    commands = walkthrough_commands()
    scripts = [c[2] for c in commands if c[0].endswith("python")]
    assert scripts == [
        "examples.walkthrough.train_resnet18",
        "examples.walkthrough.hf_bert",
        "examples.walkthrough.onnx_file",
    ], commands
    reports: dict[str, str] = {}
    for command in commands:
        argv = in_folder(command, work)
        if argv[0].endswith("python"):
            run = subprocess.run(
                [sys.executable, *argv[1:]],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            assert run.returncode == 0, f"{shlex.join(command)}:\n{run.stderr[-3000:]}"
            continue
        if argv[1] == "import":
            argv += ["--out", str(work / "artifacts")]  # keeps the repository's build/ as it is
        printed = run_modelfn(argv[1:])
        if argv[1] == "evaluate":
            reports[argv[2]] = printed
    yield work, reports
    patch.undo()


@pytest.fixture(scope="module")
def deployment(walked: tuple[Path, dict[str, str]]) -> Iterator[LocalDeployment]:
    work, _ = walked
    with local_deployment(load_registry(), LocalStore(work / "store"), models=MODELS) as running:
        yield running


def test_every_command_of_the_section_ran_and_evaluate_scored_both_classifiers(
    walked: tuple[Path, dict[str, str]],
) -> None:
    work, reports = walked
    assert sorted(reports) == ["imdb-bert", "my-resnet"]
    assert "on 200 images in 10 label folders" in reports["my-resnet"]
    assert "on 560 texts from" in reports["imdb-bert"]
    for report in reports.values():
        assert re.search(r"^  accuracy +[01]\.\d{4} +-$", report, re.MULTILINE), report
    assert sorted(p.name for p in (work / "store").iterdir()) == sorted(MODELS)


def test_the_four_imported_models_answer_through_the_gateway(
    walked: tuple[Path, dict[str, str]], deployment: LocalDeployment
) -> None:
    work, _ = walked
    url = deployment.url
    labels = (work / "labels.txt").read_text(encoding="utf-8").split()
    image = base64.b64encode((work / "test-0.png").read_bytes()).decode()
    reply = httpx.post(f"{url}/models/my-resnet/predict", json={"inputs": [image]}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["outputs"][0]["label"] in labels

    reviews = ["A truly wonderful film, moving and beautifully acted.", "Dull, dull, dull."]
    reply = httpx.post(f"{url}/models/imdb-bert/predict", json={"inputs": reviews}, timeout=60)
    assert reply.status_code == 200, reply.text
    assert {o["label"] for o in reply.json()["outputs"]} <= {"negative", "positive"}

    example = json.loads((work / "example.json").read_text(encoding="utf-8"))
    body = {"inputs": [{"name": "features", "shape": [1, 8], "datatype": "FP32",
                        "data": example["features"]}]}  # fmt: skip
    reply = httpx.post(f"{url}/v2/models/scorer/infer", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    session = ort.InferenceSession(str(work / "scorer.onnx"))
    (want,) = session.run(None, {"features": np.asarray([example["features"]], np.float32)})
    np.testing.assert_allclose(reply.json()["outputs"][0]["data"], want.ravel(), atol=1e-6)

    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/models/imdb-encoder/v1", api_key="unused")
    response = client.embeddings.create(model="imdb-encoder", input=reviews)
    vectors = np.asarray([d.embedding for d in response.data])
    assert vectors.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # --normalize
