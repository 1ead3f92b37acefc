"""Open Inference Protocol v2 metadata: GET /v2, /v2/models/{name}[/versions/{v}][/ready]."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

import modelfn
from functions.deps import ModelDep, VersionedModelDep
from functions.model_loader import LoadedModel
from functions.request_body import JsonRoute

router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=JsonRoute)

PLATFORM = "onnxruntime"
# Protocol extensions this server implements (Triton's names, which its clients know).
EXTENSIONS = ["binary_tensor_data"]


class ServerMetadataResponse(BaseModel):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = []  # -1 marks a variable-size dimension


class ModelMetadataResponse(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ModelReadyResponse(BaseModel):
    name: str
    ready: bool


def _metadata(model: LoadedModel) -> ModelMetadataResponse:
    manifest = model.manifest
    inputs, outputs = model.task.signature()
    return ModelMetadataResponse(
        name=manifest.name,
        versions=[manifest.version],
        platform=PLATFORM,
        inputs=[MetadataTensor(**t.model_dump()) for t in inputs],
        outputs=[MetadataTensor(**t.model_dump()) for t in outputs],
    )


@router.get("", response_model=ServerMetadataResponse)
async def server_metadata() -> ServerMetadataResponse:
    """The server's name, version and protocol extensions."""
    return ServerMetadataResponse(
        name="modelfn", version=modelfn.__version__, extensions=list(EXTENSIONS)
    )


@router.get("/models/{name}", response_model=ModelMetadataResponse)
async def model_metadata(model: ModelDep) -> ModelMetadataResponse:
    """The model's loaded version, platform and OIP tensor signature (every input and output)."""
    return _metadata(model)


@router.get("/models/{name}/versions/{version}", response_model=ModelMetadataResponse)
async def model_version_metadata(model: VersionedModelDep) -> ModelMetadataResponse:
    """The model's metadata, if `version` is the loaded one."""
    return _metadata(model)


@router.get("/models/{name}/ready", response_model=ModelReadyResponse)
async def model_ready(model: ModelDep) -> ModelReadyResponse:
    """The model is loaded and ready; 503 with Retry-After and why (a category) while it is not."""
    return ModelReadyResponse(name=model.manifest.name, ready=True)


@router.get("/models/{name}/versions/{version}/ready", response_model=ModelReadyResponse)
async def model_version_ready(model: VersionedModelDep) -> ModelReadyResponse:
    """The model's `version` is loaded and ready."""
    return ModelReadyResponse(name=model.manifest.name, ready=True)
