"""Open Inference Protocol v2 metadata: GET /v2, /v2/models/{name}[/versions/{v}][/ready]."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

import modelfn
from functions.deps import ModelDep, VersionedModelDep
from functions.errors import error_responses
from functions.model_loader import LoadedModel
from functions.request_body import JsonRoute
from functions.tensors import DATATYPE_NAMES
from modelfn.artifact import Runtime

router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=JsonRoute)

# The engine that answers, by models.toml `serving.runtime`. OIP's platform names
# ("<project>_<format>": onnxruntime_onnx, pytorch_libtorch, ...) have none for an eager module
# rebuilt from safetensors, and pytorch_libtorch would tell a Triton-wise client there is a
# TorchScript file; the field is information only, so it names the engine plainly, and the zip
# function keeps the "onnxruntime" its clients have always seen.
PLATFORMS: dict[Runtime, str] = {"onnxruntime": "onnxruntime", "torch": "pytorch"}
# Protocol extensions this server implements (Triton's names, which its clients know).
EXTENSIONS = ["binary_tensor_data"]


class ServerMetadataResponse(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "modelfn", "version": modelfn.__version__, "extensions": [*EXTENSIONS]}
            ]
        },
    )

    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    datatype: str = Field(json_schema_extra={"enum": [*DATATYPE_NAMES]})
    shape: list[int] = Field(
        default=[],
        description="Dimensions; -1 marks a variable-size one (the batch, a text's length).",
        json_schema_extra={"items": {"type": "integer", "minimum": -1}},
    )


class ModelMetadataResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    versions: list[str] = Field(description="The one version this function has loaded.")
    platform: str = Field(description="The engine: onnxruntime, or pytorch (container image).")
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ModelReadyResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    ready: bool


def model_metadata_of(model: LoadedModel) -> ModelMetadataResponse:
    manifest = model.manifest
    inputs, outputs = model.task.signature()
    return ModelMetadataResponse(
        name=manifest.name,
        versions=[manifest.version],
        platform=PLATFORMS[model.runtime],
        inputs=[MetadataTensor(**t.model_dump()) for t in inputs],
        outputs=[MetadataTensor(**t.model_dump()) for t in outputs],
    )


@router.get("", response_model=ServerMetadataResponse)
async def server_metadata() -> ServerMetadataResponse:
    """The server's name, version and protocol extensions."""
    return ServerMetadataResponse(
        name="modelfn", version=modelfn.__version__, extensions=list(EXTENSIONS)
    )


@router.get(
    "/models/{name}", response_model=ModelMetadataResponse, responses=error_responses(404, 503)
)
async def model_metadata(model: ModelDep) -> ModelMetadataResponse:
    """The model's loaded version, platform and OIP tensor signature (every input and output)."""
    return model_metadata_of(model)


@router.get(
    "/models/{name}/versions/{version}",
    response_model=ModelMetadataResponse,
    responses=error_responses(404, 503),
)
async def model_version_metadata(model: VersionedModelDep) -> ModelMetadataResponse:
    """The model's metadata, if `version` is the loaded one."""
    return model_metadata_of(model)


@router.get(
    "/models/{name}/ready", response_model=ModelReadyResponse, responses=error_responses(404, 503)
)
async def model_ready(model: ModelDep) -> ModelReadyResponse:
    """The model is loaded and ready; 503 with Retry-After and why (a category) while it is not."""
    return ModelReadyResponse(name=model.manifest.name, ready=True)


@router.get(
    "/models/{name}/versions/{version}/ready",
    response_model=ModelReadyResponse,
    responses=error_responses(404, 503),
)
async def model_version_ready(model: VersionedModelDep) -> ModelReadyResponse:
    """The model's `version` is loaded and ready."""
    return ModelReadyResponse(name=model.manifest.name, ready=True)
