"""The model a function serves: fetched and verified at init, held for every request.

`load_model` fetches the artifact (`fetch_artifact` checks every sha256 on the way into the
cache, and reuses a verified copy already there), checks the graph's bytes once more as they are
read into onnxruntime, and builds the CPU session (functions/onnx_session.py, which caches the
optimised graph). `ModelSlot` keeps either the loaded model or the reason it failed; a failed slot
answers 503 and retries at most once every `load_retry_s`, so a model published after the
function started is picked up without a redeploy, and a loaded slot follows its alias (promote,
rollback) within `alias_ttl_s`. While the alias names a canary (docs/serving.md, "Canary
rollouts"), the slot holds that version too, where the memory holds both, and `choose` sends each
request to one of the two by the canary's weight. Nothing here unpickles: onnxruntime never reads the
weights, and the container's torch runtime parses them as safetensors (functions/torch_session).
"""

from __future__ import annotations

import errno
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from functions.errors import ModelUnavailable
from functions.log import logger
from functions.observability import record_model_load
from functions.onnx_session import create_session
from functions.settings import FunctionSettings
from functions.tasks import Task, load_task
from modelfn.artifact import (
    INT8_ONNX_FILE,
    MANIFEST_FILE,
    ONNX_DATA_FILE,
    ONNX_FILE,
    SERVED_GRAPH,
    Alias,
    ArtifactError,
    IntegrityError,
    Manifest,
    Precision,
    Runtime,
    alias_key,
    file_key,
    is_version,
    parse_alias,
    parse_manifest,
    sha256_file,
    unread_by,
)
from modelfn.store import ArtifactStore, NotFound, StoreError, fetch_artifact, open_store
from modelfn.store.transfer import read_alias


