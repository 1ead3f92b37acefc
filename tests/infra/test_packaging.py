"""What goes into the zips: the layer's locked requirements, the pip command, the platforms."""

from __future__ import annotations

import itertools
import marshal
import sys
import tomllib
from pathlib import Path

import pytest

from infra.packaging import (
    PipInstallLocally,
    declared_runtime_dependencies,
    pip_install_command,
    pip_platforms,
    runtime_requirements,
)
from infra.requirements_lock import LOCK_FILE, read_lock
from modelfn.registry import REPO_ROOT


def test_the_layer_installs_the_locked_versions_of_pyprojects_dependencies() -> None:
    # The suite runs on requirements.lock; the layer must hold the same versions, not whatever
    # pip resolves from pyproject's ranges on the day (numpy 2.5.5 against the locked 2.4.6).
    lock = read_lock()
    layer = {package.name: package for package in runtime_requirements()}
    for name in ("pydantic", "numpy", "onnxruntime", "fastapi", "mangum", "pillow"):
        assert layer[name].version == lock[name].version
        assert layer[name].hashes == lock[name].hashes and layer[name].hashes
    # ...and what they require, from the same lock: pydantic's core, fastapi's starlette.
    assert layer["pydantic-core"].version == lock["pydantic-core"].version
    assert "starlette" in layer and "protobuf" in layer
    # boto3 is the runtime's, and so is what only it requires.
    assert not {"boto3", "botocore", "s3transfer", "urllib3", "python-dateutil"} & set(layer)
    # Nothing of training or the tools: the lock's other extras stay out.
    assert not {"torch", "onnx", "moto", "pytest", "matplotlib"} & set(layer)


def test_layer_roots_are_pyprojects_dependencies_without_boto() -> None:
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    kept = declared_runtime_dependencies()
    assert kept == [d for d in declared if not d.lower().startswith(("boto3", "botocore"))]
    assert len(kept) == len(declared) - 1  # boto3 is the one the runtime provides


def test_runtime_provided_packages_are_dropped_whatever_their_spelling(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\ndependencies = ["Boto3[crt]>=1.34", "botocore", "numpy>=2", "Pillow ; os_name == \'posix\'"]\n'
    )
    assert declared_runtime_dependencies(pyproject) == ["numpy>=2", "Pillow ; os_name == 'posix'"]
    assert [p.name for p in runtime_requirements(pyproject)] == ["numpy", "pillow"]


