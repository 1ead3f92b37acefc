"""Tampering (issue 11, item 3): a changed artifact or alias is refused, logged, and not served.

Each case changes one thing in the store a function reads (a weight file, the ONNX graph, the
vocabulary, the manifest, the alias record), then checks the cold start: the load is refused with
a log line that names the file and the reason, predict answers 503 with Retry-After, the ready
routes say not ready, and once the store is repaired the next attempt serves the real model.
The last tests check that nothing on the serving or edge path unpickles.
"""

from __future__ import annotations

import ast
import json
import pickle
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mangum import Mangum

from functions.app import create_app
from functions.model_loader import ModelSlot
from functions.settings import FunctionSettings
from modelfn.artifact import (
    EXAMPLES_FILE,
    MANIFEST_FILE,
    ONNX_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    alias_key,
    file_key,
    read_manifest,
    sha256_file,
)
from modelfn.registry import REPO_ROOT
from modelfn.store import LocalStore, publish_artifact
from tests.functions.conftest import build_tiny_model, call, encode_image, random_pixels
from tests.reliability.conftest import Clock, scaled

RETRY_S = 30.0
INTEGRITY = "the published artifact failed its integrity check"
UNSERVABLE = "the published artifact is not one this function can serve"
MISSING = "no version is published under alias 'latest'"
REVIEWS = ["a wonderful, moving film with a great cast", "dull, predictable and far too long"]
SENTENCES = ["the company said it expects", "the market closed higher"]


@dataclass
class Function:
    """One model's function on a local store that a test may tamper with and repair."""

    folder: Path  # the artifact as built
    store: LocalStore
    settings: FunctionSettings
    clock: Clock
    handler: Any = None

    @property
    def name(self) -> str:
        return self.settings.model

    @property
    def version(self) -> str:
        return self.folder.name

    def stored(self, key: str) -> Path:
        return self.store.root / key

    def init(self) -> None:
        slot = ModelSlot(self.settings, clock=self.clock)
        slot.load()
        self.handler = Mangum(create_app(self.settings, slot), lifespan="off")

    def predict(self) -> Any:
        inputs: dict[str, list[Any]] = {
            "cifar10-cnn": [encode_image(random_pixels(1)[0])],
            "imdb-sentiment": REVIEWS,
            "ptb-lstm": SENTENCES,
        }
        return call(
            self.handler, "POST", f"/models/{self.name}/predict", {"inputs": inputs[self.name]}
        )


def serve(folder: Path, root: Path) -> Function:
    store = LocalStore(root / "store")
    publish_artifact(store, folder)
    settings = FunctionSettings(
        model=read_manifest(folder).name,
        store_uri=str(store.root),
        cache_dir=root / "cache",
        load_retry_s=RETRY_S,
    )
    return Function(folder, store, settings, Clock())


def assert_not_ready(fn: Function, reason: str) -> None:
    reply = fn.predict()
    assert reply.status == 503, reply.body
    assert 1 <= int(reply.headers["retry-after"]) <= RETRY_S
    error = reply.json()["error"]
    assert f"is not loaded: {reason}" in error, error
    for secret in ("Traceback", "sha256", str(fn.store.root), str(fn.settings.cache_dir)):
        assert secret not in error
    ready = call(fn.handler, "GET", f"/v2/models/{fn.name}/ready")
    assert ready.status == 503 and "retry-after" in ready.headers
    assert call(fn.handler, "GET", "/v2/health/ready").status == 503


def assert_serves(fn: Function) -> None:
    reply = fn.predict()
    assert reply.status == 200, reply.body
    assert reply.json()["version"] == fn.version
    ready = call(fn.handler, "GET", f"/v2/models/{fn.name}/ready")
    assert (ready.status, ready.json()) == (200, {"name": fn.name, "ready": True})


# --- the cases --------------------------------------------------------------------------------
# Each takes the function and changes its store; it returns the log text the refusal must show.


def flip_last_byte(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))  # same size, one bit differs


def file_changed(name: str) -> Callable[[Function], str]:
    def tamper(fn: Function) -> str:
        flip_last_byte(fn.stored(file_key(fn.name, fn.version, name)))
        return rf"{name}: sha256 [0-9a-f]{{64}} does not match manifest [0-9a-f]{{64}}; refusing to load"

    return tamper


def manifest_metrics(fn: Function) -> str:
    path = fn.stored(file_key(fn.name, fn.version, MANIFEST_FILE))
    manifest = json.loads(path.read_bytes())
    manifest["metrics"] = {key: 0.999 for key in manifest["metrics"]}
    path.write_text(json.dumps(manifest, indent=2))
    return rf"{MANIFEST_FILE}: sha256 does not match alias 'latest'; refusing to load"


def manifest_sha_and_file(fn: Function) -> str:
    """A new graph and its sha256 in the manifest: consistent, but not what the alias anchors."""
    graph = fn.stored(file_key(fn.name, fn.version, ONNX_FILE))
    flip_last_byte(graph)
    path = fn.stored(file_key(fn.name, fn.version, MANIFEST_FILE))
    manifest = json.loads(path.read_bytes())
    manifest["files"][ONNX_FILE]["sha256"] = sha256_file(graph)
    path.write_text(json.dumps(manifest, indent=2))
    return rf"{MANIFEST_FILE}: sha256 does not match alias 'latest'; refusing to load"


