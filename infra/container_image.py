"""The container image a `serving.runtime = "torch"` model deploys as: contents, requirements, asset.

The repository's Dockerfile builds it on the AWS Lambda Python base image: the same handler,
routes and task adapters as the zip function, with the eager torch model in place of
onnxruntime. What it copies is IMAGE_SOURCES (the zip's FUNCTION_SOURCES plus the model
definitions of architectures/). What it pip-installs is requirements.lock's part that the image's
dependencies reach, at the versions the suite ran on: REQUIREMENTS_FILE holds every package but
torch with its hashes (`pip install --require-hashes`), TORCH_REQUIREMENTS_FILE torch's exact pin
(from the CPU index only). Both are written from pyproject.toml and the lock by
`python -m infra.container_image`; tests/infra checks that they are current.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_

from infra.packaging import (
    DOCKER_PLATFORMS,
    FUNCTION_SOURCES,
    PROVIDED_BY_RUNTIME,
    CpuArchitecture,
    PythonVersion,
    declared_runtime_dependencies,
    project_table,
    requirement_name,
)
from infra.requirements_lock import (
    LOCK_FILE,
    LockedPackage,
    canonical_name,
    closure,
    read_lock,
    requirements_text,
)
from modelfn.registry import REPO_ROOT

DOCKERFILE = "Dockerfile"
REQUIREMENTS_FILE = "requirements-torch.txt"
TORCH_REQUIREMENTS_FILE = "requirements-torch-cpu.txt"
# The eager model's code: the architectures floor, which imports torch and the core only (the
# import contracts in pyproject.toml keep it so). Nothing of training/ enters the image.
TORCH_SOURCES = ("architectures",)
IMAGE_SOURCES = (*FUNCTION_SOURCES, *TORCH_SOURCES)
# The extra of pyproject.toml that holds the eager model's engine (torch, safetensors).
TORCH_EXTRA = "torch"
# onnxruntime runs the zip function's graph; the image serves the eager module and never imports it.
NOT_IN_IMAGE = frozenset({"onnxruntime"})
# PyPI's Linux torch wheels carry CUDA (several GB of nvidia-* packages); this index has the
# CPU-only build of the same version (2.13.0+cpu, the lock's).
TORCH_INDEX_URL = "https://download.pytorch.org/whl/cpu"
# Installed by exact version, not by hash: `make lock` cannot reach the CPU index, so the lock
# holds the hash of the one local wheel the dev machine installs (cp311, x86_64), not of the
# image's cp312 wheels. pip takes it with --no-deps from the CPU index alone; the packages it
# requires are in REQUIREMENTS_FILE, by hash.
BY_VERSION_ONLY = frozenset({"torch"})

_HEADER = f"""\
# What the torch container image pip-installs by hash (the Dockerfile's builder stage):
# requirements.lock's entries that [project].dependencies (less boto3/botocore, the base image's
# runtime has them, and onnxruntime) and the [{TORCH_EXTRA}] extra reach, less torch itself
# ({TORCH_REQUIREMENTS_FILE}).
# Written by `python -m infra.container_image`, which `make lock` runs. Do not edit: change
# pyproject.toml and run `make lock`; tests/infra fails while this file is stale.
"""
_TORCH_HEADER = f"""\
# torch for the container image, at requirements.lock's version, from the CPU index only,
# {TORCH_INDEX_URL}, with pip --no-deps: what it requires is in
# {REQUIREMENTS_FILE}.
# Pinned by version, not hash: the lock holds no hash of the image's cp312 wheels (their index
# is not reachable where the lock is made). Written by `python -m infra.container_image`.
"""


def container_requirements(
    pyproject: Path = REPO_ROOT / "pyproject.toml", lock: Path = LOCK_FILE
) -> list[LockedPackage]:
    """The image's packages: the zip layer's declared dependencies less onnxruntime, plus the
    torch extra, and everything they require, at requirements.lock's versions."""
    extras = project_table(pyproject).get("optional-dependencies", {})
    if TORCH_EXTRA not in extras:
        raise ValueError(
            f"{pyproject} has no [project.optional-dependencies] {TORCH_EXTRA} list; the torch "
            "container image installs it (torch and safetensors)"
        )
    roots = [
        name
        for name in map(
            requirement_name, [*declared_runtime_dependencies(pyproject), *extras[TORCH_EXTRA]]
        )
        if canonical_name(name) not in NOT_IN_IMAGE
    ]
    return closure(read_lock(lock), roots, leave_out=PROVIDED_BY_RUNTIME, lock_path=lock)


def hashed_requirements_text(packages: list[LockedPackage]) -> str:
    """The REQUIREMENTS_FILE contents: every package but BY_VERSION_ONLY, with its hashes."""
    return requirements_text([p for p in packages if p.name not in BY_VERSION_ONLY], _HEADER)


def torch_requirements_text(packages: list[LockedPackage]) -> str:
    """The TORCH_REQUIREMENTS_FILE contents: BY_VERSION_ONLY's exact pins."""
    return _TORCH_HEADER + "".join(f"{p.pin}\n" for p in packages if p.name in BY_VERSION_ONLY)


def image_code(
    *, python: PythonVersion, architecture: CpuArchitecture, root: Path = REPO_ROOT
) -> lambda_.DockerImageCode:
    """The image as a CDK asset: built from `root` by the Dockerfile at deploy time, not at synth.

    `cdk synth` only stages the build context (what .dockerignore lets in) into cdk.out and lists
    the image in the asset manifest; `cdk deploy` builds it with Docker and pushes it to the
    bootstrap ECR repository. The base image's Python is cdk.json's, as for the zip functions.
    """
    return lambda_.DockerImageCode.from_image_asset(
        str(root),
        file=DOCKERFILE,
        platform=ecr_assets.Platform.custom(DOCKER_PLATFORMS[architecture]),
        build_args={"PYTHON_VERSION": python},
    )


def main() -> None:
    packages = container_requirements()
    for name, text in (
        (REQUIREMENTS_FILE, hashed_requirements_text(packages)),
        (TORCH_REQUIREMENTS_FILE, torch_requirements_text(packages)),
    ):
        (REPO_ROOT / name).write_text(text, encoding="utf-8")
        print(f"wrote {REPO_ROOT / name}")


if __name__ == "__main__":
    main()
