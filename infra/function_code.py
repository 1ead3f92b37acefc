"""The function code asset: FUNCTION_SOURCES with their bytecode, staged for CDK to zip.

/var/task is read-only on Lambda, so bytecode that does not ship is compiled again on every cold
start (bench/code_bytecode.py measures what shipping it saves). The asset is staged once per
fingerprint of the sources (paths and bytes), the Python version and BYTECODE into
build/function-code/, and CDK hashes the staged folder, so the asset hash is the bytes shipped;
compile_bytecode makes those bytes the same on every build machine.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from aws_cdk import aws_lambda as lambda_

from infra.bytecode import BYTECODE, TASK_ROOT, compile_bytecode
from infra.packaging import FUNCTION_SOURCES, PythonVersion
from modelfn.registry import REPO_ROOT

# Staged assets by fingerprint: each synth of unchanged code reuses one folder.
FUNCTION_CODE_CACHE = REPO_ROOT / "build" / "function-code"


def function_files(root: Path = REPO_ROOT) -> list[str]:
    """FUNCTION_SOURCES' files under `root`, as sorted relative paths, without bytecode caches or
    dotfiles; FileNotFoundError naming a source that is gone (FUNCTION_SOURCES must follow)."""
    files: list[str] = []
    for source in FUNCTION_SOURCES:
        origin = root / source
        if not origin.exists():
            raise FileNotFoundError(
                f"{origin} is in infra/packaging.py FUNCTION_SOURCES but does not exist: "
                "update FUNCTION_SOURCES (and the Dockerfile's COPY lines) after a move"
            )
        for path in sorted(origin.rglob("*")) if origin.is_dir() else [origin]:
            relative = path.relative_to(root)
            if path.is_file() and not any(
                part == "__pycache__" or part.startswith(".") for part in relative.parts
            ):
                files.append(relative.as_posix())
    return sorted(files)


def source_fingerprint(root: Path, files: list[str], python: PythonVersion) -> str:
    """sha256 of `files` (names and bytes), the Python they are compiled for, and BYTECODE."""
    digest = hashlib.sha256(f"{python}\n{BYTECODE}\n".encode())
    for name in files:
        content = (root / name).read_bytes()
        digest.update(f"{name}\n{len(content)}\n".encode() + content)
    return digest.hexdigest()


def stage_function_code(python: PythonVersion, root: Path, cache: Path) -> Path:
    """`cache`/<fingerprint>: FUNCTION_SOURCES from `root` and their bytecode, built if absent."""
    files = function_files(root)
    staged = cache / source_fingerprint(root, files, python)
    if staged.is_dir():
        return staged
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f"{staged.name}.", dir=cache))
    partial.chmod(0o755)  # mkdtemp's 0700 would follow the folder into cdk.out
    for name in files:
        (partial / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, partial / name)
    compile_bytecode(partial, python, runs_from=TASK_ROOT)
    try:
        partial.rename(staged)  # complete or absent: a killed build is never reused
    except OSError:
        if not staged.is_dir():  # not another synth finishing the same folder first
            raise
        shutil.rmtree(partial)
    return staged


def function_code(
    python: PythonVersion, root: Path = REPO_ROOT, cache: Path | None = None
) -> lambda_.Code:
    """The function zip: FUNCTION_SOURCES from `root`, with bytecode for the Lambda's `python`."""
    return lambda_.Code.from_asset(
        str(stage_function_code(python, root, FUNCTION_CODE_CACHE if cache is None else cache))
    )