def alias_edit(change: Callable[[dict[str, Any], Function], None]) -> Callable[[Function], None]:
    def edit(fn: Function) -> None:
        path = fn.stored(alias_key(fn.name, "latest"))
        record = json.loads(path.read_bytes())
        change(record, fn)
        path.write_text(json.dumps(record))

    return edit


def alias_to_missing_version(fn: Function) -> str:
    alias_edit(lambda record, _: record.update(version="20200101T000000Z-00000000"))(fn)
    return r"alias 'latest' of '[a-z0-9-]+' points at version 20200101T000000Z-00000000, but .* does not exist"


def alias_to_other_version(fn: Function) -> str:
    """The record names another published version, with the manifest sha256 of this one."""
    other = build_tiny_model(fn.store.root.parent / "other", seed=1)
    publish_artifact(fn.store, other.folder, aliases=("other",))
    alias_edit(lambda record, _: record.update(version=other.manifest.version))(fn)
    return rf"{other.manifest.version}/{MANIFEST_FILE}: sha256 does not match alias 'latest'; refusing to load"


def alias_sha(fn: Function) -> str:
    alias_edit(lambda record, _: record.update(manifest_sha256="0" * 64))(fn)
    return rf"{MANIFEST_FILE}: sha256 does not match alias 'latest'; refusing to load"


def alias_malformed(fn: Function) -> str:
    fn.stored(alias_key(fn.name, "latest")).write_bytes(b'{"model": "cifar10-cnn", "version": ')
    return r"latest\.json is not a valid modelfn alias: 1 validation error for Alias\s+Invalid JSON"


CIFAR_CASES: dict[str, tuple[Callable[[Function], str], str]] = {
    "graph": (file_changed(ONNX_FILE), INTEGRITY),
    "manifest-metrics": (manifest_metrics, INTEGRITY),
    "manifest-sha256-and-file": (manifest_sha_and_file, INTEGRITY),
    "alias-missing-version": (alias_to_missing_version, MISSING),
    "alias-other-version": (alias_to_other_version, INTEGRITY),
    "alias-sha256": (alias_sha, INTEGRITY),
    "alias-malformed-json": (alias_malformed, UNSERVABLE),
}


