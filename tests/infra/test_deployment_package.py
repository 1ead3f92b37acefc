"""`modelfn package`: the deployment infra builds, measured against Lambda's size limits.

The size check is tested on figures, then through the command with the pip step replaced by a
fake that writes a sparse file of a chosen size (instant, no network): everything else is the
real path, CDK's synth and local bundling calling `build_dependency_layer`, so what the command
measures is the folder CDK would upload.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from infra import packaging
from infra.deployment_package import (
    IMAGE_LIMIT,
    MIB,
    ZIP_LIMIT,
    ZIP_WARNING,
    PackageTooLarge,
    size_verdict,
)
from infra.requirements_lock import read_lock
from modelfn.registry import REPO_ROOT
from tools.cli import main

# --- the size check ----------------------------------------------------------------------------


def test_lambdas_limits_are_the_documented_figures() -> None:
    assert ZIP_LIMIT == 262_144_000  # "Unzipped size must be smaller than 262144000 bytes"
    assert ZIP_WARNING == 150 * MIB
    assert IMAGE_LIMIT == 10 * 1024 * MIB


@pytest.mark.parametrize(
    ("size", "expect"),
    [(99, None), (100, None), (101, "warning"), (1000, "warning"), (1001, "too large")],
)
def test_quiet_below_the_warning_warns_up_to_the_limit_fails_above(
    size: int, expect: str | None
) -> None:
    if expect == "too large":
        with pytest.raises(
            PackageTooLarge, match=r"over Lambda's .* limit: Lambda would refuse it"
        ):
            size_verdict(size, limit=1000, warning=100, what="m")
    else:
        verdict = size_verdict(size, limit=1000, warning=100, what="m")
        assert (verdict is not None) == (expect == "warning")


def test_the_messages_give_the_figures_in_mb() -> None:
    warning = size_verdict(160 * MIB, limit=ZIP_LIMIT, warning=ZIP_WARNING, what="x (zip function)")
    assert (
        warning is not None
        and "160.0 MB unzipped, above 150.0 MB" in warning
        and "90.0 MB are left" in warning
    )
    with pytest.raises(
        PackageTooLarge, match=r"260\.0 MB unzipped, 10\.0 MB over Lambda's 250\.0 MB limit"
    ):
        size_verdict(260 * MIB, limit=ZIP_LIMIT, warning=ZIP_WARNING, what="x (zip function)")
    assert size_verdict(9 * 1024 * MIB, limit=IMAGE_LIMIT, warning=None, what="image") is None


# --- the command, with a fake pip ----------------------------------------------------------------


class FakePip:
    """Stands in for `packaging.pip_install`: one sparse file of `size` bytes, and what was asked."""

    def __init__(self, size: int, files: tuple[str, ...] = ("fake/wheel.so",)) -> None:
        self.size, self.files = size, files
        self.calls: list[dict[str, Any]] = []

    def __call__(self, requirements: list[str], target: Path, **kwargs: Any) -> None:
        self.calls.append({"requirements": requirements, "target": target, **kwargs})
        for name in self.files:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).touch()
        with (target / self.files[0]).open("r+b") as fh:
            fh.truncate(self.size)  # sparse: instant, yet st_size (what unzips) is `size`


def package(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["package", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_layer_above_150_mb_is_built_measured_and_warned_about(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakePip(160 * MIB)
    monkeypatch.setattr(packaging, "pip_install", fake)
    monkeypatch.setattr(packaging, "LAYER_CACHE", tmp_path / "layers")  # no layer built earlier
    code, out, err = package(capsys, "cifar10-cnn", "--out", str(tmp_path))
    assert code == 0, err
    (call,) = fake.calls  # CDK's local bundling ran the one layer builder, which ran pip once
    # pip installed requirements.lock's entries, by hash: the versions the suite ran on.
    assert call["options"] == packaging.BY_HASH
    installed = call["requirements"].read_text(encoding="utf-8")
    assert installed == packaging.requirements_text(
        packaging.runtime_requirements(), packaging.LAYER_REQUIREMENTS_HEADER
    )
    numpy = read_lock()["numpy"]
    assert f"numpy=={numpy.version} \\\n    --hash=sha256:{numpy.hashes[0]}" in installed
    # Built once into the layer cache, for models.toml's CPU (arm64, the zip default), then
    # linked into the bundle under the model's folder.
    assert call["target"].name == "python" and call["target"].is_relative_to(tmp_path / "layers")
    assert call["architecture"] == "arm64"
    assert (tmp_path / "cifar10-cnn-arm64" / "cdk.out").is_dir()
    assert "cifar10-cnn (zip function, python3.12, arm64)" in out
    assert "dependency layer" in out and "function code" in out
    # 160 MB of layer and the code asset (the sources and their bytecode, under a megabyte).
    code_mb = code_asset_mb(out)
    assert 0.1 < code_mb < 1.0
    assert (
        f"warning: cifar10-cnn (zip function, python3.12, arm64) is {160 + code_mb:.1f} MB unzipped"
        in err
    )
    assert "within Lambda's 250.0 MB limit" in out


def code_asset_mb(printed: str) -> float:
    """The function code asset's size as `modelfn package` printed it."""
    found = re.search(r"function code\s+([\d.]+) MB", printed)
    assert found, printed
    return float(found.group(1))


