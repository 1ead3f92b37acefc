"""What the function's init imports: FastAPI's pydantic.v1 probe is skipped, nothing is lost."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator

import pytest
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


@pytest.fixture
def pydantic_v1_unloaded_after() -> Iterator[None]:
    """Leave the session as the test found it: with pydantic.v1 not imported, unless it was."""
    import pydantic

    def loaded() -> set[str]:
        return {n for n in sys.modules if n == "pydantic.v1" or n.startswith("pydantic.v1.")}

    before, attribute = loaded(), "v1" in vars(pydantic)
    yield
    for name in loaded() - before:
        del sys.modules[name]
    if not attribute:
        vars(pydantic).pop("v1", None)


def test_a_v1_model_is_still_recognised_once_pydantic_v1_is_imported(
    pydantic_v1_unloaded_after: None,
) -> None:
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