def test_missing_dependencies_table_names_the_file(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n')
    with pytest.raises(ValueError, match=r"pyproject\.toml.*dependencies"):
        runtime_requirements(pyproject)


def test_a_dependency_the_lock_lacks_says_make_lock(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["numpy>=2", "no-such-project>=1"]\n')
    with pytest.raises(
        ValueError, match=r"no-such-project not pinned in .*requirements\.lock.*make lock"
    ):
        runtime_requirements(pyproject)


def edited_lock(tmp_path: Path, old: str, new: str) -> Path:
    text = LOCK_FILE.read_text(encoding="utf-8")
    assert old in text
    lock = tmp_path / f"requirements-{len(list(tmp_path.iterdir()))}.lock"
    lock.write_text(text.replace(old, new, 1), encoding="utf-8")
    return lock


def layer_asset_keys(tmp_path: Path, *locks: Path) -> list[str]:
    """The S3 key of the layer each lock gives, pyproject.toml unchanged (bundling skipped)."""
    import aws_cdk as cdk

    from infra.constructs.dependency_layer import DependencyLayer

    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "Layers")
    for index, lock in enumerate(locks):
        DependencyLayer(stack, f"Layer{index}", python="3.12", architecture="arm64", lock=lock)
    template = app.synth().get_stack_artifact(stack.artifact_id).template
    return [
        resource["Properties"]["Content"]["S3Key"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::LayerVersion"
    ]


def test_the_layer_asset_hash_is_what_was_resolved(tmp_path: Path) -> None:
    # pyproject's ranges are the same in all three; only the lock differs. A new numpy pin, or
    # the same pin with another file's hash, is another layer: CDK must not take it for the one
    # it uploaded before.
    numpy = read_lock()["numpy"]
    same = edited_lock(tmp_path, "", "")
    other_version = edited_lock(tmp_path, f"numpy=={numpy.version} ", "numpy==2.4.7 ")
    other_file = edited_lock(tmp_path, numpy.hashes[0], "0" * 64)
    keys = layer_asset_keys(tmp_path, LOCK_FILE, same, other_version, other_file)
    assert keys[0] == keys[1]
    assert len(set(keys)) == 3


def test_the_layer_description_names_the_locked_versions(tmp_path: Path) -> None:
    import aws_cdk as cdk

    from infra.constructs.dependency_layer import DependencyLayer

    app = cdk.App(context={"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path))
    layer = DependencyLayer(cdk.Stack(app, "S"), "L", python="3.12", architecture="x86_64")
    description = cdk.Stack.of(layer).resolve(layer.layer.node.default_child.description)
    assert f"numpy=={read_lock()['numpy'].version}" in description
    assert ">=" not in description


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


def test_pip_command_installs_a_requirements_file_by_hash_for_the_lambda_python() -> None:
    command = pip_install_command(
        "/build/requirements.txt", "/out/python", python="3.12", architecture="x86_64"
    )
    assert command[:3] == ["-m", "pip", "install"]
    assert "--only-binary=:all:" in command
    assert "--require-hashes" in command  # a file whose hash the lock lacks is refused
    pairs = set(itertools.pairwise(command))
    assert {
        ("--python-version", "3.12"),
        ("--implementation", "cp"),
        ("--target", "/out/python"),
    } <= pairs
    assert ("--platform", "manylinux_2_28_x86_64") in pairs
    assert command[-2:] == ["-r", "/build/requirements.txt"]


def test_local_bundler_reports_a_failed_pip_with_what_to_change(tmp_path: Path) -> None:
    # A requirements file pip cannot parse: it fails at once, offline.
    bundler = PipInstallLocally(
        requirements="not a requirement ===\n",
        python="3.11",
        architecture="x86_64",
        fingerprint="f",
        cache=tmp_path / "cache",
    )
    with pytest.raises(RuntimeError, match=r"glibc 2\.26.*make lock.*modelfn:python-version"):
        bundler.try_bundle(str(tmp_path / "out"), image=None)  # type: ignore[arg-type]
    # Nothing half-built is left where the next synth would take it for a finished layer.
    assert not (tmp_path / "cache" / "f").exists()
    # What pip was asked to install lies beside the build, for the next look.
    assert (tmp_path / "cache" / "f.requirements.txt").read_text() == "not a requirement ===\n"


def test_a_built_layer_is_reused_without_pip(tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "abc" / "python" / "numpy"
    cached.mkdir(parents=True)
    (cached / "__init__.py").write_text("# built earlier\n")
    # Requirements pip could never install: the cache entry is used, so pip does not run.
    bundler = PipInstallLocally(
        requirements="no-such-project-anywhere==0\n", python="3.12", architecture="arm64",
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
        "numpy-2.4.6.dist-info/METADATA",  # importlib.metadata.version reads it
    ]
    drop = [
        "numpy/_core/tests/test_a.py", "numpy/f2py/f2py2e.py", "numpy/_core/include/numpy/x.h",
        "onnxruntime/transformers/models/bert.py", "onnxruntime/tools/t.py", "PIL/Image.pyi",
        "pydantic/tests/deep/t.py", "bin/f2py", "numpy-2.4.6.dist-info/RECORD",
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


def test_bytecode_is_the_same_bytes_wherever_it_is_built(tmp_path: Path) -> None:
    # Two builds of the same sources in different folders: the same .pyc bytes, naming the
    # source where Lambda puts it, not this machine's build folder. A set constant is the part a
    # random hash seed would reorder.
    from infra.bytecode import LAYER_ROOT, compile_bytecode

    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    built = []
    for folder in (tmp_path / "one", tmp_path / "elsewhere" / "two"):
        (folder / "pkg").mkdir(parents=True)
        (folder / "pkg" / "mod.py").write_text(
            "def kind(word):\n    return word in {'alpha', 'beta', 'gamma', 'delta', 'epsilon'}\n"
        )
        compile_bytecode(folder, python, runs_from=LAYER_ROOT)
        (pyc,) = (folder / "pkg" / "__pycache__").glob("mod.*.pyc")
        built.append(pyc.read_bytes())
    assert built[0] == built[1]
    flags = int.from_bytes(built[0][4:8], "little")
    assert flags == 0b01  # PEP 552: hash-based, source not checked
    code = marshal.loads(built[0][16:])
    assert code.co_filename == f"{LAYER_ROOT}/pkg/mod.py"


def test_the_hub_client_is_pruned_and_nothing_else_needs_it() -> None:
    """HUB_CLIENT leaves the layer; each of its distributions must be one that only
    huggingface-hub (tokenizers' requirement) brings in, or the prune would break another."""
    from infra.packaging import (
        HUB_CLIENT,
        LOCK_FILE,
        PROVIDED_BY_RUNTIME,
        PRUNED_GLOBS,
        closure,
        declared_runtime_dependencies,
        read_lock,
        requirement_name,
    )

    lock = read_lock(LOCK_FILE)
    roots = [requirement_name(r) for r in declared_runtime_dependencies()]
    installed = {p.name for p in closure(lock, roots, leave_out=PROVIDED_BY_RUNTIME)}
    assert set(HUB_CLIENT) <= installed  # still in the layer's install, so the prune matters
    without_hub = closure(lock, roots, leave_out=PROVIDED_BY_RUNTIME | {"huggingface-hub"})
    assert not {p.name for p in without_hub} & set(HUB_CLIENT)
    assert {"huggingface_hub", "hf_xet", "yaml"} <= set(PRUNED_GLOBS)
