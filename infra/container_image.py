"""The container image a `serving.runtime = "torch"` model deploys as: contents, requirements, asset.

The repository's Dockerfile builds it on the AWS Lambda Python base image: the same handler,
routes and task adapters as the zip function, with the eager torch model in place of
onnxruntime. What it copies is IMAGE_SOURCES (the zip's FUNCTION_SOURCES plus the model
definitions of architectures/), and what it pip-installs is
REQUIREMENTS_FILE, written from pyproject.toml by `container_requirements` so pyproject stays the
one list of versions (`python -m infra.container_image` rewrites it; tests/infra checks it).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_

from infra.packaging import (
    DOCKER_PLATFORMS,
    FUNCTION_SOURCES,
    CpuArchitecture,
    PythonVersion,
    canonical_name,
    project_table,
    requirement_name,
    runtime_requirements,
)
from modelfn.registry import REPO_ROOT

DOCKERFILE = "Dockerfile"
REQUIREMENTS_FILE = "requirements-torch.txt"
# The eager model's code: the architectures floor, which imports torch and the core only (the
# import contracts in pyproject.toml keep it so). Nothing of training/ enters the image.
TORCH_SOURCES = ("architectures",)
IMAGE_SOURCES = (*FUNCTION_SOURCES, *TORCH_SOURCES)
# The extra of pyproject.toml that holds the eager model's engine (torch, safetensors).
TORCH_EXTRA = "torch"
# onnxruntime runs the zip function's graph; the image serves the eager module and never imports it.
NOT_IN_IMAGE = frozenset({"onnxruntime"})
# PyPI's Linux torch wheels carry CUDA (several GB of nvidia-* packages); this index has the
# CPU-only build of the same version (2.13.0+cpu, which sorts above 2.13.0, so pip picks it).
TORCH_INDEX_URL = "https://download.pytorch.org/whl/cpu"

_HEADER = f"""\
# What the torch container image pip-installs (the Dockerfile's builder stage), with the CPU
# index {TORCH_INDEX_URL} as an extra index for torch.
# Written from pyproject.toml by `python -m infra.container_image`: [project].dependencies less
# boto3/botocore (the base image's runtime has them) and onnxruntime, plus the [{TORCH_EXTRA}] extra.
# Do not edit: change pyproject.toml and rerun; tests/infra fails while the two differ.
"""


def container_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The image's requirements: the zip layer's list less onnxruntime, plus the torch extra."""
    extras = project_table(pyproject).get("optional-dependencies", {})
    if TORCH_EXTRA not in extras:
        raise ValueError(
            f"{pyproject} has no [project.optional-dependencies] {TORCH_EXTRA} list; the torch "
            "container image installs it (torch and safetensors)"
        )
    served = [
        r
        for r in runtime_requirements(pyproject)
        if canonical_name(requirement_name(r)) not in NOT_IN_IMAGE
    ]
    return [*served, *extras[TORCH_EXTRA]]


def requirements_text(requirements: list[str]) -> str:
    """The REQUIREMENTS_FILE contents for `requirements`."""
    return _HEADER + "".join(f"{r}\n" for r in requirements)


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
    path = REPO_ROOT / REQUIREMENTS_FILE
    path.write_text(requirements_text(container_requirements()), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
