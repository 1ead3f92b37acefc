"""What goes into the Lambda zips: the function code asset and the dependency layer's contents.

The code asset is `functions/` and the parts of `modelfn/` the handler imports
(FUNCTION_SOURCES), and nothing else (no CLI, local emulator, training code, infra, tests or
venv); infra/function_code.py stages it with its bytecode. The third-party packages go in one
layer: requirements.lock's pinned, hashed entries that pyproject's dependencies reach
(`runtime_requirements`), pip-installed by hash on this machine for the Lambda platform, so no
Docker engine is needed; the Lambda Python build image is the fallback where pip cannot run
locally.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra.bytecode import BYTECODE, LAYER_ROOT, compile_bytecode
from infra.requirements_lock import (
    LOCK_FILE,
    LockedPackage,
    canonical_name,
    closure,
    read_lock,
    requirements_text,
)
from modelfn.registry import REPO_ROOT

PythonVersion = Literal["3.11", "3.12", "3.13"]
CpuArchitecture = Literal["x86_64", "arm64"]


class LambdaPython(NamedTuple):
    runtime: lambda_.Runtime
    os: str  # the Lambda runtime's operating system
    glibc_minor: int  # the runtime OS's glibc is 2.<glibc_minor>: wheels may need no newer one


LAMBDA_PYTHONS: dict[PythonVersion, LambdaPython] = {
    "3.11": LambdaPython(lambda_.Runtime.PYTHON_3_11, "Amazon Linux 2", glibc_minor=26),
    "3.12": LambdaPython(lambda_.Runtime.PYTHON_3_12, "Amazon Linux 2023", glibc_minor=34),
    "3.13": LambdaPython(lambda_.Runtime.PYTHON_3_13, "Amazon Linux 2023", glibc_minor=34),
}

# The oldest glibc the layer loads on is 2.<LAYER_GLIBC_MINOR>, set by onnxruntime (pyproject pins
# >=1.18). Checked with `pip download --no-deps --only-binary=:all: --platform <tag>
# --python-version 3.11 onnxruntime==<v>`: 1.16.3 is the last release with manylinux2014
# (glibc 2.17) cp311 wheels; 1.17.0, 1.18.0, 1.19.0 and 1.20.0 have only manylinux_2_27/2_28
# ones, for x86_64 and aarch64 alike, so for python3.11's Amazon Linux 2 (glibc 2.26) pip finds
# nothing newer than 1.16.3.
LAYER_GLIBC_MINOR = 27
LAYER_GLIBC_REASON = "onnxruntime>=1.17 ships only manylinux_2_27/2_28 wheels (glibc >= 2.27)"


def unloadable_python_reason(python: PythonVersion) -> str | None:
    """Why the layer's wheels cannot load on this Lambda Python, or None where they can."""
    target = LAMBDA_PYTHONS[python]
    if target.glibc_minor >= LAYER_GLIBC_MINOR:
        return None
    usable = [
        f"{version} ({p.os}, glibc 2.{p.glibc_minor})"
        for version, p in LAMBDA_PYTHONS.items()
        if p.glibc_minor >= LAYER_GLIBC_MINOR
    ]
    return (
        f"the python{python} Lambda runtime runs on {target.os} (glibc 2.{target.glibc_minor}), "
        f"and {LAYER_GLIBC_REASON}; use {' or '.join(usable)}"
    )


LAMBDA_ARCHITECTURES: dict[CpuArchitecture, lambda_.Architecture] = {
    "x86_64": lambda_.Architecture.X86_64,
    "arm64": lambda_.Architecture.ARM_64,
}
_WHEEL_ARCH: dict[CpuArchitecture, str] = {"x86_64": "x86_64", "arm64": "aarch64"}
DOCKER_PLATFORMS: dict[CpuArchitecture, str] = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}


def pip_platforms(python: PythonVersion, architecture: CpuArchitecture) -> list[str]:
    """Every manylinux tag the Lambda OS can load, newest first.

    pip does not widen `--platform manylinux_2_X` to older glibc tags by itself, so each one
    is listed (PEP 600 tags, plus the legacy manylinux2014/2010/1 aliases older wheels carry).
    """
    arch = _WHEEL_ARCH[architecture]
    top = LAMBDA_PYTHONS[python].glibc_minor
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(top, 4, -1)]
    legacy = (
        ["manylinux2014"]
        if architecture == "arm64"
        else ["manylinux2014", "manylinux2010", "manylinux1"]
    )
    return tags + [f"{name}_{arch}" for name in legacy]


