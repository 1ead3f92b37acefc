from pathlib import Path

import pytest

from modelfn.artifact import (
    MANIFEST_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    ArtifactError,
    Example,
    Examples,
    IntegrityError,
    is_version,
    parse_examples,
    parse_manifest,
    read_manifest,
    read_verified,
    verify_artifact,
)
from tests.support.manifests import write_artifact


def test_round_trip(tmp_path: Path) -> None:
    folder = write_artifact(tmp_path)
    manifest = verify_artifact(folder)
    assert manifest.name == "cifar10-cnn"
    assert is_version(manifest.version) and folder.name == manifest.version
    assert set(manifest.files) == {WEIGHTS_FILE, ONNX_FILE}
    again = parse_manifest((folder / MANIFEST_FILE).read_bytes())
    assert again == manifest


@pytest.mark.parametrize("filename", [WEIGHTS_FILE, ONNX_FILE])
def test_tampered_file_is_refused(tmp_path: Path, filename: str) -> None:
    folder = write_artifact(tmp_path, weights=b"w" * 100, onnx=b"o" * 100)
    data = bytearray((folder / filename).read_bytes())
    data[10] ^= 0xFF  # same size, different bytes: only the sha256 catches it
    (folder / filename).write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=filename):
        verify_artifact(folder)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    folder = write_artifact(tmp_path)
    (folder / ONNX_FILE).write_bytes(b"o")
    with pytest.raises(IntegrityError, match="size"):
        verify_artifact(folder)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    folder = write_artifact(tmp_path)
    (folder / WEIGHTS_FILE).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        verify_artifact(folder)


def test_manifest_rejects_unknown_fields(tmp_path: Path) -> None:
    folder = write_artifact(tmp_path)
    text = (folder / MANIFEST_FILE).read_text().replace('"task"', '"pickle": "yes", "task"')
    with pytest.raises(ArtifactError, match="pickle"):
        parse_manifest(text.encode())


def test_examples_round_trip_and_refuse_what_the_contract_does_not_allow() -> None:
    examples = Examples(dataset="imdb", examples=[Example(input="great", split="test", index=4)])
    assert parse_examples(examples.to_json()) == examples
    with pytest.raises(ArtifactError, match="not a valid modelfn examples file"):
        parse_examples(b'{"dataset": "imdb", "examples": []}')  # at least one
    with pytest.raises(ArtifactError, match="index"):
        parse_examples(
            b'{"dataset": "imdb", "examples": [{"input": "a", "split": "test", "index": -1}]}'
        )


def test_read_verified_checks_the_bytes_it_reads(tmp_path: Path) -> None:
    folder = write_artifact(tmp_path, weights=b"w" * 100, onnx=b"o" * 100)
    manifest = read_manifest(folder)
    assert read_verified(folder, manifest, ONNX_FILE) == b"o" * 100
    (folder / ONNX_FILE).write_bytes(b"x" * 100)
    with pytest.raises(IntegrityError, match="refusing to load"):
        read_verified(folder, manifest, ONNX_FILE)
    with pytest.raises(ArtifactError, match="lists no examples.json"):
        read_verified(folder, manifest, "examples.json")