def test_a_deployment_above_250_mb_fails_the_command_for_the_asked_cpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakePip(250 * MIB)  # plus the code asset: over the limit
    monkeypatch.setattr(packaging, "pip_install", fake)
    monkeypatch.setattr(packaging, "LAYER_CACHE", tmp_path / "layers")  # no layer built earlier
    code, out, err = package(capsys, "cifar10-cnn", "--arch", "x86_64", "--out", str(tmp_path))
    assert code == 1
    assert fake.calls[0]["architecture"] == "x86_64"
    assert (tmp_path / "cifar10-cnn-x86_64" / "cdk.out").is_dir()
    code_mb = code_asset_mb(err + out)
    assert (
        f"error: cifar10-cnn (zip function, python3.12, x86_64) is {250 + code_mb:.1f} MB "
        f"unzipped, {code_mb:.1f} MB over" in err
    )
    assert "within" not in out


TORCH_REGISTRY = """
[models.cifar10-cnn]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = { config = "training/configs/cifar10-cnn.toml" }
serving = { runtime = "torch" }
"""


@pytest.fixture
def torch_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(TORCH_REGISTRY, encoding="utf-8")
    monkeypatch.setenv("MODELFN_REGISTRY", str(path))
    return path


def test_a_torch_entry_measures_the_image_code_and_its_packages(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    torch_registry: Path,
) -> None:
    from infra.container_image import (
        REQUIREMENTS_FILE,
        TORCH_INDEX_URL,
        TORCH_REQUIREMENTS_FILE,
    )

    fake = FakePip(450 * MIB, files=("torch/lib/libtorch_cpu.so", "torch/version.py"))
    monkeypatch.setattr("infra.deployment_package.pip_install", fake)
    code, out, err = package(capsys, "cifar10-cnn", "--out", str(tmp_path / "out"))
    assert code == 0, err
    # As the Dockerfile: the hashed file into one folder, torch alone from the CPU index into
    # another, both read from the staged build context (what `docker build` is given).
    hashed, torch = fake.calls
    assert hashed["requirements"].name == REQUIREMENTS_FILE
    assert hashed["options"] == packaging.BY_HASH
    assert torch["requirements"].name == TORCH_REQUIREMENTS_FILE
    assert torch["options"] == ("--no-deps", "--index-url", TORCH_INDEX_URL)
    assert hashed["requirements"].read_bytes() == (REPO_ROOT / REQUIREMENTS_FILE).read_bytes()
    assert "cifar10-cnn (container image, python3.12, x86_64)" in out
    assert "image build context (code)" in out and "900.0 MB" in out
    assert "the base image's layers are not counted" in out
    # Unchanged requirement files reuse the install: no second pip run.
    assert package(capsys, "cifar10-cnn", "--out", str(tmp_path / "out"))[0] == 0
    assert len(fake.calls) == 2