def snapshot(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


def repair(root: Path, saved: dict[Path, bytes]) -> None:
    """Put the store back as published (what `modelfn alias` or a re-upload would do)."""
    for path in root.rglob("*"):
        if path.is_file() and path not in saved:
            path.unlink()
    for path, data in saved.items():
        path.write_bytes(data)


def check_refused_then_repaired(
    fn: Function, tamper: Callable[[Function], str], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    saved = snapshot(fn.store.root)
    expected = tamper(fn)
    caplog.clear()
    fn.init()
    refusals = [r for r in caplog.records if r.getMessage() == "model load failed"]
    assert len(refusals) == 1, caplog.text
    assert refusals[0].exc_info is not None  # the cause and its trace go to the log, not the client
    assert re.search(expected, caplog.text), f"{expected!r} not in the log:\n{caplog.text}"
    assert not (fn.settings.cache_dir / fn.name / fn.version).exists() or reason == MISSING
    for _ in range(scaled(2, 20)):  # still refused on every later attempt while tampered
        assert_not_ready(fn, reason)
        fn.clock.now += RETRY_S
    repair(fn.store.root, saved)
    assert_serves(fn)


@pytest.fixture
def cifar(tmp_path: Path) -> Function:
    return serve(build_tiny_model(tmp_path / "build").folder, tmp_path)


@pytest.mark.parametrize("case", sorted(CIFAR_CASES))
def test_tampering_is_refused_logged_and_repairable(
    cifar: Function, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    tamper, reason = CIFAR_CASES[case]
    check_refused_then_repaired(cifar, tamper, reason, caplog)


def test_weights_the_zip_function_never_opens_are_not_fetched_but_a_full_fetch_refuses_them(
    cifar: Function, tmp_path: Path
) -> None:
    """The zip function serves the graph and never reads model.safetensors (UNREAD_BY), so
    tampered weights in the store do not stop it; every reader that fetches them (the torch image,
    export-edge, promote) still refuses them."""
    from modelfn.artifact import IntegrityError
    from modelfn.store import fetch_artifact

    file_changed(WEIGHTS_FILE)(cifar)
    cifar.init()
    assert_serves(cifar)
    with pytest.raises(IntegrityError, match=rf"{WEIGHTS_FILE}.*does not match manifest"):
        fetch_artifact(cifar.store, cifar.name, "latest", tmp_path / "full")


@pytest.mark.parametrize("name", [VOCAB_FILE, EXAMPLES_FILE, ONNX_FILE])
def test_a_tampered_text_model_file_is_refused(
    imdb_artifact: Path, tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    check_refused_then_repaired(
        serve(imdb_artifact, tmp_path), file_changed(name), INTEGRITY, caplog
    )


@pytest.mark.parametrize("name", [VOCAB_FILE, MANIFEST_FILE, ONNX_FILE])
def test_a_tampered_cached_file_is_fetched_again_not_served(
    imdb_artifact: Path, tmp_path: Path, name: str
) -> None:
    fn = serve(imdb_artifact, tmp_path)
    fn.init()
    cached = fn.settings.cache_dir / fn.name / fn.version / name
    good = cached.read_bytes()
    if name == MANIFEST_FILE:  # a consistent-looking manifest that the alias does not anchor
        cached.write_bytes(good.replace(b'"metrics": {', b'"metrics": {"tampered": 1.0, ', 1))
    else:
        flip_last_byte(cached)
    fn.init()
    assert_serves(fn)
    assert cached.read_bytes() == good


# --- no pickle, anywhere on the serving or edge path ---------------------------------------------

PICKLING_MODULES = {
    "pickle",
    "_pickle",
    "cPickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
}
SCANNED = ["functions", "edge", "modelfn/store", "modelfn/artifact.py", "architectures/"]


def unpickling_calls(source: str, filename: str = "<source>") -> list[str]:
    """Each import of a pickling module, `torch.load`, and `allow_pickle=True`, as 'file:line what'."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [
                f"{where} import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in PICKLING_MODULES
            ]
        elif (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").split(".")[0] in PICKLING_MODULES
        ):
            found.append(f"{where} from {node.module} import")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "load"
            and ast.unparse(node.value) == "torch"
        ):
            found.append(f"{where} torch.load")
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "torch"
            and any(a.name == "load" for a in node.names)
        ):
            found.append(f"{where} from torch import load")
        elif (
            isinstance(node, ast.keyword)
            and node.arg == "allow_pickle"
            and not (isinstance(node.value, ast.Constant) and node.value.value is False)
        ):
            found.append(f"{where} allow_pickle={ast.unparse(node.value)}")
    return found


def test_the_scan_finds_each_way_to_unpickle() -> None:
    source = (
        "import pickle\nfrom joblib import load\nimport torch\ntorch.load('w.pt')\n"
        "import numpy as np\nnp.load('a.npy', allow_pickle=True)\nfrom torch import load\n"
    )
    assert sorted(hit.split(" ", 1)[1] for hit in unpickling_calls(source)) == [
        "allow_pickle=True",
        "from joblib import",
        "from torch import load",
        "import pickle",
        "torch.load",
    ]
    assert unpickling_calls("np.load('a.npy', allow_pickle=False)\nimport json\n") == []


def test_no_serving_or_edge_source_unpickles() -> None:
    files = [
        p
        for part in SCANNED
        for p in (
            [REPO_ROOT / part] if part.endswith(".py") else sorted((REPO_ROOT / part).rglob("*.py"))
        )
    ]
    assert len(files) > 20, files  # the scan really read the packages
    found = [
        hit
        for path in files
        for hit in unpickling_calls(path.read_text(), str(path.relative_to(REPO_ROOT)))
    ]
    assert found == []


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every unpickling entry point fails the test (and is recorded, in case it is caught)."""
    attempts: list[str] = []

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            attempts.append(name)
            raise AssertionError(f"{name} called on the serving path")

        return refused

    for module, attribute in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")]:
        monkeypatch.setattr(module, attribute, refuse(f"pickle.{attribute}"))
    import _pickle

    for attribute in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(_pickle, attribute, refuse(f"_pickle.{attribute}"))
    real_np_load = np.load

    def np_load(*args: Any, allow_pickle: bool = False, **kwargs: Any) -> Any:
        if allow_pickle:
            return refuse("numpy.load(allow_pickle=True)")()
        return real_np_load(*args, allow_pickle=False, **kwargs)

    monkeypatch.setattr(np, "load", np_load)
    import torch  # the container runtime's engine; the zip function never imports it

    monkeypatch.setattr(torch, "load", refuse("torch.load"))
    yield attempts
    assert attempts == []


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
@pytest.mark.parametrize("model", ["cifar10-cnn", "imdb-sentiment", "ptb-lstm"])
def test_every_model_predicts_without_unpickling(
    request: pytest.FixtureRequest, tmp_path: Path, model: str, runtime: str
) -> None:
    # The artifact first: training reads CIFAR-10's official pickles (its loader subclasses
    # pickle.Unpickler at import), which must happen before the serving path is fenced off.
    artifact = request.getfixturevalue(
        {
            "cifar10-cnn": "cifar_artifact",
            "imdb-sentiment": "imdb_artifact",
            "ptb-lstm": "ptb_artifact",
        }[model]
    )
    no_unpickling: list[str] = request.getfixturevalue("no_unpickling")
    fn = serve(artifact, tmp_path)
    fn.settings = fn.settings.model_copy(update={"runtime": runtime})
    fn.init()
    assert_serves(fn)
    assert no_unpickling == []  # nothing tried and was caught on the way
