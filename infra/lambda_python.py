"""Finding this machine's interpreter of the Lambda runtime's Python version, without CDK.

The layer and function code builds compile bytecode with it (infra/bytecode.py) and the benchmark runs the built
function under it (bench/run.py); neither may silently fall back to another version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

LAMBDA_PYTHON_ENV = "MODELFN_LAMBDA_PYTHON"  # an interpreter of the runtime's version, by path


def _reports_version(command: list[str], python: str, env: dict[str, str]) -> bool:
    try:
        result = subprocess.run(
            [*command, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False, env=env, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == python


def lambda_interpreter(python: str) -> tuple[list[str], dict[str, str]]:
    """A command and environment that run this machine's Python `python` (the Lambda runtime's).

    Tried in order: $MODELFN_LAMBDA_PYTHON, this interpreter, `python<version>` on PATH, then
    pyenv's newest install of that version (a pyenv shim refuses a version that is installed but
    not selected, so the version is selected for the call). Raises RuntimeError naming what was
    tried when none runs: a layer without bytecode would compile it again on every cold start.
    """
    env = dict(os.environ)
    candidates: list[tuple[list[str], dict[str, str]]] = []
    if os.environ.get(LAMBDA_PYTHON_ENV):
        candidates.append(([os.environ[LAMBDA_PYTHON_ENV]], env))
    candidates.append(([sys.executable], env))
    on_path = shutil.which(f"python{python}")
    if on_path:
        candidates.append(([on_path], env))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    installed = sorted(
        (
            d.name
            for d in (pyenv_root / "versions").glob(f"{python}.*")
            if d.name.removeprefix(f"{python}.").isdigit()
        ),
        key=lambda name: int(name.rsplit(".", 1)[1]),
    )
    for name in reversed(installed):
        binary = pyenv_root / "versions" / name / "bin" / f"python{python}"
        candidates.append(([str(binary)], {**env, "PYENV_VERSION": name}))
    for command, command_env in candidates:
        if _reports_version(command, python, command_env):
            return command, command_env
    tried = ", ".join(c[0][0] for c in candidates)
    raise RuntimeError(
        f"no Python {python} here to compile the Lambda bytecode of the dependency layer and the "
        f"function code (tried {tried}); install it (e.g. pyenv install {python}) or set "
        f"{LAMBDA_PYTHON_ENV} to its path. Without bytecode every Lambda cold start compiles "
        "them again (/opt and /var/task are read-only)."
    )
