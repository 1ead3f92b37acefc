"""The Lambda layer with the functions' third-party packages (onnxruntime, numpy, pydantic...)."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.packaging import (
    LAMBDA_ARCHITECTURES,
    LAMBDA_PYTHONS,
    CpuArchitecture,
    PythonVersion,
    dependency_layer_code,
    runtime_requirements,
)
from modelfn.registry import REPO_ROOT


class DependencyLayer(Construct):
    """One layer, shared by every model function, built from pyproject.toml's dependencies."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        python: PythonVersion,
        architecture: CpuArchitecture,
        pyproject: Path = REPO_ROOT / "pyproject.toml",
    ) -> None:
        super().__init__(scope, construct_id)
        self.requirements = runtime_requirements(pyproject)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=dependency_layer_code(
                requirements=self.requirements, python=python, architecture=architecture
            ),
            compatible_runtimes=[LAMBDA_PYTHONS[python].runtime],
            compatible_architectures=[LAMBDA_ARCHITECTURES[architecture]],
            # Lambda caps a layer description at 256 characters.
            description=("modelfn runtime dependencies: " + ", ".join(self.requirements))[:256],
        )
