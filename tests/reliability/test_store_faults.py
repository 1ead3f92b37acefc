"""Injected store faults (issue 11, item 2): the function answers 503 + Retry-After, then recovers.

The store is S3 under moto (`mock_aws`); faults are injected at botocore's `before-send` hook of
the function's own client, so they pass through exactly the code a real fault would: botocore's
retry handler (standard mode, bounded, jittered), s3transfer's re-reads, `S3Store._fail`,
`fetch_artifact`'s verification and `ModelSlot`. Backoff sleeps are recorded instead of slept.
"""

from __future__ import annotations

import errno
import io
import logging
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from mangum import Mangum
from moto import mock_aws

from functions.app import create_app
from functions.model_loader import ModelSlot
from functions.settings import FunctionSettings
from modelfn.artifact import MANIFEST_FILE, ONNX_FILE, WEIGHTS_FILE, alias_key, file_key
from modelfn.store import S3Store, publish_artifact
from modelfn.store.base import StoreError
from modelfn.store.s3 import CONNECT_TIMEOUT_S, MAX_ATTEMPTS, READ_TIMEOUT_S, client_config
from tests.functions.conftest import MODEL, TinyModel, build_tiny_model, call, random_pixels
from tests.reliability.conftest import Clock, scaled
from tests.support.aws import fake_aws_env

BUCKET = "artifacts"
RETRY_S = 30.0  # the slot's load_retry_s in these tests
PREDICT = f"/models/{MODEL}/predict"
BODY = {"inputs": [random_pixels(1)[0].tolist()]}


# --- fault injection ----------------------------------------------------------------------------


class _Raw:
    """The raw HTTP body botocore reads from an AWSResponse (what urllib3 would hand it)."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    def stream(self, amt: int = 8192, **_: Any) -> Iterator[bytes]:
        while chunk := self._buffer.read(amt):
            yield chunk

    def read(self, amt: int | None = None, **_: Any) -> bytes:
        return self._buffer.read(amt)


def s3_error(status: int, code: str) -> Callable[[AWSRequest], AWSResponse]:
    def respond(request: AWSRequest) -> AWSResponse:
        body = f"<Error><Code>{code}</Code><Message>injected {code}</Message></Error>".encode()
        return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Raw(body))

    return respond


def raises(error: type[Exception]) -> Callable[[AWSRequest], AWSResponse]:
    def respond(request: AWSRequest) -> AWSResponse:
        raise error(endpoint_url=request.url)  # type: ignore[call-arg]

    return respond


def body(data: bytes, content_length: int | None = None) -> Callable[[AWSRequest], AWSResponse]:
    """A 200 whose body is `data`; `content_length` larger than it is a connection that broke off."""

    def respond(request: AWSRequest) -> AWSResponse:
        headers = {"Content-Length": str(len(data) if content_length is None else content_length)}
        headers |= {"ETag": '"injected"', "Content-Type": "binary/octet-stream"}
        return AWSResponse(request.url, 200, headers, _Raw(data))

    return respond


@dataclass
class Faults:
    """Every S3 request the function's client sends, and the fault (if any) it gets instead."""

    sent: list[tuple[str, str]] = field(default_factory=list)  # (operation, key)
    rules: list[tuple[str, str, Callable[[AWSRequest], AWSResponse]]] = field(default_factory=list)

    def attach(self, client: Any) -> None:
        # register_first: before moto's own before-send handler answers the request.
        client.meta.events.register_first("before-send.s3.*", self._before_send)

    def inject(
        self, operation: str, key_suffix: str, fault: Callable[[AWSRequest], AWSResponse]
    ) -> None:
        self.rules.append((operation, key_suffix, fault))

    def clear(self) -> None:
        self.rules.clear()

    def count(self, operation: str, key_suffix: str = "") -> int:
        return sum(1 for op, key in self.sent if op == operation and key.endswith(key_suffix))

    def _before_send(self, request: AWSRequest, event_name: str, **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        key = unquote(urlparse(request.url).path).lstrip("/")
        self.sent.append((operation, key))
        for op, suffix, fault in self.rules:
            if op in (operation, "*") and key.endswith(suffix):
                return fault(request)
        return None  # moto answers


# --- the function under test ----------------------------------------------------------------------


@dataclass
class Function:
    tiny: TinyModel
    store: S3Store
    faults: Faults
    settings: FunctionSettings
    clock: Clock
    sleeps: list[float]
    slot: ModelSlot | None = None
    handler: Any = None

    def init(self) -> None:
        """A cold start: a new slot on this store (the cache folder may hold an earlier init's)."""
        self.slot = ModelSlot(self.settings, clock=self.clock)
        self.slot.store = self.store
        self.slot.load()
        self.handler = Mangum(create_app(self.settings, self.slot), lifespan="off")

    def later(self) -> None:
        """Past the slot's retry interval: the next request tries the load again."""
        self.clock.now += RETRY_S

    def key(self, name: str) -> str:
        return file_key(MODEL, self.tiny.manifest.version, name)


@pytest.fixture
def fn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Function]:
    # The store's own retry settings, not the environment's, are what is under test.
    fake_aws_env(monkeypatch, unset=("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"))
    sleeps: list[float] = []

    class RecordedTime:  # botocore.endpoint sleeps the backoff with time.sleep
        @staticmethod
        def sleep(seconds: float) -> None:
            sleeps.append(seconds)

    monkeypatch.setattr(botocore.endpoint, "time", RecordedTime)
    with mock_aws():
        tiny = build_tiny_model(tmp_path / "build")
        publisher = S3Store(BUCKET, "models")
        publisher.ensure_bucket()
        publish_artifact(publisher, tiny.folder)
        store = S3Store(BUCKET, "models")  # the function's own client, with the faults
        faults = Faults()
        faults.attach(store.client)
        settings = FunctionSettings(
            model=MODEL,
            store_uri=f"s3://{BUCKET}/models",
            cache_dir=tmp_path / "cache",
            load_retry_s=RETRY_S,
        )
        yield Function(tiny, store, faults, settings, Clock(), sleeps)


