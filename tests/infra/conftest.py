"""Synthesize the modelfn stack the way `cdk synth` does, minus the layer's pip install.

jsii start-up and synthesis cost seconds, so each test module synthesizes once (module-scoped
fixtures) and asserts many properties on that one template.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# jsii prints a multi-line banner on every start under an old Node (20 here); it says nothing
# about this code. The variable holds the silenced major versions.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from infra.settings import InfraSettings, settings_from_context
from infra.stacks.modelfn_stack import ModelfnStack
from modelfn.registry import Registry, load_registry
from modelfn.stages import STAGES_KEY, cdk_json_context


def stage_context(stage: str = "dev", **overrides: Any) -> dict[str, Any]:
    """cdk.json's context for `stage`, each override set where cdk.json keeps that key (the
    stage's table or the shared keys; a value of None removes the key)."""
    context = cdk_json_context()
    context["stage"] = stage
    table = context[STAGES_KEY][stage]
    for key, value in overrides.items():
        where, name = (table, key) if key in table else (context, f"modelfn:{key}")
        if value is None:
            where.pop(name, None)
        else:
            where[name] = value
    return context


def settings_for(stage: str = "dev", **overrides: Any) -> InfraSettings:
    return settings_from_context(cdk.App(context=stage_context(stage, **overrides)).node)


@dataclass
class Synthesized:
    stack: ModelfnStack
    template: Template
    outdir: Path  # the cloud assembly folder (asset.* folders live here)

    def resources(self, kind: str) -> dict[str, Any]:
        return dict(self.template.find_resources(kind))


def synthesize(
    registry: Registry, outdir: Path, stage: str = "dev", **overrides: Any
) -> Synthesized:
    """The stack of `stage` for `registry`, with cdk.json's context plus `overrides` (as
    `stage_context` applies them).

    `aws:cdk:bundling-stacks: []` skips the layer's pip install (network, ~1 min); the function
    code asset is still staged, so its contents can be checked.
    """
    # The shipped default reads the developer's model_artifacts/, which differs from machine
    # to machine: a synth here checks budgets only where a test names a store.
    overrides.setdefault("budget-store", "none")
    context = stage_context(stage, **overrides)
    context["aws:cdk:bundling-stacks"] = []
    app = cdk.App(context=context, outdir=str(outdir))
    stack = ModelfnStack(app, "Test", registry=registry, settings=settings_from_context(app.node))
    template = Template.from_stack(stack)
    return Synthesized(stack=stack, template=template, outdir=outdir)


def registry_from(text: str, folder: Path) -> Registry:
    """The registry a models.toml holding `text` gives, written into `folder`."""
    path = folder / "models.toml"
    path.write_text(text, encoding="utf-8")
    return load_registry(path)


# A SnapStart zip function that captures a sample of its requests, beside a traced torch
# container function on arm64 with provisioned concurrency, with settings unlike models.toml's.
MIXED = """
[models.zip-net]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = { config = "training/configs/cifar10-cnn.toml" }
serving = { snapstart = true }
capture = { sample_rate = 0.1 }

[models.torch-net]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = { config = "training/configs/cifar10-cnn.toml" }
serving = { runtime = "torch", alias = "prod", memory_mb = 3008, timeout_s = 29, tracing = true, cpu = "arm64", provisioned_concurrency = { min = 1, max = 4 } }
"""


@pytest.fixture(scope="module")
def mixed_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    return registry_from(MIXED, tmp_path_factory.mktemp("registry"))


@pytest.fixture(autouse=True)
def no_deployment_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """Synths here know no region unless a test sets one: a CDK_DEFAULT_REGION in the developer's
    shell must not decide what the region checks (infra/preflight.py) refuse."""
    monkeypatch.delenv("CDK_DEFAULT_REGION", raising=False)
