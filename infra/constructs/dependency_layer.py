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
    declared_runtime_dependencies,
    dependency_layer_code,
    requirement_name,
    runtime_requirements,
)
from infra.requirements_lock import LOCK_FILE, canonical_name
from modelfn.registry import REPO_ROOT


class DependencyLayer(Construct):
    """One layer, shared by every model function: pyproject.toml's dependencies at the versions of
    requirements.lock, installed by hash."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        python: PythonVersion,
        architecture: CpuArchitecture,
        pyproject: Path = REPO_ROOT / "pyproject.toml",
        lock: Path = LOCK_FILE,
    ) -> None:
        super().__init__(scope, construct_id)
        self.requirements = runtime_requirements(pyproject, lock)
        pins = {package.name: package.pin for package in self.requirements}
        declared = [
            pins[canonical_name(requirement_name(r))]
            for r in declared_runtime_dependencies(pyproject)
        ]
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=dependency_layer_code(
                requirements=self.requirements, python=python, architecture=architecture
            ),
            compatible_runtimes=[LAMBDA_PYTHONS[python].runtime],
            compatible_architectures=[LAMBDA_ARCHITECTURES[architecture]],
            # Lambda caps a layer description at 256 characters: the declared packages' pins.
            description=("modelfn runtime dependencies: " + ", ".join(declared))[:256],
        )
