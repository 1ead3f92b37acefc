"""The container function's torch runtime answers as the zip function's onnxruntime does.

For each registry model, the same real tiny artifact (trained once per session from the real
data) is served twice through the real Lambda handler with payload 2.0 events: once with
onnxruntime (the graph) and once with MODELFN_RUNTIME=torch (the eager module rebuilt from the
safetensors weights). Every friendly and OIP answer must agree within 1e-4.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mangum import Mangum

from functions.app import create_app
from functions.settings import FunctionSettings
from functions.torch_session import TensorName, create_torch_session
from modelfn.artifact import WEIGHTS_FILE, IntegrityError, read_manifest
from modelfn.registry import REPO_ROOT
from modelfn.store import LocalStore, publish_artifact
from tests.functions.conftest import Reply, call, encode_image, handler_for, random_pixels

TOLERANCE = 1e-4  # absolute, and relative for figures far from 1 (perplexity, summed log-probs)
ARTIFACTS = {
    "cifar10-cnn": "cifar_artifact",
    "ptb-lstm": "ptb_artifact",
    "imdb-sentiment": "imdb_artifact",
}
REVIEWS = [
    "A wonderful film: the acting is superb and the story moved me to tears.",
    "Dull, predictable and far too long. I wanted my two hours back.",
    "not bad, not great",
]
SENTENCES = [
    "the company said it expects earnings to rise",
    "mr. smith was n't available for comment",
]


def text_tensor(texts: list[str]) -> dict[str, Any]:
    return {"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}


def requests_for(model: str) -> list[tuple[str, dict[str, Any]]]:
    """(route, body) pairs that exercise every task's pre- and post-processing and both routes.

    OIP requests carry an id: without one the server makes a fresh uuid per answer."""
    predict, infer = f"/models/{model}/predict", f"/v2/models/{model}/infer"
    if model == "cifar10-cnn":
        pixels = random_pixels(4, seed=7)
        pngs = [encode_image(p) for p in pixels]
        batch = np.random.default_rng(3).normal(size=(3, 3, 32, 32)).astype(np.float32)
        tensor = {
            "name": "input",
            "shape": [3, 3, 32, 32],
            "datatype": "FP32",
            "data": batch.ravel().tolist(),
        }
        return [
            (predict, {"inputs": pngs, "parameters": {"top_k": 10}}),
            (predict, {"inputs": [pixels[0].tolist()]}),
            (infer, {"id": "cifar", "inputs": [tensor]}),
        ]
    if model == "imdb-sentiment":
        return [
            (predict, {"inputs": REVIEWS, "parameters": {"top_k": 2}}),
            (infer, {"id": "imdb", "inputs": [text_tensor(REVIEWS)]}),
        ]
    return [
        (predict, {"inputs": SENTENCES, "parameters": {"mode": "next", "top_k": 5}}),
        (predict, {"inputs": SENTENCES, "parameters": {"mode": "score"}}),
        (
            predict,
            {
                "inputs": SENTENCES[:1],
                "parameters": {"mode": "generate", "seed": 3, "max_tokens": 6},
            },
        ),
        (
            infer,
            {"id": "score", "inputs": [text_tensor(SENTENCES)], "parameters": {"mode": "score"}},
        ),
        (infer, {"id": "next", "inputs": [text_tensor(SENTENCES)], "parameters": {"top_k": 3}}),
    ]


def assert_same_answer(onnx: Any, torch: Any, where: str = "body") -> None:
    """Equal JSON, floats within TOLERANCE (absolute or relative, whichever is looser)."""
    if isinstance(onnx, float) or isinstance(torch, float):
        assert isinstance(onnx, int | float) and isinstance(torch, int | float), where
        assert math.isclose(onnx, torch, rel_tol=TOLERANCE, abs_tol=TOLERANCE), (
            f"{where}: {onnx} != {torch}"
        )
    elif isinstance(onnx, dict):
        assert isinstance(torch, dict) and onnx.keys() == torch.keys(), (
            f"{where}: {onnx} != {torch}"
        )
        for key in onnx:
            assert_same_answer(onnx[key], torch[key], f"{where}.{key}")
    elif isinstance(onnx, list):
        assert isinstance(torch, list) and len(onnx) == len(torch), f"{where}: {onnx} != {torch}"
        for i, (a, b) in enumerate(zip(onnx, torch, strict=True)):
            assert_same_answer(a, b, f"{where}[{i}]")
    else:
        assert onnx == torch, f"{where}: {onnx!r} != {torch!r}"


@pytest.fixture(scope="module", params=list(ARTIFACTS))
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Mangum, Mangum]:
    """(model, the onnxruntime function's handler, the torch function's handler) on one artifact."""
    model: str = request.param
    folder: Path = request.getfixturevalue(ARTIFACTS[model])
    root = tmp_path_factory.mktemp(f"{model}-runtimes")
    onnx = handler_for(folder, root / "onnx")
    torch = handler_for(folder, root / "torch", runtime="torch")
    return model, onnx, torch


def test_torch_answers_every_request_as_onnxruntime_does(
    served: tuple[str, Mangum, Mangum],
) -> None:
    model, onnx, torch = served
    for path, body in requests_for(model):
        want, got = call(onnx, "POST", path, body), call(torch, "POST", path, body)
        assert (want.status, got.status) == (200, 200), (path, want.body[:300], got.body[:300])
        assert_same_answer(want.json(), got.json(), where=f"{path} {body.get('parameters', {})}")


def test_the_comparison_notices_a_different_answer(served: tuple[str, Mangum, Mangum]) -> None:
    # The check above can fail: a probability off by 1e-3 is refused, a label change too.
    model, onnx, _ = served
    path, body = requests_for(model)[0]
    answer = call(onnx, "POST", path, body).json()
    first = answer["outputs"][0]
    nudged = {**answer, "outputs": [{**first, **nudge(first)}, *answer["outputs"][1:]]}
    with pytest.raises(AssertionError):
        assert_same_answer(answer, nudged)


def nudge(output: dict[str, Any]) -> dict[str, Any]:
    """One number of a friendly output moved by 1e-3."""
    for key, value in output.items():
        if isinstance(value, float):
            return {key: value + 1e-3}
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return {key: [{**value[0], **nudge(value[0])}, *value[1:]]}
        if isinstance(value, list) and value and isinstance(value[0], float):
            return {key: [value[0] + 1e-3, *value[1:]]}
    raise AssertionError(f"no number to nudge in {output}")


def test_metadata_names_the_engine_that_answers(served: tuple[str, Mangum, Mangum]) -> None:
    model, onnx, torch = served
    want, got = (
        call(onnx, "GET", f"/v2/models/{model}").json(),
        call(torch, "GET", f"/v2/models/{model}").json(),
    )
    assert (want.pop("platform"), got.pop("platform")) == ("onnxruntime", "pytorch")
    assert want == got  # the same version and OIP signature


def test_the_session_reads_like_an_onnxruntime_session(cifar_artifact: Path) -> None:
    manifest = read_manifest(cifar_artifact)
    session = create_torch_session(cifar_artifact, manifest)
    assert session.get_inputs() == [TensorName(t.name) for t in manifest.inputs]
    assert session.get_outputs() == [TensorName(t.name) for t in manifest.outputs]
    batch = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    readonly = np.frombuffer(batch.tobytes(), dtype=np.float32).reshape(
        batch.shape
    )  # as binary data arrives
    (logits,) = session.run(None, {manifest.inputs[0].name: readonly})
    assert logits.shape == (2, 10) and logits.dtype == np.float32
    (again,) = session.run([manifest.outputs[0].name], {manifest.inputs[0].name: batch})
    np.testing.assert_array_equal(logits, again)
    with pytest.raises(ValueError, match="inputs missing"):
        session.run(None, {})


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # same size, one bit of the last weight
    path.write_bytes(bytes(data))


def test_weights_changed_after_the_fetch_are_refused(cifar_artifact: Path, tmp_path: Path) -> None:
    # The fetch verified the folder; the session hashes the very bytes it parses, so a file
    # changed in between (the cache in /tmp) is still refused.
    folder = Path(shutil.copytree(cifar_artifact, tmp_path / "cache"))
    manifest = read_manifest(folder)
    flip_last_byte(folder / WEIGHTS_FILE)
    with pytest.raises(IntegrityError, match=r"model\.safetensors: bytes do not match"):
        create_torch_session(folder, manifest)


def test_a_tampered_safetensors_file_is_not_served(cifar_artifact: Path, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    manifest = publish_artifact(store, cifar_artifact)
    flip_last_byte(store.root / manifest.name / manifest.version / WEIGHTS_FILE)
    torch = handler_for_store(store, tmp_path, manifest.name)
    reply: Reply = call(
        torch,
        "POST",
        f"/models/{manifest.name}/predict",
        {"inputs": [encode_image(random_pixels(1)[0])]},
    )
    assert reply.status == 503
    assert "integrity check" in reply.json()["error"]
    assert "Retry-After" in {k.title() for k in reply.headers}


def handler_for_store(store: LocalStore, root: Path, model: str) -> Mangum:
    """A torch function's handler on what `store` holds now (handler_for publishes first)."""
    settings = FunctionSettings(
        model=model, store_uri=str(store.root), cache_dir=root / "cache", runtime="torch"
    )
    return Mangum(create_app(settings), lifespan="off")


def test_the_zip_function_never_imports_torch(tmp_path: Path) -> None:
    """Lambda's init imports the handler; with the default runtime torch stays out of the process."""
    code = "import sys, functions.handler; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    env = {
        **os.environ,
        "MODELFN_MODEL": "cifar10-cnn",
        "MODELFN_STORE_URI": str(tmp_path / "empty"),
    }
    env.pop("MODELFN_RUNTIME", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