def assert_503(reply: Any, reason: str) -> None:
    """A 503 with Retry-After, the public reason, and nothing of the internals."""
    assert reply.status == 503, reply.body
    assert 1 <= int(reply.headers["retry-after"]) <= RETRY_S
    error = reply.json()["error"]
    assert f"is not loaded: {reason}" in error, error
    for secret in ("Traceback", "s3://", "botocore", "Errno", "/tmp", "sha256"):
        assert secret not in error


def assert_serves(fn: Function) -> None:
    reply = call(fn.handler, "POST", PREDICT, BODY)
    assert reply.status == 200, reply.body
    assert reply.json()["version"] == fn.tiny.manifest.version
    ready = call(fn.handler, "GET", f"/v2/models/{MODEL}/ready")
    assert (ready.status, ready.json()) == (200, {"name": MODEL, "ready": True})


def assert_not_ready(fn: Function, reason: str) -> None:
    assert_503(call(fn.handler, "POST", PREDICT, BODY), reason)
    assert_503(call(fn.handler, "GET", f"/v2/models/{MODEL}/ready"), reason)
    assert call(fn.handler, "GET", "/v2/health/ready").status == 503
    assert call(fn.handler, "GET", "/v2/health/live").status == 200


# --- the client's configuration -----------------------------------------------------------------


def test_the_s3_client_retries_a_bounded_number_of_times_with_timeouts(fn: Function) -> None:
    config = fn.store.client.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    # botocore's own variables win over the defaults (explicit, then environment, then default).
    env = client_config({"AWS_MAX_ATTEMPTS": "5", "AWS_RETRY_MODE": "adaptive"})
    assert env.retries == {"mode": "adaptive", "total_max_attempts": 5}
    with pytest.raises(StoreError, match="AWS_MAX_ATTEMPTS='many' is not a whole number"):
        client_config({"AWS_MAX_ATTEMPTS": "many"})


# --- transient faults: bounded, jittered retries, then 503, then recovery ----------------------

