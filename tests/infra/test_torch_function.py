"""A registry entry with `serving.runtime = "torch"` deploys as a container image function.

The stack is synthesized for a two-model registry (one zip, one torch) the way `cdk synth` does:
the image is not built (no Docker engine here), only its build context is staged and listed in
the cloud assembly's asset manifest, which is what `cdk deploy` builds and pushes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.container_image import (
    DOCKERFILE,
    IMAGE_SOURCES,
    REQUIREMENTS_FILE,
    TORCH_REQUIREMENTS_FILE,
)
from modelfn.registry import REPO_ROOT, Registry
from tests.infra.conftest import Synthesized, cdk_json_context, registry_from, synthesize
from tests.infra.test_modelfn_stack import (
    as_list,
    bucket_arn,
    function_id,
    logical_id,
    role_statements,
    under_bucket,
)


@pytest.fixture(scope="module")
def synth(mixed_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(mixed_registry, tmp_path_factory.mktemp("cdk.out"))


def function_props(synth: Synthesized, model: str) -> dict[str, Any]:
    props: dict[str, Any] = synth.resources("AWS::Lambda::Function")[function_id(synth, model)][
        "Properties"
    ]
    return props


def docker_images(synth: Synthesized) -> dict[str, Any]:
    manifest = json.loads((synth.outdir / f"{synth.stack.artifact_id}.assets.json").read_text())
    images: dict[str, Any] = manifest.get("dockerImages", {})
    return images


def test_the_torch_entry_is_an_image_function_and_the_other_stays_a_zip(synth: Synthesized) -> None:
    torch, zipped = function_props(synth, "torch-net"), function_props(synth, "zip-net")
    assert torch["PackageType"] == "Image"
    assert not {"Runtime", "Handler", "Layers"} & set(torch)  # the image's CMD and base decide
    (image,) = docker_images(synth)
    assert image in json.dumps(torch["Code"]["ImageUri"])  # the image asset, tagged by its hash
    assert "PackageType" not in zipped and zipped["Handler"] == "functions.handler.handler"
    assert zipped["Layers"] == [{"Ref": logical_id(synth.stack.dependency_layers["arm64"].layer)}]


def test_the_image_function_is_configured_as_the_zip_function_is(synth: Synthesized) -> None:
    props = function_props(synth, "torch-net")
    bucket_id = logical_id(synth.stack.artifacts.bucket)
    assert (props["MemorySize"], props["Timeout"], props["Architectures"]) == (3008, 29, ["arm64"])
    assert props["Environment"]["Variables"] == {
        "MODELFN_MODEL": "torch-net",
        "MODELFN_STORE_URI": {"Fn::Join": ["", ["s3://", {"Ref": bucket_id}]]},
        "MODELFN_ALIAS": "prod",
        "MODELFN_CACHE_DIR": "/tmp/modelfn",
        "POWERTOOLS_SERVICE_NAME": "modelfn-torch-net",
        "MODELFN_RUNTIME": "torch",
    }
    log_group = synth.resources("AWS::Logs::LogGroup")[props["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == synth.stack.settings.log_retention_days
    # Read-only under its own prefix, like every model function.
    reads = [
        s for s in role_statements(synth, "torch-net") if "s3:GetObject" in as_list(s["Action"])
    ]
    objects = [r for s in reads for r in as_list(s["Resource"]) if r != bucket_arn(bucket_id)]
    assert objects == [under_bucket(bucket_id, "/torch-net/*")]


def test_the_asset_manifest_lists_the_image_for_the_functions_platform(synth: Synthesized) -> None:
    (image,) = docker_images(synth).values()
    source = image["source"]
    assert source["dockerFile"] == DOCKERFILE
    assert source["platform"] == "linux/arm64"
    assert source["dockerBuildArgs"] == {
        "PYTHON_VERSION": cdk_json_context()["modelfn:python-version"]
    }
    (destination,) = image["destinations"].values()
    assert "container-assets" in destination["repositoryName"]  # the bootstrap ECR repository


def test_the_staged_build_context_holds_only_what_the_image_copies(synth: Synthesized) -> None:
    (image,) = docker_images(synth).values()
    context = synth.outdir / image["source"]["directory"]
    files = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
    expected = {DOCKERFILE, ".dockerignore", REQUIREMENTS_FILE, TORCH_REQUIREMENTS_FILE} | {
        p.relative_to(REPO_ROOT).as_posix()
        for source in IMAGE_SOURCES
        for p in (
            [REPO_ROOT / source]
            if (REPO_ROOT / source).is_file()
            else (REPO_ROOT / source).rglob("*")
        )
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert files == expected
    assert (
        sum((context / f).stat().st_size for f in files) < 2_000_000
    )  # kilobytes of code, no .venv


ONLY_TORCH = """
[models.torch-net]
task = "image-classification"
architecture = "cifar10_cnn"
dataset = "cifar10"
data_subdir = "cifar-10-batches-py"
training = { config = "training/configs/cifar10-cnn.toml" }
serving = { runtime = "torch" }
"""


def test_a_torch_only_registry_builds_no_dependency_layer(tmp_path: Path) -> None:
    synthesized = synthesize(registry_from(ONLY_TORCH, tmp_path), tmp_path / "cdk.out")
    assert synthesized.stack.dependency_layers == {}
    assert not synthesized.resources("AWS::Lambda::LayerVersion")
    assert function_props(synthesized, "torch-net")["PackageType"] == "Image"


def test_xray_tracing_is_on_only_where_the_registry_asks(synth: Synthesized) -> None:
    assert function_props(synth, "torch-net")["TracingConfig"] == {"Mode": "Active"}
    assert "TracingConfig" not in function_props(synth, "zip-net")
    writes = [
        s
        for s in role_statements(synth, "torch-net")
        if "xray:PutTraceSegments" in as_list(s["Action"])
    ]
    assert writes and not [
        s
        for s in role_statements(synth, "zip-net")
        if "xray:PutTraceSegments" in as_list(s["Action"])
    ]
