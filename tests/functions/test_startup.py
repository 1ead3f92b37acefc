"""What the function's init imports: FastAPI's pydantic.v1 probe is skipped, nothing is lost."""

from __future__ import annotations

import subprocess
import sys
import warnings

from fastapi._compat import shared
from pydantic import BaseModel

import functions  # noqa: F401 - the package's import installs the probe being tested
from modelfn.registry import REPO_ROOT


def test_building_the_app_does_not_import_pydantic_v1() -> None:
    code = (
        "import sys\n"
        "from functions.app import create_app\n"
        "from functions.routes import infer, predict\n"
        "assert infer.router.routes and predict.router.routes\n"
        "print('pydantic.v1' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert result.stdout.strip() == "False"


def test_a_v1_model_is_still_recognised_once_pydantic_v1_is_imported() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydantic import v1

    class Old(v1.BaseModel):
        x: int

    class New(BaseModel):
        x: int

    assert shared.is_pydantic_v1_model_class.skips_import  # type: ignore[attr-defined]
    assert shared.is_pydantic_v1_model_class(Old)
    assert not shared.is_pydantic_v1_model_class(New)