TRANSIENT = {
    "SlowDown": s3_error(503, "SlowDown"),
    "InternalError": s3_error(500, "InternalError"),
    "ServiceUnavailable": s3_error(503, "ServiceUnavailable"),
    "ReadTimeout": raises(ReadTimeoutError),
    "ConnectTimeout": raises(ConnectTimeoutError),
    "EndpointConnection": raises(EndpointConnectionError),
}


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
def test_a_transient_fault_is_retried_then_answered_503_then_recovers(
    fn: Function, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    alias = alias_key(MODEL, "latest")
    fn.faults.inject("GetObject", alias, TRANSIENT[fault])
    fn.init()
    # One read of the alias: MAX_ATTEMPTS attempts, MAX_ATTEMPTS - 1 jittered sleeps, then up.
    assert fn.faults.count("GetObject", alias) == MAX_ATTEMPTS
    assert len(fn.sleeps) == MAX_ATTEMPTS - 1
    assert all(0 <= s < 2 ** (i + 1) for i, s in enumerate(fn.sleeps)), fn.sleeps
    assert "model load failed" in caplog.text and "StoreError" in caplog.text

    assert_not_ready(fn, "the artifact store could not be reached")
    assert fn.faults.count("GetObject", alias) == MAX_ATTEMPTS  # not retried within the interval

    fn.faults.clear()
    fn.later()
    assert_serves(fn)


def test_backoff_is_jittered(fn: Function) -> None:
    """Two runs of the same fault sleep different amounts: no thundering herd of sandboxes."""
    random.seed(scaled(11, 11))
    fn.faults.inject("GetObject", alias_key(MODEL, "latest"), TRANSIENT["SlowDown"])
    for _ in range(scaled(3, 30)):
        fn.init()
    assert len(fn.sleeps) == scaled(3, 30) * (MAX_ATTEMPTS - 1)
    assert len(set(fn.sleeps)) == len(fn.sleeps), fn.sleeps


def test_a_fault_that_clears_within_the_retries_is_invisible(fn: Function) -> None:
    graph = fn.key(ONNX_FILE)
    fn.faults.inject("GetObject", graph, _times(MAX_ATTEMPTS - 1, TRANSIENT["SlowDown"]))
    fn.init()
    assert_serves(fn)
    assert fn.faults.count("GetObject", graph) == MAX_ATTEMPTS
    # The zip function never opens the weights, so it never asks for them (UNREAD_BY).
    assert fn.faults.count("GetObject", fn.key(WEIGHTS_FILE)) == 0


def _times(n: int, fault: Callable[[AWSRequest], AWSResponse]) -> Callable[[AWSRequest], Any]:
    """`fault` for the first `n` requests, then the real answer."""
    left = [n]

    def respond(request: AWSRequest) -> Any:
        if left[0] > 0:
            left[0] -= 1
            return fault(request)
        return None

    return respond


# --- permanent faults: no retries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "target", "reason"),
    [
        (403, "AccessDenied", "alias", "the artifact store could not be reached"),
        (404, "NoSuchKey", "alias", "no version is published under alias 'latest'"),
        (403, "AccessDenied", MANIFEST_FILE, "the artifact store could not be reached"),
        (404, "NoSuchKey", MANIFEST_FILE, "no version is published under alias 'latest'"),
    ],
)
def test_a_permanent_fault_is_not_retried(
    fn: Function, status: int, code: str, target: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = alias_key(MODEL, "latest") if target == "alias" else fn.key(target)
    fn.faults.inject("GetObject", key, s3_error(status, code))
    fn.init()
    assert fn.faults.count("GetObject", key) == 1
    assert fn.sleeps == []
    if code == "AccessDenied":
        assert "AccessDenied" in caplog.text
    elif target == MANIFEST_FILE:
        assert "points at version" in caplog.text and "does not exist" in caplog.text
    assert_not_ready(fn, reason)
    fn.faults.clear()
    fn.later()
    assert_serves(fn)


# --- what arrives broken ------------------------------------------------------------------------


def test_a_download_that_breaks_off_is_reread_then_refused_then_recovers(
    fn: Function, caplog: pytest.LogCaptureFixture
) -> None:
    graph = fn.key(ONNX_FILE)
    data = (fn.tiny.folder / ONNX_FILE).read_bytes()
    fn.faults.inject("GetObject", graph, body(data[: len(data) // 2], content_length=len(data)))
    fn.init()
    # The store asks again for a body shorter than its Content-Length (from where it broke off, or
    # from the start where the answer is the whole object), as many times as botocore retries.
    assert fn.faults.count("GetObject", graph) == MAX_ATTEMPTS
    assert f"the body broke off {MAX_ATTEMPTS} times" in caplog.text
    assert_not_ready(fn, "the artifact store could not be reached")
    assert _leftovers(fn) == []
    fn.faults.clear()
    fn.later()
    assert_serves(fn)


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_bytes_that_differ_from_the_manifest_are_refused_and_never_cached(
    fn: Function, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = ONNX_FILE  # the file the function fetches (it never opens the weights)
    data = (fn.tiny.folder / name).read_bytes()
    bad = data[:-7] if damage == "truncated" else data[:-1] + bytes([data[-1] ^ 0x01])
    fn.faults.inject("GetObject", fn.key(name), body(bad))  # a consistent answer, just wrong
    fn.init()
    expected = "manifest says" if damage == "truncated" else "does not match manifest"
    assert re.search(rf"{re.escape(name)}: .*{expected}.*refusing to load", caplog.text)
    assert_not_ready(fn, "the published artifact failed its integrity check")
    assert _leftovers(fn) == []
    fn.faults.clear()
    fn.later()
    assert_serves(fn)


def _leftovers(fn: Function) -> list[Path]:
    """What a refused fetch left in the cache (nothing: no folder, no staging)."""
    folder = fn.settings.cache_dir / MODEL
    return sorted(folder.iterdir()) if folder.is_dir() else []


# --- the /tmp cache -----------------------------------------------------------------------------


class _FullDisk(io.FileIO):
    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_tmp_is_a_503_and_recovers_once_space_is_freed(
    fn: Function, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_open = Path.open

    def open_(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        # The store's download writes the graph; /tmp is full by then.
        if self.name == ONNX_FILE and "w" in mode:
            return _FullDisk(self, mode)
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    fn.init()
    assert "No space left on device" in caplog.text
    assert_not_ready(fn, "the function has no room left to cache the model")
    assert _leftovers(fn) == []  # the partial staging folder was removed
    monkeypatch.setattr(Path, "open", real_open)
    fn.later()
    assert_serves(fn)


def test_a_graph_cache_that_cannot_be_written_costs_only_the_head_start(
    fn: Function, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """onnxruntime fails a session whose optimised graph it cannot save; the load must not."""
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name != ".graphs":  # the graph cache folder "exists", but nothing can be written
            real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with caplog.at_level(logging.WARNING):
        fn.init()
    assert "optimised graph not cached" in caplog.text
    assert_serves(fn)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "deleted"])
def test_a_bad_file_in_the_cache_is_never_served(fn: Function, damage: str) -> None:
    fn.init()  # fills the cache, as an earlier init of this sandbox would
    cached = fn.settings.cache_dir / MODEL / fn.tiny.manifest.version / ONNX_FILE
    good = cached.read_bytes()
    if damage == "deleted":
        cached.unlink()
    else:
        cached.write_bytes(
            good[:-3] if damage == "truncated" else good[:-1] + bytes([good[-1] ^ 0x80])
        )
    before = fn.faults.count("GetObject", fn.key(ONNX_FILE))

    # While the store is down, the damaged copy is not served instead.
    fn.faults.inject("*", "", TRANSIENT["SlowDown"])
    fn.init()
    assert_not_ready(fn, "the artifact store could not be reached")

    fn.faults.clear()
    fn.init()  # the next cold start re-verifies, re-fetches and serves the verified bytes
    assert fn.faults.count("GetObject", fn.key(ONNX_FILE)) == before + 1
    assert cached.read_bytes() == good
    assert_serves(fn)


# --- a seeded run of mixed faults ----------------------------------------------------------------


def test_mixed_faults_never_answer_500_and_always_recover(fn: Function) -> None:
    seed = 20261129
    print(f"seed {seed}")
    rng = random.Random(seed)
    faults = {
        **TRANSIENT,
        "AccessDenied": s3_error(403, "AccessDenied"),
        "NoSuchKey": s3_error(404, "NoSuchKey"),
    }
    targets = [
        alias_key(MODEL, "latest"),
        fn.key(MANIFEST_FILE),
        fn.key(ONNX_FILE),
    ]
    for round_ in range(scaled(4, 100)):
        name, target = rng.choice(sorted(faults)), rng.choice(targets)
        fn.faults.inject("*", target, faults[name])
        fn.init()
        # Any fault on a key this init fetches fails it; a warm cache needs no file downloads.
        reply = call(fn.handler, "POST", PREDICT, BODY)
        assert reply.status in (200, 503), (round_, name, target, reply.body)
        fn.faults.clear()
        fn.later()
        assert_serves(fn)
