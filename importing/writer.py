"""Write an imported version's folder, as training writes a trained one (training/pipeline.py).

The import works in a temporary folder; only once every check passed are its files copied into a
hidden staging folder beside the final one, the manifest written and the whole verified, then
renamed to `<out_dir>/<name>/<version>/` in one step, so readers never see half a version.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from modelfn.artifact import (
    ImagePreprocessing,
    ImportRecord,
    Manifest,
    Scores,
    TensorSpec,
    TokenizerPreprocessing,
    commit_version,
    describe_files,
    framework_versions,
    new_version,
)
from modelfn.reference_stats import ReferenceStats


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
    scores: Scores,
    preprocessing: ImagePreprocessing | TokenizerPreprocessing | None,
    imported: ImportRecord,
    log: Callable[[str], None],
    reference: ReferenceStats | None = None,
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
        scores=scores,
        preprocessing=preprocessing,
        metrics={},  # nothing was evaluated here; the parity figures are in `imported`
        imported=imported,
        reference=reference,
        files=files,
    )
    model_root = out_dir / name
    model_root.mkdir(parents=True, exist_ok=True)
    # A hidden sibling of the final folder, so the rename is atomic (modelfn.artifact).
    staging = model_root / f".staging-{uuid.uuid4().hex}"
    try:
        shutil.copytree(work, staging)
        for path in staging.iterdir():  # temporary files are owner-only; artifacts are shared
            path.chmod(0o644)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    folder = commit_version(staging, manifest)
    log(f"wrote {folder}")
    return folder
