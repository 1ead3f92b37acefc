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
    """The served model if `name` is it (else 404); 503 while it is not loaded. During a canary
    rollout, the version that answers this request: the canary for its share, else the stable.

    The slot comes straight from the app, not through `SlotDep`: one level of dependencies
    fewer for FastAPI to solve on every request (too small to separate from this machine's
    noise, but work all the same).
    """
    slot: ModelSlot = request.app.state.slot
    check_served(name, slot)
    model = slot.choose(slot.get())
    answered_by(model, slot)
    return model


def answered_by(model: LoadedModel, slot: ModelSlot) -> None:
    """Name the version that answers in the request's log line (and, during a canary, in its
    per-version metrics)."""
    record = current_request()
    record.version, record.precision = model.manifest.version, model.precision
    record.canary_live = slot.canary is not None


ModelDep = Annotated[LoadedModel, Depends(get_model)]


def check_served(name: str, slot: ModelSlot) -> None:
    """404 unless `name` is the model this function serves (loaded or not)."""
    served = slot.settings.model
    if name != served:
        raise UnknownModel(f"model {name!r} is not served here; this function serves {served!r}")


async def get_model_version(name: str, version: str, request: Request) -> LoadedModel:
    """The served model if `version` is a loaded version (OIP's /versions/{version} paths): the
    stable one, or during a canary rollout the canary, asked for by name and not by weight."""
    slot: ModelSlot = request.app.state.slot
    check_served(name, slot)
    stable = slot.get()
    model = slot.loaded(version)
    if model is None:
        served = " and ".join(
            repr(m.manifest.version) for m in (stable, slot.canary) if m is not None
        )
        raise UnknownModel(
            f"version {version!r} of {stable.manifest.name!r} is not loaded here; "
            f"this function serves version {served}"
        )
    answered_by(model, slot)
    return model


VersionedModelDep = Annotated[LoadedModel, Depends(get_model_version)]
