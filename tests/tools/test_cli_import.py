"""`modelfn import` end to end: into a store in tmp_path, registered in a copy of models.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from modelfn.artifact import verify_artifact
from modelfn.registry import REPO_ROOT, load_registry
from modelfn.store import LocalStore, list_published, read_alias
from tests.support.import_sources import SmallCnn, export_onnx, nothing_written, png
from tools.cli import main

MEAN_STD = ["--mean", "0.5,0.5,0.5", "--std", "0.25,0.25,0.25"]


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's models.toml that the command reads and writes."""
    path = tmp_path / "models.toml"
    shutil.copy(REPO_ROOT / "models.toml", path)
    monkeypatch.setenv("MODELFN_REGISTRY", str(path))
    return path


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cnn")
    return export_onnx(SmallCnn(), (torch.randn(2, 3, 8, 8),), folder / "cnn.onnx", ["image"])


def import_argv(tmp_path: Path, source: Path, name: str = "small-cnn") -> list[str]:
    return [
        "import", str(source), "--name", name, "--task", "image-classification",
        "--labels", "ant,bee,cat,dog", *MEAN_STD,
        "--examples", str(png(tmp_path / "a.png")), str(png(tmp_path / "b.png", seed=1)),
        "--publish", str(tmp_path / "store"), "--out", str(tmp_path / "build"),
    ]  # fmt: skip