def test_a_cuda_torch_is_refused_not_measured(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    torch_registry: Path,
) -> None:
    # What pip does when the CPU index is out of reach: PyPI's torch and its nvidia-* packages.
    fake = FakePip(
        MIB, files=("torch/lib/libtorch_cuda.so", "nvidia_cublas-13.1.1.3.dist-info/METADATA")
    )
    monkeypatch.setattr("infra.deployment_package.pip_install", fake)
    code, _, err = package(capsys, "cifar10-cnn", "--out", str(tmp_path))
    assert code == 1
    assert "CUDA build of torch" in err and "download.pytorch.org" in err
    assert not (tmp_path / "cifar10-cnn-x86_64" / "image-deps").exists()  # nothing half-built kept


def test_an_unknown_model_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = package(capsys, "no-such-model")
    assert code == 2 and "unknown model 'no-such-model'" in err
    assert not (REPO_ROOT / "build" / "package" / "no-such-model-x86_64").exists()


SMALL_MEMORY_REGISTRY = TORCH_REGISTRY.replace(
    'serving = { runtime = "torch" }', "serving = { memory_mb = MEMORY }"
)


def test_the_published_versions_budget_is_checked_against_the_serving_settings(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cifar_artifact: Path,
) -> None:
    from modelfn.store import LocalStore, publish_artifact

    monkeypatch.setattr(packaging, "pip_install", FakePip(10 * MIB))
    monkeypatch.setattr(packaging, "LAYER_CACHE", tmp_path / "layers")
    store = LocalStore(tmp_path / "store")
    version = publish_artifact(store, cifar_artifact).version
    registry = tmp_path / "models.toml"
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    args = ("cifar10-cnn", "--out", str(tmp_path / "out"), "--store", str(store.root))

    registry.write_text(SMALL_MEMORY_REGISTRY.replace("MEMORY", "128"), encoding="utf-8")
    code, out, err = package(capsys, *args)
    assert code == 1, err
    assert (
        f"budget of cifar10-cnn {version} (alias latest in {store.uri}) against "
        "[models.cifar10-cnn.serving]: /tmp " in out
    )
    assert "error: the loaded model needs about 14" in err  # 140 MB and the session's share
    assert "over serving.memory_mb = 128; set serving.memory_mb = 192 in models.toml" in err

    registry.write_text(SMALL_MEMORY_REGISTRY.replace("MEMORY", "256"), encoding="utf-8")
    code, out, err = package(capsys, *args)
    assert code == 0, err
    assert "budget of cifar10-cnn" in out and "error" not in err


def test_no_published_version_is_said_not_failed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(packaging, "pip_install", FakePip(10 * MIB))
    monkeypatch.setattr(packaging, "LAYER_CACHE", tmp_path / "layers")
    empty = tmp_path / "store"
    code, out, _ = package(capsys, "cifar10-cnn", "--out", str(tmp_path), "--store", str(empty))
    assert code == 0
    assert "budget: cifar10-cnn has no version under alias 'latest' in file://" in out


def test_an_int8_model_whose_version_lacks_the_int8_graph_fails_the_package(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    cifar_artifact: Path,
) -> None:
    """At serving.precision = "int8" the function would answer 503 for a fp32-only version:
    `modelfn package` says so before a deployment does."""
    from modelfn.store import LocalStore, publish_artifact

    monkeypatch.setattr(packaging, "pip_install", FakePip(10 * MIB))
    monkeypatch.setattr(packaging, "LAYER_CACHE", tmp_path / "layers")
    store = LocalStore(tmp_path / "store")
    version = publish_artifact(store, cifar_artifact).version
    registry = tmp_path / "models.toml"
    monkeypatch.setenv("MODELFN_REGISTRY", str(registry))
    registry.write_text(
        SMALL_MEMORY_REGISTRY.replace("memory_mb = MEMORY", 'precision = "int8"'), encoding="utf-8"
    )
    args = ("cifar10-cnn", "--out", str(tmp_path / "out"), "--store", str(store.root))
    code, _, err = package(capsys, *args)
    assert code == 1
    assert f"cifar10-cnn {version} (alias latest in {store.uri}) has no model.int8.onnx" in err
    assert "modelfn quantize cifar10-cnn" in err
