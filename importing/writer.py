"""Write an imported version's folder, as training writes a trained one (training/pipeline.py).

The import works in a temporary folder; only once every check passed are its files copied into a
hidden staging folder beside the final one, the manifest written and the whole verified, then
renamed to `<out_dir>/<name>/<version>/` in one step, so readers never see half a version.
"""

from __future__ import annotations

import platform
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from modelfn.artifact import (
    ArtifactError,
    ImagePreprocessing,
    ImportRecord,
    Manifest,
    TensorSpec,
    describe_files,
    new_version,
    verify_artifact,
    write_manifest,
)


def framework_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """The versions of the packages that produced and checked the files."""
    found = {"python": platform.python_version()}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def write_version(
    work: Path,
    out_dir: Path,
    *,
    name: str,
    task: str,
    version_file: str,
    packages: tuple[str, ...],
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    labels: list[str],
    preprocessing: ImagePreprocessing | None,
    imported: ImportRecord,
    log: Callable[[str], None],
) -> Path:
    """Every file of `work` plus the manifest, as `<out_dir>/<name>/<version>/`; that folder.

    The version is named after `version_file`'s sha256 (the weights, or the graph where there are
    none), as a trained version is after its weights'; `packages` are the ones whose versions the
    manifest records.
    """
    files = describe_files(work, sorted(p.name for p in work.iterdir()))
    manifest = Manifest(
        name=name,
        version=new_version(files[version_file].sha256),
        task=task,
        created_at=datetime.now(UTC),
        frameworks=framework_versions(packages),
        inputs=inputs,
        outputs=outputs,
        labels=labels,
        preprocessing=preprocessing,
        metrics={},  # nothing was evaluated here; the parity figures are in `imported`
        imported=imported,
        files=files,
    )
    model_root = out_dir / name
    folder = model_root / manifest.version
    if folder.exists():  # same bytes imported within the same second: versions are immutable
        raise ArtifactError(f"{folder} already exists; versions are immutable, remove it first")
    model_root.mkdir(parents=True, exist_ok=True)
    staging = model_root / f".staging-{uuid.uuid4().hex}"
    try:
        shutil.copytree(work, staging)
        for path in staging.iterdir():  # temporary files are owner-only; artifacts are shared
            path.chmod(0o644)
        write_manifest(staging, manifest)
        verify_artifact(staging, manifest)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"wrote {folder}")
    return folder
