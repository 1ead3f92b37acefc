"""Will the imported version fit the function that serves it? Checked before anything is written.

/tmp (`serving.ephemeral_storage_mb`) holds the fetched version (every file of it) and
onnxruntime's optimised graph, which functions/onnx_session.py caches beside it and which is about
the graph's size again (ResNet-18: 44.7 MB graph, 44.7 MB optimised). A live alias move fetches
the next version while this one is still cached, so two versions are a warning.

Memory (`serving.memory_mb`) holds the function process and the loaded session. Assumed, from
measurements here (onnxruntime 1.32, CPU): the process without a model is about BASE_MB (the
functions' peak RSS with their small graphs, docs/benchmarks.md: 127 to 144 MB), and a session
costs SESSION_FACTOR x the graph's bytes at its peak (ResNet-18, 42.7 MiB graph read as the
function reads it, then the session built and run once: 179 MiB more, 4.2x). Requests' tensors
need the rest, so a version that leaves less than a quarter of the memory free is a warning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from importing.errors import ImportRefused
from modelfn.registry import ServingEntry

MB = 1 << 20  # Lambda's "MB" settings are mebibytes
BASE_MB = 140
SESSION_FACTOR = 4
HEADROOM = 0.75  # warn above this share of memory_mb
LAMBDA_MAX_MB = 10240  # both memory and /tmp
STEP_MB = 64  # suggested sizes are rounded up to this


def check_budget(
    file_bytes: Mapping[str, int],
    graph_bytes: int,
    serving: ServingEntry,
    log: Callable[[str], None],
) -> None:
    """ImportRefused if the version cannot fit `serving`'s /tmp or memory; warnings via `log`."""
    version_mb = sum(file_bytes.values()) / MB
    graph_mb = graph_bytes / MB
    disk_mb = version_mb + graph_mb
    storage = serving.ephemeral_storage_mb
    if disk_mb > storage:
        raise ImportRefused(
            f"the version needs about {disk_mb:.0f} MB of /tmp ({version_mb:.0f} MB of files "
            f"and {graph_mb:.0f} MB for onnxruntime's optimised-graph cache), over "
            f"serving.ephemeral_storage_mb = {storage}; "
            + _setting("ephemeral_storage_mb", "--ephemeral-storage-mb", 2 * disk_mb)
        )
    if 2 * disk_mb > storage:
        log(
            f"warning: serving.ephemeral_storage_mb = {storage} holds this version "
            f"({disk_mb:.0f} MB with the graph cache) but not two: a live alias move fetches the "
            "next version beside it and the fetch fails for lack of room; "
            + _setting("ephemeral_storage_mb", "--ephemeral-storage-mb", 2 * disk_mb)
        )
    memory_mb = BASE_MB + SESSION_FACTOR * graph_mb
    memory = serving.memory_mb
    assumed = (
        f"about {memory_mb:.0f} MB: {BASE_MB} MB for the function process and "
        f"{SESSION_FACTOR}x the {graph_mb:.0f} MB graph for the onnxruntime session"
    )
    if memory_mb > memory:
        raise ImportRefused(
            f"the loaded model needs {assumed}, over serving.memory_mb = {memory}; "
            + _setting("memory_mb", "--memory-mb", memory_mb / HEADROOM)
        )
    if memory_mb > HEADROOM * memory:
        log(
            f"warning: the loaded model needs {assumed}, over {HEADROOM:.0%} of serving.memory_mb "
            f"= {memory}, leaving little for requests' tensors; "
            + _setting("memory_mb", "--memory-mb", memory_mb / HEADROOM)
        )


def _setting(key: str, flag: str, wanted_mb: float) -> str:
    value = max(
        512 if key == "ephemeral_storage_mb" else 128, STEP_MB * math.ceil(wanted_mb / STEP_MB)
    )
    if value > LAMBDA_MAX_MB:
        return (
            f"that is more than Lambda's {LAMBDA_MAX_MB} MB, so this model is too large for a "
            "function: make the graph smaller (fewer or smaller weights, fp16)"
        )
    return (
        f"set serving.{key} = {value} in models.toml (or {flag} {value} for a new "
        "modelfn import entry)"
    )
