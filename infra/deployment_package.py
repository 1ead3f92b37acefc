"""One model's deployment, built as infra/ builds it, and its size against Lambda's limits.

`build_package` synthesizes the modelfn stack for that one model, with bundling on, into
`build/package/<model>-<arch>/cdk.out`: the same `ModelfnStack`, `function_code()`,
`dependency_layer_code()` and, through CDK's local bundling, `build_dependency_layer` that
`cdk synth` runs. What is measured is therefore the asset folders CDK would upload:

- zip function (serving.runtime "onnxruntime"): the function code asset plus the dependency
  layer, unzipped, against Lambda's 250 MB limit for a function and its layers;
- container image (serving.runtime "torch"): the image's build context (the code) plus
  requirements-torch.txt pip-installed for the image's platform, as the Dockerfile's builder
  stage installs it, against the 10 GB image limit. The base image's own layers (the Python
  runtime, boto3) are not counted: nothing here can pull or build images.

An unchanged requirement list reuses the layer already bundled there (CDK keys the bundle by
that list), so a second run takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.constructs.model_function import HANDLER
from infra.packaging import CpuArchitecture, PythonVersion, compile_bytecode, pip_install
from modelfn.artifact import Runtime
from modelfn.registry import Registry
from modelfn.stages import cdk_json_context

# Lambda refuses a zip function whose code and layers unzip to 262,144,000 bytes or more (its
# error message names that figure: 250 MiB). Above 150 MiB cold starts grow and the headroom for
# one more dependency is gone: issue 8 sets that as the package target.
MIB = 1 << 20
ZIP_LIMIT = 250 * MIB
ZIP_WARNING = 150 * MIB
# A container image may be 10 GB uncompressed, every layer included.
IMAGE_LIMIT = 10 * 1024 * MIB


class PackageTooLarge(Exception):
    """The deployment is above Lambda's limit; the message says by how much and what to do."""


@dataclass(frozen=True)
class Part:
    name: str
    path: Path
    size: int  # bytes, unzipped


@dataclass(frozen=True)
class Package:
    model: str
    runtime: Runtime
    architecture: CpuArchitecture
    python: PythonVersion
    folder: Path
    parts: tuple[Part, ...]
    limit: int
    warning: int | None
    measures: str  # what the total counts, in words

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)