@dataclass(frozen=True)
class LoadedModel:
    manifest: Manifest
    session: Any  # onnxruntime.InferenceSession
    folder: Path
    task: Task  # the task adapter bound to this version (its tokenizer, labels, ...)
    load_seconds: float = 0.0
    runtime: Runtime = "onnxruntime"  # the engine behind `session` (functions.torch_session)
    precision: Precision = "fp32"  # the graph behind `session`: model.onnx or model.int8.onnx
    # The alias record it was loaded for (None: a pinned version), with the canary it names.
    pointer: Alias | None = None

    def run(
        self, feeds: dict[str, NDArray[Any]], outputs: list[str] | None = None
    ) -> dict[str, NDArray[Any]]:
        """Run the graph; returns the requested outputs (default: all), by name."""
        names = outputs or [spec.name for spec in self.manifest.outputs]
        return dict(zip(names, self.session.run(names, feeds), strict=True))

    def predict(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        """The task's friendly prediction for each input."""
        return self.task.predict(self.run, inputs, parameters)


# Reads the alias (a version, its manifest's sha256) and returns the model it points at; the
# slot passes the store it keeps open and the alias record it read (None: read it, or a version).
Loader = Callable[[FunctionSettings, ArtifactStore, Alias | None], LoadedModel]


def load_model(
    settings: FunctionSettings, store: ArtifactStore | None = None, pointer: Alias | None = None
) -> LoadedModel:
    """Fetch, verify and load the model `settings` name; raises on any failure.

    `pointer` is the alias record already read (by the slot's conditional GET); without it the
    alias is read here. A version already in the cache is re-verified, not downloaded again.
    """
    started = time.perf_counter()
    store = store or open_store(settings.store_uri, endpoint_url=settings.s3_endpoint_url)
    precision = settings.precision if settings.runtime == "onnxruntime" else "fp32"
    if pointer is None and not is_version(settings.alias):
        pointer = read_alias(store, settings.model, settings.alias)
    manifest, folder = fetch_artifact(
        store,
        settings.model,
        settings.alias,
        settings.cache_dir,
        pointer=pointer,
        # Its cold start does not wait for the files it never opens: the weights, and the graph
        # of the other precision.
        skip=unread_by(settings.runtime, precision),
    )
    task = load_task(manifest, folder)
    graph_file = SERVED_GRAPH[precision]
    if settings.runtime == "torch":  # the container image; the zip function never imports torch
        from functions.torch_session import create_torch_session

        session: Any = create_torch_session(folder, manifest)
    elif precision == "int8" and INT8_ONNX_FILE not in manifest.files:
        raise NoInt8Graph(
            f"{manifest.name} {manifest.version} has no {INT8_ONNX_FILE} and this function "
            "serves int8 (MODELFN_PRECISION, models.toml serving.precision): publish a version "
            f"with one (`modelfn quantize {manifest.name}`), or serve precision fp32"
        )
    elif ONNX_FILE not in manifest.files:
        raise ArtifactError(f"{folder}: the manifest lists no {ONNX_FILE}; nothing to serve")
    else:
        session = create_session(
            folder / graph_file,
            manifest.files[graph_file],
            settings.cache_dir,
            # The int8 graph is always one file (the quantizer reads and writes whole graphs).
            external_data=precision == "fp32" and ONNX_DATA_FILE in manifest.files,
        )
    graph = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    declared = ([t.name for t in manifest.inputs], [t.name for t in manifest.outputs])
    if graph != declared:
        raise ArtifactError(
            f"{folder / graph_file}: graph inputs/outputs {graph} differ from the manifest's "
            f"{declared}; the artifact was built wrong, re-export it"
        )
    return LoadedModel(
        manifest,
        session,
        folder,
        task,
        time.perf_counter() - started,
        runtime=settings.runtime,
        precision=precision,
        pointer=pointer,
    )


class NoInt8Graph(ArtifactError):
    """The function serves int8 and the version has no int8 graph (a fp32-only version)."""


def public_reason(exc: Exception, settings: FunctionSettings) -> str:
    """Why the model is not loaded, as a 503 tells anonymous clients: a fixed category.

    The exception's own message names buckets, endpoints and /tmp paths; that goes to the log
    and `ModelSlot.error`, for whoever runs the function.
    """
    if isinstance(exc, NotFound):
        if is_version(settings.alias):
            return f"version {settings.alias!r} is not published"
        return f"no version is published under alias {settings.alias!r}"
    if isinstance(exc, NoInt8Graph):
        return (
            "the published version has no int8 graph (model.int8.onnx), which this function serves"
        )
    if isinstance(exc, IntegrityError):
        return "the published artifact failed its integrity check"
    if isinstance(exc, ArtifactError):
        return "the published artifact is not one this function can serve"
    if isinstance(exc, StoreError):
        return "the artifact store could not be reached"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the function has no room left to cache the model"
    return "the model failed to load"


@dataclass
class ModelSlot:
    """The one model this function serves: loaded, or why not, with rate-limited retries.

    A slot serving an alias (not a pinned version) re-reads it at most every `alias_ttl_s` with a
    conditional GET. When it has moved, the new version is fetched, verified and loaded while
    requests go on being answered by the old one, then swapped in with one assignment: a request
    keeps the LoadedModel it started with, and every response names the version that answered.
    If the new version fails to load, the old one stays and the next check tries again.
    """

    settings: FunctionSettings
    loader: Loader = load_model
    clock: Callable[[], float] = time.monotonic
    model: LoadedModel | None = None
    error: str | None = None  # the full cause, for the log and the operator
    reason: str | None = None  # the public category, for the 503 body
    # Opened on first use; dropped before a SnapStart snapshot so no client (and none of its
    # credentials) is frozen into it, and opened again after the restore (functions/snapstart.py).
    store: ArtifactStore | None = None
    _last_attempt: float | None = None
    _alias_etag: str | None = None  # the alias object's ETag as last read: the conditional GET's
    _alias_checked: float | None = None  # when the alias was last read; None: read it next time
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # The canary version the alias names, loaded beside `model`, and its percent of requests.
    canary: LoadedModel | None = None
    canary_weight: int = 0
    # Why the alias's canary is not loaded (memory, a failed load); None: it is, or there is none.
    canary_refused: str | None = None
    # Chooses each request's version; a seed makes a test's routing repeatable.
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def holding(cls, model: LoadedModel, settings: FunctionSettings) -> ModelSlot:
        slot = cls(settings=settings, model=model)
        slot._alias_checked = slot.clock()  # held as given: the first alias check is a TTL away
        return slot

    @property
    def follows_alias(self) -> bool:
        return not is_version(self.settings.alias)

    def open_store(self) -> ArtifactStore:
        if self.store is None:
            self.store = open_store(
                self.settings.store_uri, endpoint_url=self.settings.s3_endpoint_url
            )
        return self.store

    def forget_store(self) -> None:
        """Drop the store's client; the next read opens a new one (and reads the alias again)."""
        self.store = None
        self._alias_checked = None

    def restored(self) -> None:
        """After a SnapStart restore: a new client, the alias read again, and, when the snapshot
        holds no model (taken before one was published), the load retried by the next request
        instead of `load_retry_s` after the failure frozen into the snapshot, days ago."""
        self.forget_store()
        if self.model is None:
            self._last_attempt = None

    def read_alias(self) -> Alias | None:
        """The alias record if it changed since the last read, else None (HTTP 304, no body)."""
        key = alias_key(self.settings.model, self.settings.alias)
        store = self.open_store()
        try:
            tagged = store.get_if_changed(key, self._alias_etag)
        except NotFound:
            raise NotFound(
                f"model {self.settings.model!r} has no alias {self.settings.alias!r} in {store.uri}"
            ) from None
        self._alias_checked = self.clock()
        if tagged is None:
            return None
        record = parse_alias(tagged.data, source=f"{store.uri}/{key}")
        self._alias_etag = tagged.etag
        return record

    def load(self) -> None:
        """Try to load now; on failure keep the reason (logged) instead of raising."""
        self._last_attempt = self.clock()
        try:
            model = self.loader(self.settings, self.open_store(), None)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the function up, answering 503
            self.error = f"{type(exc).__name__}: {exc}"
            self.reason = public_reason(exc, self.settings)
            logger.exception(
                "model load failed",
                extra={
                    "model": self.settings.model,
                    "alias": self.settings.alias,
                    "store": self.settings.store_uri,
                },
            )
            return
        # The loader read the alias; its ETag comes with the first check, one TTL from now.
        self._alias_etag, self._alias_checked = None, self.clock()
        self._serve(model, "model loaded")
        self._follow_canary(model.pointer, model)

    def refresh(self) -> None:
        """Follow the alias if it moved; the old model keeps serving until the new one is ready."""
        current = self.model
        try:
            pointer = self.read_alias()
            if pointer is None:
                return
            if current is not None and pointer.version == current.manifest.version:
                self._follow_canary(pointer, current)
                return
            model = self.loader(self.settings, self.open_store(), pointer)
        except Exception:  # noqa: BLE001 - a failed move keeps the version that works
            self._alias_etag = None  # so the next check reads the record again and retries
            logger.exception(
                "alias check or move failed; still serving the loaded version",
                extra={
                    "model": self.settings.model,
                    "alias": self.settings.alias,
                    "version": current.manifest.version if current else None,
                },
            )
            return
        self._serve(
            model,
            "alias moved: now serving its new version",
            previous_version=current.manifest.version if current else None,
        )
        self._follow_canary(pointer, model)

    def _follow_canary(self, pointer: Alias | None, stable: LoadedModel) -> None:
        """Hold the canary `pointer` names beside `stable` (or drop the one held, when it names
        none): loaded only where the memory holds both; any failure leaves the stable serving
        every request, with the reason logged and kept in `canary_refused`."""
        wanted = pointer.canary if pointer is not None else None
        if wanted is None:
            if self.canary is not None:
                logger.info(
                    "canary ended: serving one version",
                    extra={
                        **self._names(),
                        "version": stable.manifest.version,
                        "canary_version": self.canary.manifest.version,
                    },
                )
            self.canary, self.canary_weight, self.canary_refused = None, 0, None
            return
        if self.canary is not None and self.canary.manifest.version == wanted.version:
            self.canary_weight = wanted.weight
            return
        self.canary, self.canary_weight = None, 0  # the stable answers until the new one is ready
        try:
            refusal = self._canary_memory_refusal(stable, wanted.version)
            if refusal is None:
                canary = self.loader(
                    self.settings.model_copy(update={"alias": wanted.version}),
                    self.open_store(),
                    None,
                )
                if sha256_file(canary.folder / MANIFEST_FILE) != wanted.manifest_sha256:
                    raise IntegrityError(
                        f"{self.settings.model} {wanted.version}: its manifest is not the one "
                        f"alias {self.settings.alias!r} records"
                    )
        except Exception as exc:  # noqa: BLE001 - a canary that fails to load is not served
            refusal = f"it failed to load: {type(exc).__name__}: {exc}"
            self._alias_etag = None  # the next alias check reads the record again and retries
        if refusal is not None:
            self.canary_refused = refusal
            logger.warning(
                f"canary {wanted.version} not served; the stable version answers every request: "
                f"{refusal}",
                extra={
                    **self._names(),
                    "version": stable.manifest.version,
                    "canary_version": wanted.version,
                    "canary_refused": refusal,
                },
            )
            return
        self.canary, self.canary_weight, self.canary_refused = canary, wanted.weight, None
        record_model_load(canary.manifest.name, canary.manifest.version, canary.load_seconds)
        logger.info(
            "canary loaded: serving two versions",
            extra={
                **self._names(),
                "version": stable.manifest.version,
                "canary_version": wanted.version,
                "canary_weight": wanted.weight,
                "seconds": round(canary.load_seconds, 3),
            },
        )

    def _canary_memory_refusal(self, stable: LoadedModel, version: str) -> str | None:
        """Why this function's memory cannot hold `version` beside `stable` (None: it can)."""
        if self.settings.memory_mb is None:
            return None
        # Here, not at the top: only a canary rollout pays for its import.
        from modelfn.budget import canary_refusal

        key = file_key(self.settings.model, version, MANIFEST_FILE)
        manifest = parse_manifest(self.open_store().get_bytes(key), source=key)
        return canary_refusal(
            {name: f.size for name, f in stable.manifest.files.items()},
            {name: f.size for name, f in manifest.files.items()},
            stable.precision,
            self.settings.memory_mb,
        )

    def _names(self) -> dict[str, str]:
        return {"model": self.settings.model, "alias": self.settings.alias}

    def choose(self, stable: LoadedModel) -> LoadedModel:
        """The version that answers this request: the canary for its weight's share of requests
        (while one is held), else `stable`, the model `get` returned."""
        canary = self.canary
        if canary is not None and self.rng.random() * 100 < self.canary_weight:
            return canary
        return stable

    def loaded(self, version: str) -> LoadedModel | None:
        """The held model of `version` (the stable or the canary), else None."""
        for model in (self.model, self.canary):
            if model is not None and model.manifest.version == version:
                return model
        return None

    def _serve(self, model: LoadedModel, message: str, **extra: Any) -> None:
        """Swap `model` in (one assignment: requests hold the model they started with), clear any
        failure, and record the load as a metric and a log line."""
        self.model, self.error, self.reason = model, None, None
        record_model_load(model.manifest.name, model.manifest.version, model.load_seconds)
        logger.info(
            message,
            extra={
                "model": model.manifest.name,
                "version": model.manifest.version,
                "precision": model.precision,
                "alias": self.settings.alias,
                "seconds": round(model.load_seconds, 3),
                **extra,
            },
        )

    def get(self) -> LoadedModel:
        """The loaded model; retries a failed load once `load_retry_s` passed since the last try,
        and checks the alias once `alias_ttl_s` passed since the last check."""
        model = self.model
        if model is not None:
            # One request checks; requests meanwhile (none, on Lambda) go on with the model held.
            if self._alias_due() and self._lock.acquire(blocking=False):
                try:
                    if self._alias_due():
                        self.refresh()
                finally:
                    self._lock.release()
                return self.model or model
            return model
        with self._lock:
            if self.model is None and self._wait() <= 0:
                self.load()
            if self.model is not None:
                return self.model
            raise ModelUnavailable(
                f"model {self.settings.model!r} is not loaded: "
                f"{self.reason or 'it has not been loaded yet'}; "
                "the function retries the load, try again after Retry-After seconds",
                retry_after_s=max(self._wait(), 1.0),
            )

    def _alias_due(self) -> bool:
        if not self.follows_alias:
            return False
        checked = self._alias_checked
        return checked is None or self.clock() - checked >= self.settings.alias_ttl_s

    def _wait(self) -> float:
        if self._last_attempt is None:
            return 0.0
        return self._last_attempt + self.settings.load_retry_s - self.clock()
