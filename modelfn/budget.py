"""Will a version fit the function that serves it? /tmp, memory and the init window, per model.

One computation for every place that can say so before a function fails at 3 a.m.: `modelfn
import` (before anything is written) and `modelfn package` (for the version the alias names).
Each finding names the setting in models.toml and a value that would work.

/tmp (`serving.ephemeral_storage_mb`) holds the fetched version (every file of it) and
onnxruntime's optimised graph, which functions/onnx_session.py caches beside it and which is about
the graph's size again (ResNet-18: 44.7 MB graph, 44.7 MB optimised). A live alias move fetches
the next version while this one is still cached, so room for one version but not two is a
warning.

Memory (`serving.memory_mb`) holds the function process and the loaded session. Assumed, from
measurements here (onnxruntime 1.32, CPU): the process without a model is about BASE_MB (the
functions' peak RSS with their small graphs, docs/benchmarks.md: 127 to 144 MB), and a session
costs SESSION_FACTOR x the graph's bytes at its peak (ResNet-18, 42.7 MiB graph read as the
function reads it, then the session built and run once: 179 MiB more, 4.2x). Weights kept as
external data (`model.onnx.data`, graphs over the artifact's EXTERNAL_DATA_THRESHOLD) are
memory-mapped, EXTERNAL_FACTOR x their bytes (512 MiB of weights: 1.05x, `python -m
bench.graph_rss`, docs/serving.md), and such a graph gets no optimised-graph cache in /tmp.
Requests' tensors need the rest, so a version that leaves less than a quarter of the memory free
is a warning.

Init: Lambda gives an on-demand environment's init phase 10 s; past it, init is retried inside
the first request, within the function's timeout. Provisioned concurrency and SnapStart are not
held to the 10 s (their init may run for the larger of 130 s and the timeout). The estimate is
BASE_INIT_S (the runtime, imports and app without the model) plus the version's bytes at
FETCH_MB_S (S3 to the function) plus the graph's at SESSION_MB_S (onnxruntime builds the
session; memory-mapped external weights at EXTERNAL_SESSION_MB_S). See the constants for where
each number comes from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from modelfn.artifact import ONNX_DATA_FILE, SERVED_GRAPH, Precision, unread_by

if TYPE_CHECKING:  # the function ships this module for canary_refusal, not the registry
    from modelfn.registry import ServingEntry

MB = 1 << 20  # Lambda's "MB" settings are mebibytes
BASE_MB = 140
SESSION_FACTOR = 4
EXTERNAL_FACTOR = 1.1  # 1.05x measured, rounded up
HEADROOM = 0.75  # warn above this share of memory_mb
LAMBDA_MAX_MB = 10240  # both memory and /tmp
STEP_MB = 64  # suggested sizes are rounded up to this
SNAPSTART_MAX_TMP_MB = 512  # SnapStart does not support more ephemeral storage

INIT_WINDOW_S = 10.0  # an on-demand environment's init phase (Lambda's execution environment docs)
WARM_START_INIT_S = 130.0  # provisioned concurrency and SnapStart: the larger of this and timeout_s
# The cifar10-cnn function's cold start from its /tmp cache in `make bench` (docs/benchmarks.md:
# 0.57 s), rounded up: runtime start, imports, the app, a 2 MB model.
BASE_INIT_S = 0.6
# S3 to a function, one GET stream at a time (what modelfn/store fetches with today). An
# assumption, not a figure measured here (no AWS account on the build machines); issue 22's size
# sweep measures fetch speed against the link it runs on.
FETCH_MB_S = 50.0
# onnxruntime 1.32 building a session from a 42.7 MiB ResNet-18 graph on the 2-core build
# machine under load: 57 MB/s on the first load (0.75 s), faster once the file was cached.
SESSION_MB_S = 50.0
# Weights kept as external data are memory-mapped, not parsed and copied: the size sweep's bare
# session (`python -m bench.sweep`, docs/benchmarks.md) built 1000 MB in 1.22 s and 2000 MB in
# 3.90 s with the file in the page cache; issue 22's 2.2 GB BERT took 10.6 s with a cold page
# cache. The cold figure, rounded down, since a new environment's page cache is cold.
EXTERNAL_SESSION_MB_S = 200.0

Level = Literal["refused", "warning"]


@dataclass(frozen=True)
class Finding:
    level: Level
    setting: str  # the models.toml key under [models.NAME.serving] that changes it
    message: str  # says what, the figures and the value that would work
    value: int | None = None  # the setting's value that would work, where one does


@dataclass(frozen=True)
class Budget:
    """What the version needs of its function, and what does not fit."""

    disk_mb: float  # /tmp: the version's files and the optimised-graph cache
    memory_mb: float  # the process and the loaded session, at its peak
    init_s: float  # the estimated init of a fresh environment that fetches the version
    findings: list[Finding] = field(default_factory=list)

    @property
    def refusals(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "refused"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def summary(self) -> str:
        return (
            f"/tmp {self.disk_mb:.0f} MB, memory about {self.memory_mb:.0f} MB, "
            f"init about {self.init_s:.1f} s"
        )


def version_budget(file_bytes: Mapping[str, int], serving: ServingEntry) -> Budget:
    """The budget of a version of these files (name -> bytes, `model.onnx` among them, and
    `model.onnx.data` where its weights are external) served by an onnxruntime function with
    `serving` (the torch image's session is eager torch: `modelfn package` says it is not
    computed there). At `serving.precision = "int8"` the graph is `model.int8.onnx`, one file,
    and the fp32 graph is neither fetched nor counted."""
    # The files the function fetches into /tmp: not those its runtime never opens.
    skip = unread_by(serving.runtime, serving.precision)
    fetched = {k: v for k, v in file_bytes.items() if k not in skip}
    version_mb = sum(fetched.values()) / MB
    # The graph it serves, with its weights; the int8 graph is always one file.
    graph_mb, data_mb = _graph_mb(file_bytes, serving.precision)
    cache_mb = 0.0 if data_mb else graph_mb  # the optimised-graph cache, one-file graphs only
    disk_mb = version_mb + cache_mb
    session_mb = session_memory_mb(file_bytes, serving.precision)
    memory_mb = BASE_MB + session_mb
    load_s = (graph_mb - data_mb) / SESSION_MB_S + data_mb / EXTERNAL_SESSION_MB_S
    init_s = BASE_INIT_S + version_mb / FETCH_MB_S + load_s
    findings = [
        *_tmp(disk_mb, version_mb, cache_mb, serving),
        *_memory(memory_mb, session_mb, graph_mb, serving),
        *_init(init_s, version_mb, graph_mb, load_s, serving),
    ]
    return Budget(disk_mb, memory_mb, init_s, findings)


def _graph_mb(file_bytes: Mapping[str, int], precision: Precision) -> tuple[float, float]:
    """(the served graph with its weights, the weights kept as external data), in MB."""
    data_mb = file_bytes.get(ONNX_DATA_FILE, 0) / MB if precision == "fp32" else 0.0
    return file_bytes.get(SERVED_GRAPH[precision], 0) / MB + data_mb, data_mb


def session_memory_mb(file_bytes: Mapping[str, int], precision: Precision) -> float:
    """The loaded session of a version of these files, at its peak (the module docstring)."""
    graph_mb, data_mb = _graph_mb(file_bytes, precision)
    return SESSION_FACTOR * (graph_mb - data_mb) + EXTERNAL_FACTOR * data_mb


def canary_memory_mb(
    stable: Mapping[str, int], canary: Mapping[str, int], precision: Precision
) -> float:
    """The memory of a function that holds two versions (a canary rollout, docs/serving.md): one
    process, and the session of each."""
    return BASE_MB + session_memory_mb(stable, precision) + session_memory_mb(canary, precision)


def canary_refusal(
    stable: Mapping[str, int], canary: Mapping[str, int], precision: Precision, memory_mb: int
) -> str | None:
    """Why a function of `memory_mb` cannot hold both versions at once, or None where it can."""
    needed = canary_memory_mb(stable, canary, precision)
    if needed <= memory_mb:
        return None
    return (
        f"the stable and canary versions together need about {needed:.0f} MB of memory "
        f"(the process, {BASE_MB} MB, and both sessions), over serving.memory_mb = "
        f"{memory_mb}; {_setting('memory_mb', needed / HEADROOM)[1]}, "
        "or move the alias to the version whole"
    )


def _tmp(
    disk_mb: float, version_mb: float, cache_mb: float, serving: ServingEntry
) -> list[Finding]:
    storage = serving.ephemeral_storage_mb
    value, change = _setting("ephemeral_storage_mb", 2 * disk_mb)
    if disk_mb > storage:
        return [
            Finding(
                "refused",
                "ephemeral_storage_mb",
                f"the version needs about {disk_mb:.0f} MB of /tmp ({version_mb:.0f} MB of files "
                f"and {cache_mb:.0f} MB for onnxruntime's optimised-graph cache), over "
                f"serving.ephemeral_storage_mb = {storage}; {change}",
                value,
            )
        ]
    if 2 * disk_mb > storage:
        return [
            Finding(
                "warning",
                "ephemeral_storage_mb",
                f"serving.ephemeral_storage_mb = {storage} holds this version ({disk_mb:.0f} MB "
                "with the graph cache) but not two: a live alias move fetches the next version "
                f"beside it and the fetch fails for lack of room; {change}",
                value,
            )
        ]
    return []


def _memory(
    memory_mb: float, session_mb: float, graph_mb: float, serving: ServingEntry
) -> list[Finding]:
    memory = serving.memory_mb
    share = f"{session_mb / graph_mb:.1f}x" if graph_mb else "nothing for"
    if graph_mb and session_mb == SESSION_FACTOR * graph_mb:
        share = f"{SESSION_FACTOR}x"  # a one-file graph: the factor as the docs state it
    assumed = (
        f"about {memory_mb:.0f} MB: {BASE_MB} MB for the function process and "
        f"{share} the {graph_mb:.0f} MB graph for the onnxruntime session"
    )
    value, change = _setting("memory_mb", memory_mb / HEADROOM)
    if memory_mb > memory:
        return [
            Finding(
                "refused",
                "memory_mb",
                f"the loaded model needs {assumed}, over serving.memory_mb = {memory}; {change}",
                value,
            )
        ]
    if memory_mb > HEADROOM * memory:
        return [
            Finding(
                "warning",
                "memory_mb",
                f"the loaded model needs {assumed}, over {HEADROOM:.0%} of serving.memory_mb = "
                f"{memory}, leaving little for requests' tensors; {change}",
                value,
            )
        ]
    return []


def _init(
    init_s: float, version_mb: float, graph_mb: float, load_s: float, serving: ServingEntry
) -> list[Finding]:
    if init_s <= INIT_WINDOW_S:
        return []
    estimate = (
        f"a fresh environment's init takes about {init_s:.0f} s ({BASE_INIT_S} s to start, "
        f"{version_mb:.0f} MB fetched at {FETCH_MB_S:.0f} MB/s, a {graph_mb:.0f} MB graph "
        f"loaded in {load_s:.1f} s)"
    )
    if serving.snapstart or serving.provisioned_concurrency is not None:
        limit = max(WARM_START_INIT_S, serving.timeout_s)
        if init_s <= limit:
            return []
        return [
            Finding(
                "refused",
                "provisioned_concurrency" if not serving.snapstart else "snapstart",
                f"{estimate}, over the {limit:.0f} s init that provisioned concurrency and "
                "SnapStart allow: make the version smaller (fewer or smaller weights, fp16)",
            )
        ]
    timeout = serving.timeout_s
    past = (
        f"{estimate}, past the {INIT_WINDOW_S:.0f} s Lambda gives an on-demand init; Lambda then "
        f"retries init inside the first request, within serving.timeout_s = {timeout}"
    )
    if init_s > timeout:
        return [
            Finding(
                "refused",
                "provisioned_concurrency",
                f"{past}, so every cold start times out; {_warm_start(serving)}",
            )
        ]
    return [
        Finding(
            "warning",
            "provisioned_concurrency",
            f"{past}, so every cold start answers its first request about {init_s:.0f} s late; "
            f"{_warm_start(serving)}",
        )
    ]


def _warm_start(serving: ServingEntry) -> str:
    """How to take init out of the request path with this function's settings."""
    keep_warm = (
        "set [models.NAME.serving.provisioned_concurrency] min = 1, max = 2 (environments "
        "initialised before requests arrive, billed while idle)"
    )
    if serving.runtime == "onnxruntime" and serving.ephemeral_storage_mb <= SNAPSTART_MAX_TMP_MB:
        return (
            f"set serving.snapstart = true (init runs when a version is published), or {keep_warm}"
        )
    return keep_warm


def _setting(key: str, wanted_mb: float) -> tuple[int | None, str]:
    """(the value that would work or None past Lambda's limit, what to do)."""
    value = max(
        512 if key == "ephemeral_storage_mb" else 128, STEP_MB * math.ceil(wanted_mb / STEP_MB)
    )
    if value > LAMBDA_MAX_MB:
        return None, (
            f"that is more than Lambda's {LAMBDA_MAX_MB} MB, so this model is too large for a "
            "function: make the graph smaller (fewer or smaller weights, fp16)"
        )
    return value, f"set serving.{key} = {value} in models.toml"
