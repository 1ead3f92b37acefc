"""Bytecode for the Lambda's Python, compiled at build time: Lambda's file systems are read-only.

The dependency layer (infra/packaging.py), the function code asset (infra/function_code.py) and
`modelfn package`'s image packages are compiled here, with this machine's interpreter of the
runtime's Python version (infra/lambda_python.py).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from infra.lambda_python import lambda_interpreter

# Where Lambda puts the function code and the layer's python/ folder. Bytecode records the path
# of its source for tracebacks; compiled as these, not as this machine's build folders, the
# .pyc files are the same bytes on every build machine.
TASK_ROOT = "/var/task"
LAYER_ROOT = "/opt/python"
# How the bytecode is made (compile_bytecode), part of every cache key and asset hash built on it:
# a change to it builds anew instead of reusing a folder compiled the old way.
BYTECODE = "bytecode: compileall unchecked-hash, deployed paths, PYTHONHASHSEED=0"


def compile_bytecode(folder: Path, python: str, *, runs_from: str) -> None:
    """Pre-compile `folder` with the Lambda's Python version; RuntimeError if that fails.

    /opt and /var/task are read-only on Lambda, so without .pyc files every cold start compiles
    numpy, pydantic and fastapi again (measured: 2.77 s to the first inference instead of
    1.37 s), and the function's own modules too. Bytecode of another interpreter version would be
    dead weight, so it must be this version's. Unchecked hash-based .pyc files (PEP 552): the
    zip's timestamps do not survive the way to Lambda. Reproducible: each file records its source
    as `runs_from`/<path> (where Lambda puts it) rather than this machine's build folder, and a
    fixed hash seed keeps set constants in one order, so a rebuild elsewhere gives the same bytes.
    """
    command, env = lambda_interpreter(python)
    result = subprocess.run(
        [*command, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash",
         "-d", runs_from, str(folder)],
        capture_output=True, text=True, check=False, env={**env, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(
            f"compiling the bytecode of {folder} with {command[0]} failed "
            f"({result.returncode}):\n{result.stdout[-1500:]}{result.stderr[-1500:]}"
        )
