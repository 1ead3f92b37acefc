"""What goes into the Lambda zips: the function code asset and the dependency layer's contents.

The code asset is `functions/` and the parts of `modelfn/` the handler imports
(FUNCTION_SOURCES), and nothing else (no CLI, local emulator, training code, infra, tests or venv). The third-party packages go in one layer, pip-installed on this machine
for the Lambda platform, so no Docker engine is needed; the Lambda Python build image is the
fallback where pip cannot run locally.
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

from infra.lambda_python import lambda_interpreter
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
    "modelfn/store",
    "modelfn/text.py",
)

# The Lambda Python runtime ships boto3 and botocore (~80 MB unzipped); a second copy in the
# layer would eat a third of the 250 MB limit for nothing.
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore"})

_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical_name(name: str) -> str:
    """PEP 503 normalised project name ('Aws_Lambda.Powertools' -> 'aws-lambda-powertools')."""
    return re.sub(r"[-_.]+", "-", name).lower()


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


def runtime_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
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


def function_code(root: Path = REPO_ROOT) -> lambda_.Code:
    """The function zip: FUNCTION_SOURCES from `root`, without bytecode caches.

    CDK's glob excludes run in order and a later `!pattern` re-includes; a pattern without a
    slash matches a basename anywhere, so `*` and `.*` (minimatch's `*` skips dotfiles) drop
    every entry, and CDK then skips walking dropped folders, .venv included. Each kept path
    re-includes its parent folders (else CDK would not walk them) and, if a folder, its contents.
    """
    keep: dict[str, None] = {}  # an ordered set of `!pattern`s
    for source in FUNCTION_SOURCES:
        parts = source.split("/")
        for depth in range(1, len(parts) + 1):
            keep["!" + "/".join(parts[:depth])] = None
        if (root / source).is_dir():
            keep[f"!{source}/**"] = None
    return lambda_.Code.from_asset(str(root), exclude=["*", ".*", *keep, "__pycache__", "*.pyc"])


def pip_install_command(
    requirements: list[str],
    target: str,
    *,
    python: PythonVersion,
    architecture: CpuArchitecture,
    extra_index_urls: tuple[str, ...] = (),
) -> list[str]:
    """pip arguments that fetch Lambda-compatible wheels into `target`, on any host OS."""
    platforms = [arg for tag in pip_platforms(python, architecture) for arg in ("--platform", tag)]
    indexes = [arg for url in extra_index_urls for arg in ("--extra-index-url", url)]
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
        *indexes,
        *requirements,
    ]  # fmt: skip


def pip_install(
    requirements: list[str],
    target: Path,
    *,
    python: PythonVersion,
    architecture: CpuArchitecture,
    extra_index_urls: tuple[str, ...] = (),
) -> None:
    """pip-install `requirements` for the Lambda platform into `target`; RuntimeError saying what
    to change if pip fails."""
    command = [sys.executable, *pip_install_command(
        requirements, str(target), python=python, architecture=architecture,
        extra_index_urls=extra_index_urls,
    )]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        indexes = " and ".join(["PyPI (or PIP_INDEX_URL)", *extra_index_urls])
        raise RuntimeError(
            f"installing {target} failed: {shlex.join(command)} exited with "
            f"{result.returncode}:\n{result.stderr[-2000:]}\nEvery requirement needs a wheel "
            f"for Python {python} on glibc 2.{LAMBDA_PYTHONS[python].glibc_minor} "
            f"({architecture}); relax the pin in pyproject.toml or pick another "
            f"modelfn:python-version in cdk.json. Check access to {indexes}."
        )


def build_dependency_layer(
    target: Path, *, requirements: list[str], python: PythonVersion, architecture: CpuArchitecture
) -> None:
    """The layer's python/ folder at `target`: installed for the Lambda platform, pruned, compiled.

    The one builder of the layer: CDK's local bundling (PipInstallLocally) calls it for
    `cdk synth`, and `modelfn package` measures what it built.
    """
    pip_install(requirements, target, python=python, architecture=architecture)
    prune_layer(target)
    compile_bytecode(target, python)


# Built layers by fingerprint: every stage, `modelfn package` and the benchmark reuse one build,
# so a synth after the first needs no network (pip reaches PyPI only to build a new layer).
LAYER_CACHE = REPO_ROOT / "build" / "layers"


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)  # CDK zips the bundle; a hard link saves copying ~120 MB
    except OSError:
        shutil.copy2(source, target)


@jsii.implements(ILocalBundling)
class PipInstallLocally:
    """CDK local bundler: the layer's requirements, installed into `<output>/python`.

    The layer is built once per fingerprint (requirements, platform, pruning) into LAYER_CACHE
    and linked into each bundle from there.
    """

    def __init__(
        self,
        *,
        requirements: list[str],
        python: PythonVersion,
        architecture: CpuArchitecture,
        fingerprint: str,
        cache: Path | None = None,
    ) -> None:
        self.requirements = requirements
        self.python = python
        self.architecture = architecture
        self.cached = (LAYER_CACHE if cache is None else cache) / fingerprint

    # jsii hands over the BundlingOptions struct as keyword arguments; none of them is needed.
    def try_bundle(self, output_dir: str, *, image: DockerImage, **_options: Any) -> bool:
        if not self.cached.is_dir():
            if importlib.util.find_spec("pip") is None:
                return False  # CDK falls back to the Docker image
            partial = self.cached.with_name(self.cached.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            build_dependency_layer(
                partial / "python",  # Lambda puts /opt/python on sys.path
                requirements=self.requirements,
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
# pruned layer under the Lambda's Python and checks its answers (bench/run.py).
PRUNED_GLOBS = (
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


def compile_bytecode(folder: Path, python: PythonVersion) -> None:
    """Pre-compile `folder` with the Lambda's Python version; RuntimeError if that fails.

    /opt is read-only on Lambda, so without .pyc files every cold start compiles numpy, pydantic
    and fastapi again (measured: 2.77 s to the first inference instead of 1.37 s). Bytecode of
    another interpreter version would be dead weight, so it must be this version's. Unchecked
    hash-based .pyc files (PEP 552): the zip's timestamps do not survive the way to Lambda.
    """
    command, env = lambda_interpreter(python)
    result = subprocess.run(
        [*command, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(folder)],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(
            f"compiling the dependency layer's bytecode with {command[0]} failed "
            f"({result.returncode}):\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
        )


def dependency_layer_code(
    *,
    requirements: list[str],
    python: PythonVersion,
    architecture: CpuArchitecture,
    root: Path = REPO_ROOT,
) -> lambda_.Code:
    """The layer zip, bundled locally (Docker only as a fallback).

    The asset hash is the requirement list plus the target platform, so an unchanged list
    reuses the bundle already in cdk.out instead of running pip again, and no source tree is
    fingerprinted. `root` is only the folder the Docker fallback mounts; nothing is read from it.
    """
    platforms = pip_platforms(python, architecture)
    # The bytecode mode is part of the fingerprint: a bundle built before the layer carried
    # bytecode is rebuilt, not reused from cdk.out.
    fingerprint = "\n".join(
        [python, *platforms, *requirements, "bytecode: unchecked-hash", *PRUNED_GLOBS]
    )
    install = ["python", *pip_install_command(
        requirements, "/asset-output/python", python=python, architecture=architecture
    )]  # fmt: skip
    # The same PRUNED_GLOBS in bash (globstar for the "**/" patterns).
    prune = (
        "shopt -s globstar && cd /asset-output/python && rm -rf "
        + " ".join(PRUNED_GLOBS)
        + " && cd /"
    )
    compile_ = [
        "python",
        "-m",
        "compileall",
        "-q",
        "--invalidation-mode",
        "unchecked-hash",
        "/asset-output/python",
    ]
    asset_hash = hashlib.sha256(fingerprint.encode()).hexdigest()
    return lambda_.Code.from_asset(
        str(root),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash,
        bundling=BundlingOptions(
            image=LAMBDA_PYTHONS[python].runtime.bundling_image,
            platform=DOCKER_PLATFORMS[architecture],
            command=["bash", "-c", f"{shlex.join(install)} && {prune} && {shlex.join(compile_)}"],
            local=PipInstallLocally(
                requirements=requirements,
                python=python,
                architecture=architecture,
                fingerprint=asset_hash,
            ),
        ),
    )