def test_import_publishes_a_verified_version_and_registers_it(
    tmp_path: Path, registry: Path, cnn_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = registry.read_text()
    assert main(import_argv(tmp_path, cnn_onnx)) == 0
    out = capsys.readouterr().out
    assert "parity on 2 input(s), batches of 3 against batch 1 in onnxruntime" in out
    assert "published small-cnn " in out and f"added [models.small-cnn] to {registry}" in out
    store = LocalStore(tmp_path / "store")
    [model] = list_published(store)
    assert model.name == "small-cnn" and model.aliases == {"latest": model.versions[0]}
    manifest = verify_artifact(tmp_path / "store" / "small-cnn" / model.versions[0])
    assert manifest.imported is not None and manifest.imported.parity_inputs == "examples"
    # appended: the file's own text and comments stay as they were
    assert registry.read_text().startswith(before)
    entry = load_registry().get("small-cnn")
    assert entry.imported and entry.task == "image-classification"
    assert entry.serving.runtime == "onnxruntime" and entry.serving.alias == "latest"
    assert entry.architecture is None and entry.training is None


def test_importing_again_adds_a_version_and_leaves_the_entry(
    tmp_path: Path, registry: Path, cnn_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(import_argv(tmp_path, cnn_onnx)) == 0
    assert "added [models.small-cnn]" in capsys.readouterr().out
    registered = registry.read_text()
    first = read_alias(LocalStore(tmp_path / "store"), "small-cnn", "latest").version
    source = tmp_path / "retrained.onnx"  # another graph, as a retrained model would be
    torch.manual_seed(1)
    export_onnx(SmallCnn(), (torch.randn(2, 3, 8, 8),), source, ["image"])
    assert main(import_argv(tmp_path, source)) == 0
    out = capsys.readouterr().out
    assert "published small-cnn" in out and "added [models" not in out
    assert registry.read_text() == registered
    [model] = list_published(LocalStore(tmp_path / "store"))
    assert len(model.versions) == 2 and model.aliases["latest"] != first


def test_a_name_trained_here_is_refused_before_anything_runs(
    tmp_path: Path, registry: Path, cnn_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = registry.read_text()
    assert main(import_argv(tmp_path, cnn_onnx, name="cifar10-cnn")) == 2
    err = capsys.readouterr().err
    assert "has cifar10-cnn, a model trained here (no imported = true)" in err
    assert "Traceback" not in err
    assert nothing_written(tmp_path / "store") and nothing_written(tmp_path / "build")
    assert registry.read_text() == before


def test_no_registry_publishes_and_leaves_models_toml(
    tmp_path: Path, registry: Path, cnn_onnx: Path
) -> None:
    before = registry.read_text()
    assert main([*import_argv(tmp_path, cnn_onnx), "--no-registry"]) == 0
    assert registry.read_text() == before
    assert list_published(LocalStore(tmp_path / "store"))[0].name == "small-cnn"


def test_a_torch_tensor_model_with_labels_file_flags_and_memory(
    tmp_path: Path, registry: Path
) -> None:
    from safetensors.torch import save_model

    from tests.support.small_models import regressor

    weights = tmp_path / "regressor.safetensors"
    save_model(regressor(features=8), str(weights))
    argv = [
        "import", "tests.support.small_models:regressor", "--name", "tabular", "--task", "tensor",
        "--weights", str(weights), "--factory-args", '{"features": 8}',
        "--input", "x:fp32:-1,8", "--input", "ids:INT64:-1,4", "--memory-mb", "512",
        "--publish", str(tmp_path / "store"), "--out", str(tmp_path / "build"),
    ]  # fmt: skip
    assert main(argv) == 0
    entry = load_registry().get("tabular")
    assert entry.task == "tensor" and entry.serving.memory_mb == 512
    [model] = list_published(LocalStore(tmp_path / "store"))
    manifest = verify_artifact(tmp_path / "store" / "tabular" / model.versions[0])
    assert [i.name for i in manifest.inputs] == ["x", "ids"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--image-size", "big"], "--image-size 'big': give H or HxW in pixels"),
        (["--mean", "0.5,0.5"], "--mean '0.5,0.5': give three numbers, R,G,B"),
        (["--factory-args", "[1]"], "--factory-args must be a JSON object"),
        (["--memory-mb", "64"], "serving settings:"),
    ],
)
def test_flag_mistakes_exit_2_with_one_line(
    tmp_path: Path,
    registry: Path,
    cnn_onnx: Path,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*import_argv(tmp_path, cnn_onnx), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert nothing_written(tmp_path / "build")


def test_labels_from_a_file(tmp_path: Path, registry: Path, cnn_onnx: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("ant\nbee\n\ncat\ndog\n")
    argv = import_argv(tmp_path, cnn_onnx)
    at = argv.index("--labels")
    argv[at : at + 2] = ["--labels-file", str(labels)]
    assert main(argv) == 0
    assert load_registry().get("small-cnn").imported
    [model] = list_published(LocalStore(tmp_path / "store"))
    manifest = verify_artifact(tmp_path / "store" / "small-cnn" / model.versions[0])
    assert manifest.labels == ["ant", "bee", "cat", "dog"]


def test_an_imported_name_of_another_task_is_refused(
    tmp_path: Path, registry: Path, cnn_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelfn.registry import ServingEntry
    from tools.models_toml import add_imported_entry

    add_imported_entry(registry, "small-cnn", "tensor", "as tensors", ServingEntry())
    assert main(import_argv(tmp_path, cnn_onnx)) == 2
    assert "small-cnn is registered as an imported tensor model" in capsys.readouterr().err
    assert nothing_written(tmp_path / "build") and nothing_written(tmp_path / "store")


def test_a_hugging_face_folder_with_the_text_flags(
    tmp_path: Path, registry: Path, hf_bert_encoder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "import", str(hf_bert_encoder), "--name", "imdb-encoder", "--task", "feature-extraction",
        "--pooling", "cls", "--normalize", "--max-length", "64", "--no-truncation",
        "--publish", str(tmp_path / "store"), "--out", str(tmp_path / "build"),
    ]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "parity against torch on 3 input(s)" in out  # the sample texts within 64 tokens
    [model] = list_published(LocalStore(tmp_path / "store"))
    manifest = verify_artifact(tmp_path / "store" / "imdb-encoder" / model.versions[0])
    assert manifest.preprocessing is not None and manifest.preprocessing.kind == "tokenizer"
    assert (manifest.preprocessing.max_length, manifest.preprocessing.truncation) == (64, False)
    assert manifest.imported is not None
    assert manifest.imported.options["text"] == {
        "max_length": 64, "truncation": False, "pooling": "cls", "normalize": True,
    }  # fmt: skip
    entry = load_registry().get("imdb-encoder")
    assert entry.imported and entry.task == "feature-extraction"


def test_the_text_flags_on_an_onnx_file_are_refused(
    tmp_path: Path, registry: Path, cnn_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = registry.read_text()
    assert main([*import_argv(tmp_path, cnn_onnx), "--pooling", "cls"]) == 2
    assert "the text options (max length, truncation, pooling" in capsys.readouterr().err
    assert nothing_written(tmp_path / "build") and registry.read_text() == before


# --- an entry at serving.precision = "int8": the version is published with its int8 graph ---------

INT8_ENTRY = """
[models.small-cnn]
task = "image-classification"
imported = true
serving = { precision = "int8" }
# An untrained CNN scored on random pictures: its accuracy is chance, so is int8's.
edge = { max_accuracy_drop = 1.0 }
"""


def labelled_pictures(root: Path) -> Path:
    """20 random pictures, five per label of the test CNN (ant, bee, cat, dog)."""
    import numpy as np

    from tests.support.user_data import write_label_folders

    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    write_label_folders(root, pictures, np.arange(20) % 4, ["ant", "bee", "cat", "dog"])
    return root


def test_import_into_an_int8_entry_publishes_the_int8_graph(
    tmp_path: Path, registry: Path, cnn_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.write_text(registry.read_text() + INT8_ENTRY)
    argv = import_argv(tmp_path, cnn_onnx)
    assert main(argv) == 2  # no data to score int8 on: refused before anything is exported
    assert "give your labelled images with --data" in capsys.readouterr().err
    assert nothing_written(tmp_path / "build") and not (tmp_path / "store").exists()

    assert main([*argv, "--data", str(labelled_pictures(tmp_path / "pictures"))]) == 0
    assert "int8 (static-qdq" in capsys.readouterr().out
    [model] = list_published(LocalStore(tmp_path / "store"))
    manifest = verify_artifact(tmp_path / "store" / "small-cnn" / model.versions[0])
    assert "model.int8.onnx" in manifest.files and manifest.quantization is not None
    assert manifest.quantization.test_data.startswith("your data: 20 images")


def test_data_for_a_model_that_serves_fp32_is_refused(
    tmp_path: Path, registry: Path, cnn_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*import_argv(tmp_path, cnn_onnx), "--data", str(tmp_path)]
    assert main(argv) == 2
    assert 'registered at serving.precision = "int8"' in capsys.readouterr().err
    assert nothing_written(tmp_path / "build")
