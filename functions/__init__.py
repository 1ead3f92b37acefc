"""One model's inference function: FastAPI app, Mangum handler, task adapters, the model slot.

Importing the package first stops FastAPI importing `pydantic.v1` to ask whether each route's
models are v1 models (FastAPI 0.12x-0.16x does it at the first route a module declares):
43 ms of the cold start under `python3.12 -X importtime` here, about a tenth of the init. No
class can be a v1 model unless something imported `pydantic.v1` first, so while nothing has, the
answer is False without the import; once anything has, FastAPI's own check runs. A FastAPI
without this private function is left alone (only the time is lost). It must run before any
route is declared, hence here.

The init also runs with Python's cyclic garbage collector paused (`gc_paused`: this package's
import of FastAPI here, then functions/handler.py's imports and app). An init allocates some
100,000 objects that live as long as the sandbox, and the collector, run every 700 allocations,
walked them over and over: 126 young, 11 middle and 1 full collection, 70-80 ms of the init's CPU
time (`gc.callbacks` timing them, python3.12 from the built assets). What a paused block
allocated is then frozen (`gc.freeze`): no later collection walks it again. The price is the
cyclic garbage the imports leave behind (519 objects here), which is never freed; everything
else is freed by reference counting as before.
"""

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block, then every object alive frozen out of its
    sight and the collector as it was. For the init, which allocates for keeps."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


with gc_paused():
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
