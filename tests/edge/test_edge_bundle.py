"""The bundle's bytes: deterministic on re-export, refused when any member is altered."""

from __future__ import annotations

import ast
import gzip
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from edge.bundle import (
    FP32_GRAPH,
    INT8_GRAPH,
    MANIFEST_FILE,
    RUNNER_FILE,
    SUMS_FILE,
    extract_bundle,
    read_bundle,
    verify_bundle,
)
from edge.export import ExportResult
from edge.standalone_runner import BundleError, open_bundle
from modelfn.artifact import ArtifactError, IntegrityError
from tests.edge.conftest import export
from tools.cli import main


def rewrite(source: Path, target: Path, change: dict[str, bytes]) -> Path:
    """A copy of the bundle with some members' bytes replaced (SHA256SUMS left as it was)."""
    buffer = io.BytesIO()
    with tarfile.open(source, "r:gz") as old, tarfile.open(fileobj=buffer, mode="w") as new:
        for info in old:
            data = old.extractfile(info).read()  # type: ignore[union-attr]
            data = change.get(info.name.split("/", 1)[1], data)
            info.size = len(data)
            new.addfile(info, io.BytesIO(data))
    target.write_bytes(gzip.compress(buffer.getvalue()))
    return target


@pytest.mark.parametrize(
    ("name", "artifact", "bundle"),
    [("cifar10-cnn", "cifar_artifact", "cifar_bundle"), ("ptb-lstm", "ptb_artifact", "ptb_bundle")],
)
def test_re_export_is_byte_identical(
    name: str, artifact: str, bundle: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # Static (calibrated) and dynamic quantization both repeat exactly, and so does the parity.
    first: ExportResult = request.getfixturevalue(bundle)
    again = export(name, request.getfixturevalue(artifact), tmp_path)
    assert again.path.read_bytes() == first.path.read_bytes()


def test_members_have_fixed_order_times_and_owners(imdb_bundle: ExportResult) -> None:
    raw = imdb_bundle.path.read_bytes()
    assert raw[4:8] == b"\0\0\0\0"  # gzip header MTIME
    with tarfile.open(imdb_bundle.path, "r:gz") as tar:
        infos = tar.getmembers()
    names = [i.name.split("/", 1)[1] for i in infos]
    assert names[0] == SUMS_FILE and names[1:] == sorted(names[1:])
    assert {FP32_GRAPH, MANIFEST_FILE, RUNNER_FILE, "requirements.txt", "vocab.json"} <= set(names)
    assert {(i.mtime, i.uid, i.gid, i.uname, i.gname) for i in infos} == {(0, 0, 0, "root", "root")}
    assert {i.name.split("/")[0] for i in infos} == {
        imdb_bundle.path.name.removesuffix(".edge.tar.gz")
    }


def test_manifest_names_its_source_and_figures(
    cifar_bundle: ExportResult, cifar_artifact: Path
) -> None:
    from modelfn.artifact import sha256_file

    manifest, members = read_bundle(cifar_bundle.path)
    assert manifest.source_manifest_sha256 == sha256_file(cifar_artifact / MANIFEST_FILE)
    assert manifest.opset >= 13 and manifest.onnxruntime.startswith(">=")
    assert manifest.quantization.mode == "static-qdq"
    assert {"fp32_accuracy", "int8_accuracy", "label_agreement", "size_ratio"} <= set(
        manifest.parity
    )
    assert (INT8_GRAPH in members) == manifest.quantization.shipped
    # The weight scales the quantizer kept agree with fp32 on at least as many held-out
    # training images as the ones it dropped (edge/quantize.py).
    parity = manifest.parity
    chosen, other = ("per_channel", "per_tensor")[:: 1 if parity["per_channel"] else -1]
    assert parity[f"held_out_agreement_{chosen}"] >= parity[f"held_out_agreement_{other}"]
    assert parity["held_out_images"] > 0
    assert b"Pillow".lower() in members["requirements.txt"].lower()
    # tokenizers only inside the Hugging Face tokenizer's class: a bundle of another model never
    # reaches it, and only a Hugging Face text model's requirements.txt lists it.
    assert (
        runner_imports(members[RUNNER_FILE])
        <= {"numpy", "onnxruntime", "PIL", "tokenizers"} | sys.stdlib_module_names
    )
    assert b"tokenizers" not in members["requirements.txt"]


def runner_imports(source: bytes) -> set[str]:
    """Top-level modules the runner imports anywhere (functions too): no torch, no modelfn."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("member", [FP32_GRAPH, MANIFEST_FILE, RUNNER_FILE])
def test_a_tampered_member_is_refused(
    cifar_bundle: ExportResult, tmp_path: Path, member: str
) -> None:
    _, members = read_bundle(cifar_bundle.path)
    bad = rewrite(
        cifar_bundle.path, tmp_path / cifar_bundle.path.name, {member: members[member] + b" "}
    )
    with pytest.raises(IntegrityError, match=f"{member} does not match its sha256"):
        read_bundle(bad)
    assert main(["verify-bundle", str(bad)]) == 2


def test_the_runner_checks_sums_before_it_loads_a_graph(
    cifar_bundle: ExportResult, tmp_path: Path
) -> None:
    folder = extract_bundle(cifar_bundle.path, tmp_path)
    # Not a graph at all: onnxruntime would fail on it, so the error proves the sums came first.
    (folder / FP32_GRAPH).write_bytes(b"not an onnx graph")
    with pytest.raises(BundleError, match="does not match SHA256SUMS; refusing to load"):
        open_bundle(folder, fp32=True)
    done = subprocess.run(
        [sys.executable, str(folder / RUNNER_FILE), "--self-test"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "refusing to load" in done.stderr
    (folder / "extra.onnx").write_bytes(b"")
    with pytest.raises(BundleError, match="does not list"):
        open_bundle(folder)


def test_verify_bundle_runs_the_self_test(
    ptb_bundle: ExportResult, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, report = verify_bundle(ptb_bundle.path)
    assert f"{len(manifest.self_test)}/{len(manifest.self_test)} agree" in report
    assert main(["verify-bundle", str(ptb_bundle.path)]) == 0
    assert "checksums match" in capsys.readouterr().out


def test_not_a_bundle_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x.edge.tar.gz"
    path.write_bytes(b"plain text")
    with pytest.raises(ArtifactError, match="not a readable .tar.gz bundle"):
        read_bundle(path)
