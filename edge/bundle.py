"""The edge bundle contract: what `<model>-<version>.edge.tar.gz` holds, byte for byte.

A bundle is one gzip'd tar of a single folder `<model>-<version>/` holding `manifest.json` (an
`EdgeManifest`), `SHA256SUMS` (sha256sum's format, over every other member), the runner `run.py`
with its `requirements.txt`, `model.onnx` (fp32), `model.int8.onnx` where quantization paid, and the
vocabulary for text models (a Hugging Face text model's `tokenizer.json`). The same members give the same bytes: fixed order, mtime 0, owner
root:root, fixed modes, and a gzip header without name or time, so a re-export of an artifact is
byte-identical and its sha256 names it.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelfn.artifact import (
    ArtifactError,
    IntegrityError,
    Preprocessing,
    Scores,
    TensorSpec,
    sha256_bytes,
)

EDGE_SCHEMA_VERSION: Final = 1
SUMS_FILE = "SHA256SUMS"
MANIFEST_FILE = "manifest.json"
RUNNER_FILE = "run.py"
REQUIREMENTS_FILE = "requirements.txt"
FP32_GRAPH = "model.onnx"
INT8_GRAPH = "model.int8.onnx"
BUNDLE_SUFFIX = ".edge.tar.gz"
# The range the project's own serving dependency declares (pyproject.toml); the graphs are
# exported and quantized for, and tested with, a version inside it.
ONNXRUNTIME_RANGE = ">=1.18,<2"
_EXECUTABLE = {RUNNER_FILE}
_GZIP_LEVEL = 9  # part of the bytes: a different level is a different bundle


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Graphs(_Strict):
    fp32: str = FP32_GRAPH
    int8: str | None = Field(default=None, description="Absent when quantization was refused.")


class Quantization(_Strict):
    mode: Literal["dynamic", "static-qdq"]
    shipped: bool = Field(description="False when the int8 graph lost more than the threshold.")
    reason: str = Field(description="Why int8 ships or does not, with the figures.")
    threshold: str = Field(description="The registry's limit, in words.")


class SelfTestCase(_Strict):
    input: str = Field(description="Text, or a base64 PNG for images.")
    mode: str = "next-words"
    expected: dict[str, str] = Field(
        description="Graph precision -> the answer recorded at export: a label, a word, a "
        "generation, or a feature extractor's embedding as a JSON list (run.py accepts one within "
        "its EMBEDDING_TOLERANCE)."
    )


class EdgeManifest(_Strict):
    schema_version: Literal[1] = EDGE_SCHEMA_VERSION
    model: str
    version: str
    task: str
    source_manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    opset: int
    onnxruntime: str = ONNXRUNTIME_RANGE
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preprocessing: Preprocessing
    labels: list[str]
    scores: Scores = "softmax"  # a classifier's, as the function answers (modelfn.artifact)
    graphs: Graphs
    quantization: Quantization
    # Only figures that repeat exactly belong here (the bundle is byte-identical on re-export);
    # latency is measured at export and reported beside the bundle, not in it.
    parity: dict[str, float]
    test_data: str = Field(
        default="",
        description="Where the parity figures' test examples (and int8's calibration images) "
        "came from.",
    )
    self_test: list[SelfTestCase]

    def to_json(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode("utf-8")


def bundle_name(model: str, version: str) -> str:
    return f"{model}-{version}{BUNDLE_SUFFIX}"


def sums_text(members: dict[str, bytes]) -> bytes:
    return "".join(
        f"{sha256_bytes(data)}  {name}\n" for name, data in sorted(members.items())
    ).encode()


# --- writing ------------------------------------------------------------------------------------


def write_bundle(path: Path, manifest: EdgeManifest, files: dict[str, bytes]) -> Path:
    """Write the bundle of `manifest` and `files` (every member but the manifest and sums)."""
    members = {MANIFEST_FILE: manifest.to_json(), **files}
    ordered = {SUMS_FILE: sums_text(members), **dict(sorted(members.items()))}
    folder = path.name.removesuffix(BUNDLE_SUFFIX)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in ordered.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size, info.mtime = len(data), 0
            info.mode = 0o755 if name in _EXECUTABLE else 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    compressed = io.BytesIO()
    # filename="" and mtime=0 keep the gzip header free of the path and the clock.
    with gzip.GzipFile(
        filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=_GZIP_LEVEL
    ) as gz:
        gz.write(raw.getvalue())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(compressed.getvalue())
    return path


# --- reading and verifying ------------------------------------------------------------------------


def read_bundle(path: Path) -> tuple[EdgeManifest, dict[str, bytes]]:
    """The manifest and every member's bytes, after SHA256SUMS is checked; nothing is loaded.

    Raises IntegrityError for a member whose bytes differ from SHA256SUMS, one it does not list,
    or one missing; ArtifactError for anything that is not a plain-file bundle.
    """
    members: dict[str, bytes] = {}
    folders = set()
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            for info in tar:
                folder, _, name = info.name.partition("/")
                folders.add(folder)
                if (
                    len(folders) > 1
                    or not info.isfile()
                    or "/" in name
                    or not name
                    or name.startswith(".")
                ):
                    raise ArtifactError(
                        f"{path}: member {info.name!r} is not a plain file of the bundle folder"
                    )
                handle = tar.extractfile(info)
                assert handle is not None  # a regular file always has contents
                members[name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArtifactError(f"{path} is not a readable .tar.gz bundle: {exc}") from exc
    if SUMS_FILE not in members:
        raise ArtifactError(
            f"{path} has no {SUMS_FILE}; is it an edge bundle (modelfn export-edge)?"
        )
    sums = _parse_sums(members.pop(SUMS_FILE), path)
    if set(sums) != set(members):
        extra, missing = sorted(set(members) - set(sums)), sorted(set(sums) - set(members))
        raise IntegrityError(
            f"{path}: members {extra} unlisted, {missing} missing in {SUMS_FILE}; refusing to load"
        )
    for name, data in members.items():
        if sha256_bytes(data) != sums[name]:
            raise IntegrityError(
                f"{path}: {name} does not match its sha256 in {SUMS_FILE}; refusing to load"
            )
    try:
        manifest = EdgeManifest.model_validate_json(members[MANIFEST_FILE])
    except ValueError as exc:
        raise ArtifactError(f"{path}: {MANIFEST_FILE} is not a valid edge manifest: {exc}") from exc
    return manifest, members


def _parse_sums(data: bytes, path: Path) -> dict[str, str]:
    sums = {}
    for line in data.decode("utf-8", errors="replace").splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name:
            raise ArtifactError(f"{path}: {SUMS_FILE} line {line!r} is not '<sha256>  <name>'")
        sums[name] = digest
    return sums


def extract_bundle(path: Path, dest: Path) -> Path:
    """Verify, then write the members into `dest/<folder>`; return that folder."""
    _, members = read_bundle(path)
    folder = dest / path.name.removesuffix(BUNDLE_SUFFIX)
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode="r:gz") as tar:
        sums = tar.extractfile(f"{folder.name}/{SUMS_FILE}")
        assert sums is not None
        (folder / SUMS_FILE).write_bytes(sums.read())
    for name, data in members.items():
        (folder / name).write_bytes(data)
    return folder


def verify_bundle(path: Path, *, python: str = sys.executable) -> tuple[EdgeManifest, str]:
    """Check the bundle's integrity, then run its runner's self-test in a fresh process.

    `python` is the interpreter that runs `run.py` (one holding its requirements.txt). Returns the
    manifest and the self-test's report; ArtifactError when either fails.
    """
    manifest, _ = read_bundle(path)
    with tempfile.TemporaryDirectory(prefix="modelfn-edge-") as tmp:
        folder = extract_bundle(path, Path(tmp))
        done = subprocess.run(
            [python, str(folder / RUNNER_FILE), "--self-test"],
            capture_output=True,
            text=True,
            check=False,
        )
    report = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise ArtifactError(f"{path}: the bundle's self-test failed: {report}")
    return manifest, report