def folder_size(path: Path) -> int:
    """Bytes of every file under `path`, as they unzip (links counted once, as what they name)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def mib(size: int) -> str:
    return f"{size / MIB:.1f} MB"


def size_verdict(size: int, *, limit: int, warning: int | None, what: str) -> str | None:
    """None below `warning`, a warning line up to `limit`; PackageTooLarge above `limit`."""
    if size > limit:
        raise PackageTooLarge(
            f"{what} is {mib(size)} unzipped, {mib(size - limit)} over Lambda's {mib(limit)} "
            "limit: Lambda would refuse it. Drop a dependency from pyproject.toml, prune more in "
            'infra/packaging.py (PRUNED_GLOBS), or set serving.runtime = "torch" in models.toml '
            "for a container image (10 GB)"
        )
    if warning is not None and size > warning:
        return (
            f"{what} is {mib(size)} unzipped, above {mib(warning)}: cold starts grow with it and "
            f"{mib(limit - size)} are left under Lambda's {mib(limit)} limit"
        )
    return None


def build_package(
    model: str,
    *,
    registry: Registry,
    architecture: CpuArchitecture | None,
    out_dir: Path,
) -> Package:
    """Build `model`'s deployment as `cdk synth` does, into `out_dir/<model>-<arch>`, and measure it.

    `architecture` defaults to the entry's CPU (models.toml `serving.cpu`, else its runtime's
    default). The stage is cdk.json's default one (dev). Raises what the build raises
    (RuntimeError from pip, naming the requirement and the fix).
    """
    import aws_cdk as cdk

    from infra.settings import settings_from_context
    from infra.stacks.modelfn_stack import ModelfnStack

    entry = registry.get(model)
    if architecture is not None:
        entry = entry.model_copy(
            update={"serving": entry.serving.model_copy(update={"cpu": architecture})}
        )
    arch = entry.serving.lambda_cpu
    folder = out_dir / f"{model}-{arch}"
    app = cdk.App(context=cdk_json_context(), outdir=str(folder / "cdk.out"))
    settings = settings_from_context(app.node)
    stack = ModelfnStack(
        app, "Package", registry=Registry(models={model: entry}), settings=settings
    )
    assembly = app.synth()
    template: dict[str, Any] = assembly.get_stack_artifact(stack.artifact_id).template
    resources: dict[str, Any] = template["Resources"]
    assets = Path(assembly.directory)

    def asset_folder(s3_key: str) -> Path:
        return assets / f"asset.{s3_key.removesuffix('.zip')}"

    if entry.serving.runtime == "onnxruntime":
        # The stack of one model holds one model function (beside CDK's own helper functions,
        # such as dev's bucket auto-delete) and one layer.
        (function,) = [
            r for r in resources.values()
            if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == HANDLER
        ]  # fmt: skip
        (layer,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::LayerVersion"]
        code = asset_folder(function["Properties"]["Code"]["S3Key"])
        layer_folder = asset_folder(layer["Properties"]["Content"]["S3Key"])
        return Package(
            model, "onnxruntime", arch, settings.python_version, folder,
            (Part("function code", code, folder_size(code)),
             Part("dependency layer", layer_folder, folder_size(layer_folder))),
            ZIP_LIMIT, ZIP_WARNING, "the function code asset and the dependency layer, unzipped",
        )  # fmt: skip
    from infra.container_image import TORCH_INDEX_URL, container_requirements

    manifest = json.loads((assets / f"{stack.artifact_id}.assets.json").read_text(encoding="utf-8"))
    (image,) = manifest["dockerImages"].values()
    context_dir = assets / image["source"]["directory"]
    deps = image_dependencies(
        folder / "image-deps", container_requirements(), python=settings.python_version,
        architecture=arch, extra_index_urls=(TORCH_INDEX_URL,),
    )  # fmt: skip
    parts = (
        Part("image build context (code)", context_dir, folder_size(context_dir)),
        Part("image packages (pip, as the Dockerfile installs them)", deps, folder_size(deps)),
    )
    return Package(
        model,
        "torch",
        arch,
        settings.python_version,
        folder,
        parts,
        IMAGE_LIMIT,
        None,
        "the image's code and pip-installed packages; the base image's layers are not counted",
    )


def image_dependencies(
    target: Path,
    requirements: list[str],
    *,
    python: PythonVersion,
    architecture: CpuArchitecture,
    extra_index_urls: tuple[str, ...],
) -> Path:
    """`requirements` installed for the image's platform and compiled, reused while unchanged."""
    fingerprint = hashlib.sha256(
        "\n".join([python, architecture, *extra_index_urls, *requirements]).encode()
    ).hexdigest()
    stamp = target / ".modelfn-fingerprint"
    if stamp.is_file() and stamp.read_text() == fingerprint:
        return target
    if target.exists():
        shutil.rmtree(target)
    pip_install(
        requirements,
        target,
        python=python,
        architecture=architecture,
        extra_index_urls=extra_index_urls,
    )
    refuse_cuda_torch(target, extra_index_urls)
    compile_bytecode(target, python)  # the Dockerfile compiles the task root the same way
    stamp.write_text(fingerprint)
    return target


def refuse_cuda_torch(target: Path, extra_index_urls: tuple[str, ...]) -> None:
    """RuntimeError if pip took PyPI's CUDA torch: it does so quietly when the CPU index cannot be
    reached (measured here: 4,757 MB with the nvidia-* packages, five times the CPU build). The
    Dockerfile's builder stage makes the same check by importing torch."""
    nvidia = sorted(p.name for p in target.glob("nvidia_*.dist-info"))
    version = target / "torch" / "version.py"
    cuda = (
        re.search(r"^cuda\b.*=\s*'([^']+)'", version.read_text(), re.MULTILINE)
        if version.is_file()
        else None
    )
    if nvidia or cuda:
        shutil.rmtree(target)
        raise RuntimeError(
            f"pip installed a CUDA build of torch (cuda {cuda.group(1) if cuda else '?'}, "
            f"{len(nvidia)} nvidia-* packages) instead of the CPU build from "
            f"{', '.join(extra_index_urls)}: that index was not reachable from here, or lacks "
            "the pinned version for this platform. Check access to it (pip --extra-index-url)"
        )


def describe(package: Package) -> str:
    """'cifar10-cnn (zip function, python3.12, x86_64)'."""
    kind = "zip function" if package.runtime == "onnxruntime" else "container image"
    return f"{package.model} ({kind}, python{package.python}, {package.architecture})"
