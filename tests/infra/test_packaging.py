"""What goes into the zips: the layer's requirement list, the pip command, the platforms."""

from __future__ import annotations

import itertools
import sys
import tomllib
from pathlib import Path

import pytest

from infra.packaging import (
    PipInstallLocally,
    pip_install_command,
    pip_platforms,
    runtime_requirements,
)
from modelfn.registry import REPO_ROOT


def test_layer_requirements_are_pyprojects_dependencies_without_boto() -> None:
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    kept = runtime_requirements()
    assert kept == [d for d in declared if not d.lower().startswith(("boto3", "botocore"))]
    assert any(d.startswith("onnxruntime") for d in kept)
    assert len(kept) == len(declared) - 1  # boto3 is the one the runtime provides


def test_runtime_provided_packages_are_dropped_whatever_their_spelling(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\ndependencies = ["Boto3[crt]>=1.34", "botocore", "numpy>=2", "Pillow ; os_name == \'posix\'"]\n'
    )
    assert runtime_requirements(pyproject) == ["numpy>=2", "Pillow ; os_name == 'posix'"]


def test_missing_dependencies_table_names_the_file(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n')
    with pytest.raises(ValueError, match=r"pyproject\.toml.*dependencies"):
        runtime_requirements(pyproject)


def test_python_311_wheels_stop_at_amazon_linux_2s_glibc() -> None:
    tags = pip_platforms("3.11", "x86_64")
    assert tags[0] == "manylinux_2_26_x86_64"
    assert "manylinux2014_x86_64" in tags
    assert not {"manylinux_2_27_x86_64", "manylinux_2_28_x86_64"} & set(tags)


def test_python_312_wheels_may_use_amazon_linux_2023s_glibc() -> None:
    tags = pip_platforms("3.12", "x86_64")
    assert tags[0] == "manylinux_2_34_x86_64"
    assert "manylinux_2_27_x86_64" in tags  # onnxruntime>=1.17 ships only 2_27/2_28 wheels
    assert "manylinux_2_35_x86_64" not in tags


def test_arm64_asks_for_aarch64_wheels_only() -> None:
    tags = pip_platforms("3.12", "arm64")
    assert all(tag.endswith("_aarch64") for tag in tags)
    assert "manylinux2014_aarch64" in tags
    assert "manylinux1_aarch64" not in tags  # never existed


def test_pip_command_fetches_binary_wheels_for_the_lambda_python() -> None:
    command = pip_install_command(
        ["numpy>=2", "pydantic<3"], "/out/python", python="3.12", architecture="x86_64"
    )
    assert command[:3] == ["-m", "pip", "install"]
    assert "--only-binary=:all:" in command
    pairs = set(itertools.pairwise(command))
    assert {
        ("--python-version", "3.12"),
        ("--implementation", "cp"),
        ("--target", "/out/python"),
    } <= pairs
    assert ("--platform", "manylinux_2_28_x86_64") in pairs
    assert command[-2:] == ["numpy>=2", "pydantic<3"]


def test_local_bundler_reports_a_failed_pip_with_what_to_change(tmp_path: Path) -> None:
    # No requirement at all: pip fails at once, offline.
    bundler = PipInstallLocally(
        requirements=[],
        python="3.11",
        architecture="x86_64",
        fingerprint="f",
        cache=tmp_path / "cache",
    )
    with pytest.raises(RuntimeError, match=r"glibc 2\.26.*modelfn:python-version"):
        bundler.try_bundle(str(tmp_path / "out"), image=None)  # type: ignore[arg-type]
    # Nothing half-built is left where the next synth would take it for a finished layer.
    assert not (tmp_path / "cache" / "f").exists()


def test_a_built_layer_is_reused_without_pip(tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "abc" / "python" / "numpy"
    cached.mkdir(parents=True)
    (cached / "__init__.py").write_text("# built earlier\n")
    # Requirements pip could never install: the cache entry is used, so pip does not run.
    bundler = PipInstallLocally(
        requirements=["no-such-project-anywhere==0"], python="3.12", architecture="arm64",
        fingerprint="abc", cache=tmp_path / "cache",
    )  # fmt: skip
    out = tmp_path / "asset"
    out.mkdir()
    assert bundler.try_bundle(str(out), image=None)  # type: ignore[arg-type]
    assert (out / "python" / "numpy" / "__init__.py").read_text() == "# built earlier\n"


def test_the_layer_loses_what_serving_never_imports(tmp_path: Path) -> None:
    from infra.packaging import prune_layer

    keep = [
        "numpy/__init__.py",
        "numpy/_core/multiarray.py",
        "onnxruntime/capi/lib.so",
        "PIL/Image.py",
    ]
    drop = [
        "numpy/_core/tests/test_a.py", "numpy/f2py/f2py2e.py", "numpy/_core/include/numpy/x.h",
        "onnxruntime/transformers/models/bert.py", "onnxruntime/tools/t.py", "PIL/Image.pyi",
        "pydantic/tests/deep/t.py",
    ]  # fmt: skip
    for name in keep + drop:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x" * 10)
    assert prune_layer(tmp_path) == 10 * len(drop)
    assert all((tmp_path / name).is_file() for name in keep)
    assert not any((tmp_path / name).exists() for name in drop)


def test_bytecode_needs_the_runtimes_python_and_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from infra.lambda_python import LAMBDA_PYTHON_ENV, lambda_interpreter

    monkeypatch.setenv("PYENV_ROOT", "/nonexistent")
    monkeypatch.setenv(LAMBDA_PYTHON_ENV, "/nonexistent/python")
    with pytest.raises(RuntimeError, match=r"no Python 3\.99 here .*MODELFN_LAMBDA_PYTHON"):
        lambda_interpreter("3.99")
    command, _ = lambda_interpreter(f"{sys.version_info[0]}.{sys.version_info[1]}")
    assert command == [sys.executable]
