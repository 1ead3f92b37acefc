"""The model a function serves: fetched and verified at init, held for every request.

`load_model` fetches the artifact (`fetch_artifact` checks every sha256 on the way into the
cache), checks the graph's bytes once more as they are read into onnxruntime, and builds the CPU
session. `ModelSlot` keeps either the loaded model or the reason it failed; a failed slot answers
503 and retries at most once every `load_retry_s`, so a model published after the function
started is picked up without a redeploy. Nothing here unpickles: weights are never read at all.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numpy.typing import NDArray

from functions.errors import ModelUnavailable
from functions.log import logger
from functions.settings import FunctionSettings
from functions.tasks import Task, load_task
from modelfn.artifact import (
    ONNX_FILE,
    ArtifactError,
    FileEntry,
    IntegrityError,
    Manifest,
    is_version,
    sha256_bytes,
)
from modelfn.store import NotFound, StoreError, fetch_artifact, open_store


@dataclass(frozen=True)
class LoadedModel:
    manifest: Manifest
    session: Any  # onnxruntime.InferenceSession
    folder: Path
    task: Task  # the task adapter bound to this version (its tokenizer, labels, ...)
    load_seconds: float = 0.0

    def run(
        self, feeds: dict[str, NDArray[Any]], outputs: list[str] | None = None
    ) -> dict[str, NDArray[Any]]:
        """Run the graph; returns the requested outputs (default: all), by name."""
        names = outputs or [spec.name for spec in self.manifest.outputs]
        return dict(zip(names, self.session.run(names, feeds), strict=True))

    def predict(self, inputs: list[Any], parameters: dict[str, Any]) -> list[Any]:
        """The task's friendly prediction for each input."""
        return self.task.predict(self.run, inputs, parameters)


def create_session(path: Path, expected: FileEntry) -> Any:
    """An onnxruntime CPU session from the graph at `path`, whose bytes must match `expected`.

    The bytes are hashed as they are handed to onnxruntime, so a file changed after the fetch's
    verification is still refused.
    """
    import onnxruntime as ort

    graph = path.read_bytes()
    if len(graph) != expected.size or sha256_bytes(graph) != expected.sha256:
        raise IntegrityError(f"{path}: bytes do not match the manifest's sha256; refusing to load")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Lambda gives CPU in proportion to memory (1 vCPU at 1,769 MB) and bills busy time: one
    # thread per visible core, one request at a time, and no spin-waiting between ops.
    options.intra_op_num_threads = os.cpu_count() or 1
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
    return ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])


def load_model(settings: FunctionSettings) -> LoadedModel:
    """Fetch, verify and load the model `settings` name; raises on any failure."""
    started = time.perf_counter()
    store = open_store(settings.store_uri, endpoint_url=settings.s3_endpoint_url)
    manifest, folder = fetch_artifact(store, settings.model, settings.alias, settings.cache_dir)
    task = load_task(manifest, folder)
    if ONNX_FILE not in manifest.files:
        raise ArtifactError(f"{folder}: the manifest lists no {ONNX_FILE}; nothing to serve")
    session = create_session(folder / ONNX_FILE, manifest.files[ONNX_FILE])
    graph = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    declared = ([t.name for t in manifest.inputs], [t.name for t in manifest.outputs])
    if graph != declared:
        raise ArtifactError(
            f"{folder / ONNX_FILE}: graph inputs/outputs {graph} differ from the manifest's "
            f"{declared}; the artifact was built wrong, re-export it"
        )
    return LoadedModel(manifest, session, folder, task, time.perf_counter() - started)


def public_reason(exc: Exception, settings: FunctionSettings) -> str:
    """Why the model is not loaded, as a 503 tells anonymous clients: a fixed category.

    The exception's own message names buckets, endpoints and /tmp paths; that goes to the log
    and `ModelSlot.error`, for whoever runs the function.
    """
    if isinstance(exc, NotFound):
        if is_version(settings.alias):
            return f"version {settings.alias!r} is not published"
        return f"no version is published under alias {settings.alias!r}"
    if isinstance(exc, IntegrityError):
        return "the published artifact failed its integrity check"
    if isinstance(exc, ArtifactError):
        return "the published artifact is not one this function can serve"
    if isinstance(exc, StoreError):
        return "the artifact store could not be reached"
    return "the model failed to load"


@dataclass
class ModelSlot:
    """The one model this function serves: loaded, or why not, with rate-limited retries."""

    settings: FunctionSettings
    loader: Callable[[FunctionSettings], LoadedModel] = load_model
    clock: Callable[[], float] = time.monotonic
    model: LoadedModel | None = None
    error: str | None = None  # the full cause, for the log and the operator
    reason: str | None = None  # the public category, for the 503 body
    _last_attempt: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def holding(cls, model: LoadedModel, settings: FunctionSettings) -> ModelSlot:
        return cls(settings=settings, model=model)

    def load(self) -> None:
        """Try to load now; on failure keep the reason (logged) instead of raising."""
        self._last_attempt = self.clock()
        try:
            model = self.loader(self.settings)
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
        self.model, self.error, self.reason = model, None, None
        logger.info(
            "model loaded",
            extra={
                "model": model.manifest.name,
                "version": model.manifest.version,
                "alias": self.settings.alias,
                "seconds": round(model.load_seconds, 3),
            },
        )

    def get(self) -> LoadedModel:
        """The loaded model; retries a failed load once `load_retry_s` passed since the last try."""
        if self.model is not None:
            return self.model
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

    def _wait(self) -> float:
        if self._last_attempt is None:
            return 0.0
        return self._last_attempt + self.settings.load_retry_s - self.clock()
