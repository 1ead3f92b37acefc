"""One model's function in its own process, like a Lambda execution environment.

The process imports `functions.handler` (the init phase: the model is fetched and loaded there,
outside any request), then answers one event at a time with the same `handler` Lambda calls.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from tools.local.lambda_context import LocalLambdaContext

# Lambda's init phase is capped at 10 s for on-demand functions; locally we allow more because the
# first import also warms the OS page cache.
INIT_TIMEOUT_S = 120.0
# What Lambda runs: the `handler` setting of the CDK function, "module:attribute" here.
LAMBDA_HANDLER = "functions.handler:handler"


def _serve(
    conn: Connection,
    env: dict[str, str],
    memory_mb: int,
    timeout_s: int,
    handler_ref: str,
    log_path: str | None,
) -> None:
    import importlib

    if log_path is not None:
        # What the function prints (its JSON log and EMF lines) goes where Lambda sends it to
        # CloudWatch: one file per function, instead of the terminal of `modelfn serve`.
        log = open(log_path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - open for the process's life
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ.update(env)
    started = time.perf_counter()
    try:
        module, _, attribute = handler_ref.partition(":")
        handler = getattr(importlib.import_module(module), attribute)
    except BaseException:  # noqa: BLE001 - the parent reports it; a Lambda init failure looks alike
        conn.send(("init_error", traceback.format_exc()))
        return
    conn.send(("ready", (time.perf_counter() - started) * 1000))
    while True:
        try:
            event = conn.recv()
        except EOFError:
            return
        if event is None:
            return
        context = LocalLambdaContext(
            function_name=env["MODELFN_MODEL"], memory_limit_in_mb=memory_mb, timeout_s=timeout_s
        )
        try:
            conn.send(("ok", handler(event, context)))
        except BaseException:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))


class WorkerError(RuntimeError):
    """The function process failed to start, crashed or timed out."""


@dataclass
class LocalFunction:
    """A running function process for one model; `invoke` is serialised, like one Lambda sandbox."""

    name: str
    env: dict[str, str]
    memory_mb: int
    timeout_s: int
    handler_ref: str = LAMBDA_HANDLER
    log_path: Path | None = None  # the function's stdout and stderr; None: this process's own
    init_ms: float = 0.0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None

    def start(self) -> None:
        # spawn, not fork: each function starts from a fresh interpreter, as a cold start does.
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_serve,
            args=(
                child,
                self.env,
                self.memory_mb,
                self.timeout_s,
                self.handler_ref,
                None if self.log_path is None else str(self.log_path),
            ),
            name=f"modelfn-fn-{self.name}",
            daemon=True,
        )
        self._process.start()
        child.close()
        self._conn = parent

    @property
    def pid(self) -> int | None:
        """The function's process id while it runs (RSS readings under load), else None."""
        return None if self._process is None else int(self._process.pid)

    def wait_ready(self, timeout: float = INIT_TIMEOUT_S) -> float:
        assert self._conn is not None
        if not self._conn.poll(timeout):
            self.stop()
            raise WorkerError(f"function {self.name}: init did not finish within {timeout:.0f} s")
        kind, payload = self._conn.recv()
        if kind != "ready":
            self.stop()
            raise WorkerError(f"function {self.name}: init failed:\n{payload}")
        self.init_ms = float(payload)
        return self.init_ms

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._conn is None or not self._process.is_alive():
                self._restart()
            assert self._conn is not None
            self._conn.send(event)
            if not self._conn.poll(self.timeout_s):
                # Lambda stops a function at its timeout; the next request gets a fresh sandbox.
                self._restart()
                raise WorkerError(f"function {self.name}: timed out after {self.timeout_s} s")
            try:
                kind, payload = self._conn.recv()
            except EOFError:
                self._restart()
                raise WorkerError(
                    f"function {self.name}: process exited during the request"
                ) from None
            if kind != "ok":
                raise WorkerError(f"function {self.name}: handler raised:\n{payload}")
            return dict(payload)

    def _restart(self) -> None:
        self.stop()
        self.start()
        self.wait_ready()

    def stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None
