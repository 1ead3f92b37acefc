"""Route dependencies: the model loaded at init, checked against the name in the path.

Every dependency and route of a function is `async def` and computes inline: a Lambda sandbox
serves one request at a time, so FastAPI's hand-off of sync code to a worker thread buys nothing
and cost a third of the warm request (measured: ~0.4 ms of 1.8 ms through the handler for
cifar10-cnn, most of it waiting in epoll for the worker thread).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from functions.errors import UnknownModel
from functions.model_loader import LoadedModel, ModelSlot
from functions.observability import current_request


async def get_slot(request: Request) -> ModelSlot:
    slot: ModelSlot = request.app.state.slot
    return slot


SlotDep = Annotated[ModelSlot, Depends(get_slot)]


async def get_model(name: str, request: Request) -> LoadedModel:
    """The served model if `name` is it (else 404); 503 while it is not loaded.

    The slot comes straight from the app, not through `SlotDep`: one level of dependencies
    fewer for FastAPI to solve on every request (too small to separate from this machine's
    noise, but work all the same).
    """
    slot: ModelSlot = request.app.state.slot
    check_served(name, slot)
    model = slot.get()
    record = current_request()
    record.version, record.precision = model.manifest.version, model.precision
    return model


ModelDep = Annotated[LoadedModel, Depends(get_model)]


def check_served(name: str, slot: ModelSlot) -> None:
    """404 unless `name` is the model this function serves (loaded or not)."""
    served = slot.settings.model
    if name != served:
        raise UnknownModel(f"model {name!r} is not served here; this function serves {served!r}")


async def get_model_version(version: str, model: ModelDep) -> LoadedModel:
    """The served model if `version` is the loaded version (OIP's /versions/{version} paths)."""
    loaded = model.manifest.version
    if version != loaded:
        raise UnknownModel(
            f"version {version!r} of {model.manifest.name!r} is not loaded here; "
            f"this function serves version {loaded!r}"
        )
    return model


VersionedModelDep = Annotated[LoadedModel, Depends(get_model_version)]
