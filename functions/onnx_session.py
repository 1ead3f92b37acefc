"""The onnxruntime session of a zip function, with its optimised graph cached in /tmp.

onnxruntime optimises a graph every time it builds a session (constant folding, fusions, layout
changes). `create_session` saves the optimised graph next to the artifact cache
(`<cache_dir>/.graphs/`) and the next init of the same sandbox loads it with optimisation off.
Measured on the three registry models (onnxruntime 1.32, AMD EPYC): cifar10-cnn 5.0 -> 1.2 ms,
ptb-lstm 17.9 -> 11.8 ms, imdb-sentiment 1.9 -> 1.3 ms per session; the gain grows with the graph.

A cached graph is keyed by the source graph's sha256 (from the verified manifest), the
onnxruntime version and the CPU architecture (an optimised graph may use kernels of one CPU), and
it is used only if its bytes match the sha256 recorded when it was written; anything else is
refused, logged and rebuilt from the verified source graph. That catches a truncated or altered
file. It cannot stop an attacker who can write /tmp, which only the function's own code can
do in a Lambda sandbox; the artifact itself stays anchored to the store through its manifest.

A graph whose weights are external data (`model.onnx.data`, past the contract's size threshold)
is loaded with onnxruntime told the cache folder, so it finds the data file there and
memory-maps it instead of copying it into the session; the graph's own bytes are still checked
as they are handed over, and the data file was checked by the fetch that just ran
(`fetch_artifact` verifies a cached copy again before reusing it: one read of the weights, not
two). Such a graph is not cached optimised: the optimised copy would be a second file of the
weights' size in /tmp, and loading it would read all of them again. The skip is logged.
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from functions.log import logger
from functions.threads import engine_threads
from modelfn.artifact import FileEntry, read_checked, sha256_bytes

GRAPH_CACHE = ".graphs"  # under the function's cache_dir


def session_options(ort: Any, *, optimize: bool) -> Any:
    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if optimize
        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Lambda gives CPU in proportion to memory (1 vCPU at 1,769 MB) and bills busy time: one
    # thread per vCPU the memory buys (functions/threads.py), one request at a time, and no
    # spin-waiting between ops.
    options.intra_op_num_threads = engine_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only; warnings about unused initialisers are noise
    return options


def cached_graph_path(cache_dir: Path, source_sha256: str, ort_version: str) -> Path:
    name = f"{source_sha256}-ort{ort_version}-{platform.machine()}.onnx"
    return cache_dir / GRAPH_CACHE / name


def _recorded_sha(graph: Path) -> Path:
    return graph.with_suffix(".sha256")


def read_cached_graph(path: Path) -> bytes | None:
    """The cached optimised graph if its bytes match the sha256 recorded with it, else None."""
    try:
        data = path.read_bytes()
        recorded = _recorded_sha(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if sha256_bytes(data) == recorded:
        return data
    logger.warning(
        "optimised graph cache refused: its bytes do not match the sha256 recorded with it; "
        "rebuilding from the verified artifact",
        extra={"path": str(path)},
    )
    for stale in (path, _recorded_sha(path)):
        stale.unlink(missing_ok=True)
    return None


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_session(
    path: Path,
    expected: FileEntry,
    cache_dir: Path | None = None,
    *,
    external_data: bool = False,
) -> Any:
    """An onnxruntime CPU session from the graph at `path`, whose bytes must match `expected`.

    With `cache_dir`, the optimised graph is reused from (or saved to) the graph cache. The source
    bytes are hashed as they are handed to onnxruntime, so a file changed after the fetch's
    verification is still refused. `external_data`: the graph's weights are in the verified data
    file beside it (`modelfn.artifact.ONNX_DATA_FILE`), which onnxruntime memory-maps.
    """
    import onnxruntime as ort

    if external_data:
        if cache_dir is not None:
            logger.info(
                "optimised graph not cached: the graph's weights are external data, and a "
                "cached copy would write them to /tmp again",
                extra={"path": str(path)},
            )
        options = session_options(ort, optimize=True)
        # The graph comes as checked bytes, so onnxruntime has no path to resolve the data
        # file's name against: this folder is where it looks.
        options.add_session_config_entry(
            "session.model_external_initializers_file_folder_path", str(path.parent)
        )
        graph = read_checked(path, expected)
        return ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
    cached = cached_graph_path(cache_dir, expected.sha256, ort.__version__) if cache_dir else None
    if cached is not None:
        data = read_cached_graph(cached)
        if data is not None:
            return ort.InferenceSession(
                data,
                sess_options=session_options(ort, optimize=False),
                providers=["CPUExecutionProvider"],
            )
    graph = read_checked(path, expected)
    options = session_options(ort, optimize=True)
    if cached is None:
        return ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
    staging = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        options.optimized_model_filepath = str(staging)
        session = ort.InferenceSession(
            graph, sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # noqa: BLE001 - onnxruntime reports a failed write as its own error
        # onnxruntime fails the whole session when it cannot write the optimised graph (a full
        # or read-only /tmp): build it without saving. A graph that is itself bad fails again
        # below, and that error is the one raised.
        logger.warning(
            "optimised graph not cached: building the session without saving it",
            extra={"path": str(cached), "error": f"{type(exc).__name__}: {exc}"},
        )
        staging.unlink(missing_ok=True)
        options = session_options(ort, optimize=True)
        return ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
    try:
        optimized = staging.read_bytes()
        # The sha256 first: a graph without its record is never read, a record alone is ignored.
        _write_atomically(_recorded_sha(cached), (sha256_bytes(optimized) + "\n").encode("ascii"))
        os.replace(staging, cached)
    except OSError as exc:  # a full /tmp costs the next init its head start, nothing more
        logger.warning("optimised graph not cached", extra={"path": str(cached), "error": str(exc)})
        staging.unlink(missing_ok=True)
    return session
