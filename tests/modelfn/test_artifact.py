import json
from pathlib import Path

import pytest

from modelfn.artifact import (
    MANIFEST_FILE,
    ONNX_FILE,
    WEIGHTS_FILE,
    Alias,
    ArtifactError,
    Example,
    Examples,
    IntegrityError,
    is_version,
    parse_alias,
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


def _manifest(folder: Path) -> dict[str, object]:
    import json

    return json.loads((folder / MANIFEST_FILE).read_text())


def test_a_version_is_trained_or_imported_exactly_once(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from modelfn.artifact import Manifest

    body = _manifest(write_artifact(tmp_path))
    record = {
        "source": "onnx",
        "reference": "model.onnx",
        "source_sha256": {"model.onnx": "0" * 64},
        "parity_inputs": "none",
        "tolerance": 1e-4,
    }
    imported = {**body, "imported": record, "training": None, "data": None, "architecture": None}
    assert Manifest.model_validate(imported).imported is not None
    with pytest.raises(ValidationError, match="either trained .* or imported, exactly one"):
        Manifest.model_validate({**body, "imported": record})
    with pytest.raises(ValidationError, match="either trained .* or imported, exactly one"):
        Manifest.model_validate({**imported, "imported": None})
    with pytest.raises(ValidationError, match="records its data and its architecture"):
        Manifest.model_validate({**body, "data": None})


def test_an_image_scheme_crops_no_more_than_it_resizes() -> None:
    from pydantic import ValidationError

    from modelfn.artifact import ImagePreprocessing

    base = {"height": 224, "width": 224, "mean": (0.5,) * 3, "std": (0.5,) * 3}
    assert ImagePreprocessing.model_validate({**base, "resize": 256}).resize == 256
    assert ImagePreprocessing.model_validate(base).resize is None  # the built-in scheme
    with pytest.raises(ValidationError, match="resize 200 is smaller than the 224x224 crop"):
        ImagePreprocessing.model_validate({**base, "resize": 200})


def test_the_int8_graph_and_its_record_come_together(tmp_path: Path) -> None:
    from modelfn.artifact import INT8_ONNX_FILE, FileEntry, QuantizationRecord, sha256_bytes

    manifest = verify_artifact(write_artifact(tmp_path))
    # A version without an int8 graph is written as before (older functions read it).
    assert b"quantization" not in manifest.to_json()
    record = QuantizationRecord(
        mode="dynamic",
        threshold="test accuracy at most 1.00 points below fp32",
        verdict="int8 is within the threshold: accuracy 0.9",
        figures={"fp32_accuracy": 0.9, "int8_accuracy": 0.9},
        test_data="the imdb test split (560 texts)",
        onnxruntime="1.23.0",
    )
    graph = FileEntry(sha256=sha256_bytes(b"int8"), size=4)
    data = manifest.model_dump()
    with_both = {**data, "files": {**data["files"], INT8_ONNX_FILE: graph}, "quantization": record}
    assert parse_manifest(manifest.model_validate(with_both).to_json()).quantization == record
    for half in ({**with_both, "quantization": None}, {**data, "quantization": record}):
        with pytest.raises(ValueError, match="the two come together"):
            manifest.model_validate(half)


# --- aliases with a canary ---------------------------------------------------------------------

STABLE, CANARY = "20261201T000000Z-aaaaaaaa", "20261202T000000Z-bbbbbbbb"


def _alias(**extra: object) -> Alias:
    return Alias.model_validate(
        {
            "model": "m",
            "alias": "prod",
            "version": STABLE,
            "manifest_sha256": "a" * 64,
            "updated_at": "2026-12-07T12:00:00Z",
            **extra,
        }
    )


def test_an_alias_without_a_canary_is_written_as_before() -> None:
    # Exactly the fields a function from before issue 23 reads (its Alias forbids others).
    plain = json.loads(_alias().to_json())
    assert set(plain) == {"model", "alias", "version", "manifest_sha256", "updated_at"}


def test_an_alias_with_a_canary_round_trips() -> None:
    record = _alias(canary={"version": CANARY, "manifest_sha256": "b" * 64, "weight": 10})
    again = parse_alias(record.to_json())
    assert again == record
    assert again.canary is not None and (again.canary.version, again.canary.weight) == (CANARY, 10)


@pytest.mark.parametrize("weight", [0, 100])
def test_a_canary_weight_is_a_share_strictly_between_none_and_all(weight: int) -> None:
    with pytest.raises(ValueError, match="weight"):
        _alias(canary={"version": CANARY, "manifest_sha256": "b" * 64, "weight": weight})


def test_a_canary_is_another_version() -> None:
    with pytest.raises(ValueError, match="is the stable version"):
        _alias(canary={"version": STABLE, "manifest_sha256": "a" * 64, "weight": 10})