# What the function imports, from the repo root: the inference function and the part of the core
# it reads (not the registry or the stages, which are read at synth). Everything else stays out
# of the zip: no architectures, no training, no tools. tests/infra imports the handler from the
# staged asset alone, and the zip-path import contract (pyproject.toml) keeps torch out of reach.
FUNCTION_SOURCES = (
    "functions",
    "modelfn/__init__.py",
    "modelfn/api_routes.py",
    "modelfn/artifact.py",
    # A canary rollout: the memory two versions need (the function), and the checker's rules
    # and limits (functions/canary_checker.py).
    "modelfn/budget.py",
    "modelfn/canary.py",
    # Sampled capture (issue 23 items 4-5): the record the function writes and the features it
    # keeps of each input; the manifest (artifact.py) carries a version's reference statistics.
    "modelfn/capture.py",
    "modelfn/images.py",
    "modelfn/input_features.py",
    "modelfn/reference_stats.py",
    "modelfn/store",
    "modelfn/text.py",
    "modelfn/tokenizer_file.py",
)

# The Lambda Python runtime ships boto3 and botocore (~80 MB unzipped); a second copy in the
# layer would eat a third of the 250 MB limit for nothing.
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore"})

_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def project_table(pyproject: Path) -> dict[str, Any]:
    """The [project] table of pyproject.toml; ValueError naming the file if it cannot be read."""
    try:
        project: dict[str, Any] = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as exc:
        raise ValueError(
            f"cannot read [project] from {pyproject}: {exc!r}; the deployment's dependencies "
            "are built from its lists"
        ) from exc
    return project


def requirement_name(requirement: str) -> str:
    """The project name a PEP 508 requirement starts with ('numpy>=2' -> 'numpy')."""
    match = _REQUIREMENT_NAME.match(requirement)
    if match is None:
        raise ValueError(f"cannot read a project name from the requirement {requirement!r}")
    return match.group(1)


def declared_runtime_dependencies(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """[project].dependencies of pyproject.toml, less what the Lambda runtime already provides."""
    project = project_table(pyproject)
    if "dependencies" not in project:
        raise ValueError(
            f"{pyproject} has no [project].dependencies list; the dependency layer is built from it"
        )
    return [
        r
        for r in project["dependencies"]
        if canonical_name(requirement_name(r)) not in PROVIDED_BY_RUNTIME
    ]


def runtime_requirements(
    pyproject: Path = REPO_ROOT / "pyproject.toml", lock: Path = LOCK_FILE
) -> list[LockedPackage]:
    """What the layer installs: the declared runtime dependencies and everything they require, at
    the versions and hashes of requirements.lock (the ones the suite ran on), boto3's own
    dependencies left to the runtime as boto3 is."""
    return closure(
        read_lock(lock),
        [requirement_name(r) for r in declared_runtime_dependencies(pyproject)],
        leave_out=PROVIDED_BY_RUNTIME,
        lock_path=lock,
    )


# pip's options for a requirements file of the lock's entries: each file is checked against the
# lock's hashes, and a dependency the file does not pin fails the install (the lock would be
# incomplete for this platform) instead of being resolved from the index's newest release.
BY_HASH = ("--require-hashes",)


def pip_install_command(
    requirements_file: str,
    target: str,
    *,
    python: PythonVersion,
    architecture: CpuArchitecture,
    options: tuple[str, ...] = BY_HASH,
) -> list[str]:
    """pip arguments that install `requirements_file`'s Lambda-compatible wheels into `target`,
    on any host OS."""
    platforms = [arg for tag in pip_platforms(python, architecture) for arg in ("--platform", tag)]
    return [
        "-m", "pip", "install",
        *platforms,
        "--implementation", "cp",
        "--python-version", python,
        "--only-binary=:all:",  # never build sdists for the host by mistake
        "--target", target,
        "--no-compile",  # bytecode is compiled for the Lambda's Python below, if it is here
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
        *options,
        "-r", requirements_file,
    ]  # fmt: skip


def pip_install(
    requirements_file: Path,
    target: Path,
    *,
    python: PythonVersion,
    architecture: CpuArchitecture,
    options: tuple[str, ...] = BY_HASH,
) -> None:
    """pip-install `requirements_file` for the Lambda platform into `target`; RuntimeError saying
    what to change if pip fails."""
    command = [sys.executable, *pip_install_command(
        str(requirements_file), str(target), python=python, architecture=architecture,
        options=options,
    )]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        by_hash = f" whose hash {requirements_file.name} lists" if BY_HASH[0] in options else ""
        raise RuntimeError(
            f"installing {target} failed: {shlex.join(command)} exited with "
            f"{result.returncode}:\n{result.stderr[-2000:]}\nEvery pinned version needs a wheel "
            f"for Python {python} on glibc 2.{LAMBDA_PYTHONS[python].glibc_minor} "
            f"({architecture}){by_hash}: move the range in pyproject.toml and run `make lock`, "
            "or pick another modelfn:python-version in cdk.json. Check access to the package "
            "index (PyPI, PIP_INDEX_URL, or the --index-url above)."
        )


def build_dependency_layer(
    target: Path, *, requirements: Path, python: PythonVersion, architecture: CpuArchitecture
) -> None:
    """The layer's python/ folder at `target`: `requirements` (a file of the lock's hashed entries)
    installed for the Lambda platform, pruned, compiled.

    The one builder of the layer: CDK's local bundling (PipInstallLocally) calls it for
    `cdk synth`, and `modelfn package` measures what it built.
    """
    pip_install(requirements, target, python=python, architecture=architecture, options=BY_HASH)
    prune_layer(target)
    compile_bytecode(target, python, runs_from=LAYER_ROOT)


# Built layers by fingerprint: every stage, `modelfn package` and the benchmark reuse one build,
# so a synth after the first needs no network (pip reaches PyPI only to build a new layer). Each
# build's requirements file lies beside it (<fingerprint>.requirements.txt).
LAYER_CACHE = REPO_ROOT / "build" / "layers"


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)  # CDK zips the bundle; a hard link saves copying ~120 MB
    except OSError:
        shutil.copy2(source, target)


