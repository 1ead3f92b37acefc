"""One model's inference function: FastAPI app, Mangum handler, task adapters, the model slot.

Importing the package first stops FastAPI importing `pydantic.v1` to ask whether each route's
models are v1 models (FastAPI 0.12x-0.16x does it at the first route a module declares):
43 ms of the cold start under `python3.12 -X importtime` here, about a tenth of the init. No
class can be a v1 model unless something imported `pydantic.v1` first, so while nothing has, the
answer is False without the import; once anything has, FastAPI's own check runs. A FastAPI
without this private function is left alone (only the time is lost). It must run before any
route is declared, hence here.
"""

import sys

from fastapi._compat import shared as _fastapi_compat


def _skip_the_pydantic_v1_probe() -> None:
    probe = getattr(_fastapi_compat, "is_pydantic_v1_model_class", None)
    if probe is None or getattr(probe, "skips_import", False):
        return

    def is_pydantic_v1_model_class(cls: object) -> bool:
        return "pydantic.v1" in sys.modules and bool(probe(cls))

    is_pydantic_v1_model_class.skips_import = True  # type: ignore[attr-defined]
    _fastapi_compat.is_pydantic_v1_model_class = is_pydantic_v1_model_class


_skip_the_pydantic_v1_probe()
