"""One model's deployment, built as infra/ builds it, and its size against Lambda's limits.

`build_package` synthesizes the modelfn stack for that one model, with bundling on, into
`build/package/<model>-<arch>/cdk.out`: the same `ModelfnStack`, `function_code()`,
`dependency_layer_code()` and, through CDK's local bundling, `build_dependency_layer` that
`cdk synth` runs. What is measured is therefore the asset folders CDK would upload:

- zip function (serving.runtime "onnxruntime"): the function code asset plus the dependency
  layer, unzipped, against Lambda's 250 MB limit for a function and its layers;
- container image (serving.runtime "torch"): the image's build context (the code) plus
  requirements-torch.txt (by hash) and requirements-torch-cpu.txt (torch, from the CPU index)
  pip-installed for the image's platform, as the Dockerfile's builder stage installs them,
  against the 10 GB image limit. The base image's own layers (the Python
  runtime, boto3) are not counted: nothing here can pull or build images.

An unchanged lock reuses the layer already built (CDK keys the bundle by the pinned, hashed
requirements file), so a second run takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.bytecode import BYTECODE, TASK_ROOT, compile_bytecode
from infra.constructs.model_function import HANDLER
from infra.packaging import BY_HASH, CpuArchitecture, PythonVersion, pip_install
from modelfn.artifact import Runtime
from modelfn.registry import Registry
from modelfn.stages import CONTEXT_PREFIX, cdk_json_context

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

    from infra.budget_check import OFF as BUDGET_CHECK_OFF
    from infra.settings import settings_from_context
    from infra.stacks.modelfn_stack import ModelfnStack

    entry = registry.get(model)
    if architecture is not None:
        entry = entry.model_copy(
            update={"serving": entry.serving.model_copy(update={"cpu": architecture})}
        )
    arch = entry.serving.lambda_cpu
    folder = out_dir / f"{model}-{arch}"
    context = cdk_json_context()
    # `modelfn package` checks the budget itself, against the store it is given (--store), after
    # the size: the synth's own check (infra/budget_check.py) would read cdk.json's store instead.
    context[f"{CONTEXT_PREFIX}budget-store"] = BUDGET_CHECK_OFF
    app = cdk.App(context=context, outdir=str(folder / "cdk.out"))
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
    manifest = json.loads((assets / f"{stack.artifact_id}.assets.json").read_text(encoding="utf-8"))
    (image,) = manifest["dockerImages"].values()
    context_dir = assets / image["source"]["directory"]
    deps = image_dependencies(
        folder / "image-deps", context_dir, python=settings.python_version, architecture=arch
    )
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
    target: Path, context: Path, *, python: PythonVersion, architecture: CpuArchitecture
) -> Path:
    """The image's packages installed for its platform from the requirements files in its build
    `context`, as the Dockerfile's builder stage installs them, and compiled; reused while the
    files are unchanged."""
    from infra.container_image import (
        REQUIREMENTS_FILE,
        TORCH_INDEX_URL,
        TORCH_REQUIREMENTS_FILE,
    )

    hashed, torch = context / REQUIREMENTS_FILE, context / TORCH_REQUIREMENTS_FILE
    parts = (python, architecture, TORCH_INDEX_URL, BYTECODE, hashed.read_text(), torch.read_text())
    fingerprint = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    stamp = target / ".modelfn-fingerprint"
    if stamp.is_file() and stamp.read_text() == fingerprint:
        return target
    if target.exists():
        shutil.rmtree(target)
    # Two folders, as the Dockerfile's /deps and /torch: pip --target would not merge them.
    pip_install(
        hashed, target / "packages", python=python, architecture=architecture, options=BY_HASH
    )
    pip_install(
        torch, target / "torch", python=python, architecture=architecture,
        options=("--no-deps", "--index-url", TORCH_INDEX_URL),
    )  # fmt: skip
    refuse_cuda_torch(target, TORCH_INDEX_URL)
    compile_bytecode(target / "packages", python, runs_from=TASK_ROOT)  # as the Dockerfile does
    compile_bytecode(target / "torch", python, runs_from=TASK_ROOT)
    stamp.write_text(fingerprint)
    return target


def refuse_cuda_torch(target: Path, index_url: str) -> None:
    """RuntimeError if pip installed a CUDA torch: PyPI's takes nvidia-* packages along (measured
    here: 4,757 MB, five times the CPU build) and would reach the image through any index that
    mirrors it. The Dockerfile's builder stage makes the same check by importing torch."""
    nvidia = sorted(p.name for p in target.rglob("nvidia_*.dist-info"))
    versions = [v for v in target.glob("*/torch/version.py") if v.is_file()]
    cuda = (
        re.search(r"^cuda\b.*=\s*'([^']+)'", versions[0].read_text(), re.MULTILINE)
        if versions
        else None
    )
    if nvidia or cuda:
        shutil.rmtree(target)
        raise RuntimeError(
            f"pip installed a CUDA build of torch (cuda {cuda.group(1) if cuda else '?'}, "
            f"{len(nvidia)} nvidia-* packages) instead of the CPU build from {index_url}: "
            "that index, or a mirror standing in for it, serves another build. Check what "
            "pip --index-url reaches"
        )


def describe(package: Package) -> str:
    """'cifar10-cnn (zip function, python3.12, x86_64)'."""
    kind = "zip function" if package.runtime == "onnxruntime" else "container image"
    return f"{package.model} ({kind}, python{package.python}, {package.architecture})"