@jsii.implements(ILocalBundling)
class PipInstallLocally:
    """CDK local bundler: the layer's requirements file, installed into `<output>/python`.

    The layer is built once per fingerprint (the requirements file, platform, pruning, bytecode)
    into LAYER_CACHE and linked into each bundle from there.
    """

    def __init__(
        self,
        *,
        requirements: str,
        python: PythonVersion,
        architecture: CpuArchitecture,
        fingerprint: str,
        cache: Path | None = None,
    ) -> None:
        self.requirements = requirements  # the text of a requirements file of hashed entries
        self.python = python
        self.architecture = architecture
        self.cached = (LAYER_CACHE if cache is None else cache) / fingerprint

    # jsii hands over the BundlingOptions struct as keyword arguments; none of them is needed.
    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        if not self.cached.is_dir():
            if importlib.util.find_spec("pip") is None:
                return False  # CDK falls back to the Docker image
            requirements = self.cached.with_name(self.cached.name + ".requirements.txt")
            requirements.parent.mkdir(parents=True, exist_ok=True)
            requirements.write_text(self.requirements, encoding="utf-8")
            partial = self.cached.with_name(self.cached.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            build_dependency_layer(
                partial / "python",  # Lambda puts /opt/python on sys.path
                requirements=requirements,
                python=self.python,
                architecture=self.architecture,
            )
            partial.rename(self.cached)  # complete or absent: a killed build is never reused
        shutil.copytree(self.cached, output_dir, dirs_exist_ok=True, copy_function=_link_or_copy)
        return True


# What the wheels ship that a serving function never imports, relative to the layer's python/
# folder: test suites, type stubs, C headers, numpy's Fortran wrapper generator, the
# model-conversion tools of onnxruntime (transformers, quantization, tools, datasets, backend)
# and its C-API library (35 MB: the Python binding is linked without it, `readelf -d` lists no
# libonnxruntime.so among its needs, and nothing in the package loads it). The benchmark runs the
# pruned layer under the Lambda's Python and checks its answers (bench/run.py). Also the console
# scripts pip writes into bin/ (f2py, fastapi...; /opt/python/bin is on no PATH) and the RECORD
# lists of installed files (only pip uninstall reads them): their bytes hold this machine's
# interpreter path, in a script's first line and in that script's hash, and without them two
# builds of one lock give the same bytes wherever they run. And HUB_CLIENT below.
PRUNED_GLOBS: tuple[str, ...] = (
    "bin",
    "*.dist-info/RECORD",
    "onnxruntime/capi/libonnxruntime.so.*",
    "**/tests",
    "**/*.pyi",
    "numpy/f2py",
    "numpy/_core/include",
    "onnxruntime/transformers",
    "onnxruntime/quantization",
    "onnxruntime/tools",
    "onnxruntime/datasets",
    "onnxruntime/backend",
)

# The Hugging Face Hub client and what only it requires, distribution -> the folders it installs
# (30 MB on x86_64; the layer would pass 150 MB with it). tokenizers requires huggingface-hub, but
# its extension imports it only inside Tokenizer.from_pretrained, a download; the function builds
# an imported model's tokenizer from the version's verified tokenizer.json (Tokenizer.from_str),
# which tests/modelfn/test_tokenizer_file.py runs with the hub client made unimportable.
# tests/infra/test_packaging.py checks against the lock that nothing else the layer installs
# requires any of these, so a new dependency on one of them fails there, not in a function.
HUB_CLIENT: dict[str, tuple[str, ...]] = {
    "huggingface-hub": ("huggingface_hub",),
    "hf-xet": ("hf_xet",),
    "httpx2": ("httpx2",),
    "httpcore2": ("httpcore2",),
    "h11": ("h11",),
    "truststore": ("truststore",),
    "click": ("click",),
    "filelock": ("filelock",),
    "fsspec": ("fsspec",),
    "pyyaml": ("yaml", "_yaml"),
    "tqdm": ("tqdm",),
}
PRUNED_GLOBS += tuple(folder for folders in HUB_CLIENT.values() for folder in folders)


def prune_layer(folder: Path) -> int:
    """Delete PRUNED_GLOBS under `folder`; returns the bytes freed."""
    freed = 0
    for pattern in PRUNED_GLOBS:
        for path in sorted(folder.glob(pattern), key=lambda p: len(p.parts), reverse=True):
            if path.is_dir():
                freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                shutil.rmtree(path)
            elif path.exists():
                freed += path.stat().st_size
                path.unlink()
    return freed


# The layer's requirements file opens with this; it is part of the fingerprint, so it stays fixed.
LAYER_REQUIREMENTS_HEADER = (
    "# The dependency layer: requirements.lock's entries that pyproject.toml's dependencies\n"
    "# reach (less boto3, the runtime's), installed by hash (infra/packaging.py).\n"
)


def dependency_layer_code(
    *,
    requirements: list[LockedPackage],
    python: PythonVersion,
    architecture: CpuArchitecture,
    root: Path = REPO_ROOT,
) -> lambda_.Code:
    """The layer zip, bundled locally (Docker only as a fallback).

    The asset hash is what was resolved (the lock's pins and hashes, as the requirements file pip
    installs) plus the target platform, pruning and bytecode recipe: an unchanged lock reuses the
    bundle already in cdk.out instead of running pip again, a changed one can never reuse it, and
    no source tree is fingerprinted. `root` is only the folder the Docker fallback mounts;
    nothing is read from it.
    """
    text = requirements_text(requirements, LAYER_REQUIREMENTS_HEADER)
    platforms = pip_platforms(python, architecture)
    fingerprint = "\n".join([python, *platforms, text, BYTECODE, *PRUNED_GLOBS])
    install = ["python", *pip_install_command(
        "/tmp/requirements.txt", "/asset-output/python", python=python, architecture=architecture
    )]  # fmt: skip
    # The same PRUNED_GLOBS in bash (globstar for the "**/" patterns).
    prune = (
        "shopt -s globstar && cd /asset-output/python && rm -rf "
        + " ".join(PRUNED_GLOBS)
        + " && cd /"
    )
    compile_ = ["python", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash",
                "-d", LAYER_ROOT, "/asset-output/python"]  # fmt: skip
    # The requirements file travels inside the command, as a here-document.
    script = (
        f"cat > /tmp/requirements.txt <<'LOCK' && {shlex.join(install)} && {prune} && "
        f"PYTHONHASHSEED=0 {shlex.join(compile_)}\n{text}LOCK\n"
    )
    asset_hash = hashlib.sha256(fingerprint.encode()).hexdigest()
    return lambda_.Code.from_asset(
        str(root),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash,
        bundling=BundlingOptions(
            image=LAMBDA_PYTHONS[python].runtime.bundling_image,
            platform=DOCKER_PLATFORMS[architecture],
            command=["bash", "-c", script],
            local=PipInstallLocally(
                requirements=text,
                python=python,
                architecture=architecture,
                fingerprint=asset_hash,
            ),
        ),
    )
