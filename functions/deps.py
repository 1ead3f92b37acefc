"""Route dependencies: the model loaded at init, checked against the name in the path."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from functions.errors import UnknownModel
from functions.model_loader import LoadedModel, ModelSlot


def get_slot(request: Request) -> ModelSlot:
    slot: ModelSlot = request.app.state.slot
    return slot


SlotDep = Annotated[ModelSlot, Depends(get_slot)]


def get_model(name: str, slot: SlotDep) -> LoadedModel:
    """The served model if `name` is it (else 404); 503 while it is not loaded."""
    served = slot.settings.model
    if name != served:
        raise UnknownModel(f"model {name!r} is not served here; this function serves {served!r}")
    return slot.get()


ModelDep = Annotated[LoadedModel, Depends(get_model)]


def get_model_version(version: str, model: ModelDep) -> LoadedModel:
    """The served model if `version` is the loaded version (OIP's /versions/{version} paths)."""
    loaded = model.manifest.version
    if version != loaded:
        raise UnknownModel(
            f"version {version!r} of {model.manifest.name!r} is not loaded here; "
            f"this function serves version {loaded!r}"
        )
    return model


VersionedModelDep = Annotated[LoadedModel, Depends(get_model_version)]
