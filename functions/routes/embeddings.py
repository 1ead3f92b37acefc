"""POST /models/{name}/v1/embeddings: OpenAI's embeddings API, for feature-extraction models.

Request and response are OpenAI's (platform.openai.com/docs/api-reference/embeddings/create), so
the `openai` client and what is built on it work with `base_url` set to the model's own base URL,
`<api>/models/<name>/v1`: `client.embeddings.create(model="<name>", input=[...])`. The vectors
are the ones the friendly route and OIP return (`FeatureExtractor.embed`). `encoding_format`
"base64" (the openai client's default) sends each vector as its float32 little-endian bytes,
base64-encoded; `usage` counts the tokens the model read, special tokens included. Errors come in
OpenAI's shape, `{"error": {"message", "type", "param", "code"}}` (functions/errors.py), which
its clients read the message from.

The route list (modelfn/api_routes.py) is the same for every model, so this route reaches every
function; a model of another task answers 404 naming its task and its own routes.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from functions.deps import ModelDep
from functions.errors import BadInput, UnknownModel, openai_error_responses
from functions.observability import current_request
from functions.request_body import JsonRoute
from functions.tasks.feature_extraction import FeatureExtractor

router = APIRouter(tags=["openai"], route_class=JsonRoute)


class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request; `model` is this function's model."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"model": "my-embedder", "input": ["a truly wonderful film"]}]
        },
    )

    input: str | list[Any] = Field(
        description="A text, or a list of texts (at most 64). OpenAI's token-id arrays are "
        "not taken: send the texts.",
    )
    model: str = Field(description="The served model's name (the one in the URL).")
    encoding_format: Literal["float", "base64"] = Field(
        default="float",
        description="float: lists of numbers; base64: each vector's float32 little-endian bytes.",
    )
    dimensions: int | None = Field(
        default=None, description="Must be the model's own size if given: vectors are not cut."
    )
    user: str | None = Field(default=None, description="Accepted for compatibility; unused.")


class EmbeddingData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["embedding"] = "embedding"
    index: int = Field(description="The input's position in `input`.")
    embedding: list[float] | str = Field(description="Numbers, or base64 (encoding_format).")


class EmbeddingsUsage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = Field(description="Tokens read in all, special tokens included.")
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingsUsage


@router.post(
    "/models/{name}/v1/embeddings",
    response_model=EmbeddingsResponse,
    responses=openai_error_responses(400, 404, 415, 503),
)
async def embeddings(request: EmbeddingsRequest, model: ModelDep) -> Response:
    """OpenAI's embeddings API: one vector per text (feature-extraction models only)."""
    manifest = model.manifest
    task = model.task
    if not isinstance(task, FeatureExtractor):
        raise UnknownModel(
            f"model {manifest.name!r} is not a feature extractor (its task is {manifest.task}); "
            f"/v1/embeddings serves feature-extraction models only. This one answers POST "
            f"/models/{manifest.name}/predict and the Open Inference Protocol routes"
        )
    if request.model != manifest.name:
        raise UnknownModel(
            f"model: {request.model!r} is not served here; this URL serves {manifest.name!r}, "
            f"send model={manifest.name!r}"
        )
    if request.dimensions is not None and request.dimensions != task.dimensions:
        raise BadInput(
            f"dimensions: {request.dimensions}, but {manifest.name} makes vectors of "
            f"{task.dimensions} and does not shorten them; leave dimensions out"
        )
    texts = [request.input] if isinstance(request.input, str) else request.input
    for i, text in enumerate(texts):
        if not isinstance(text, str):  # OpenAI also takes token ids; their ids are not ours
            raise BadInput(
                f"input[{i}]: expected a string of text, got {type(text).__name__}; token-id "
                "arrays are not taken (this model's tokenizer runs here), send the texts"
            )
    current_request().inputs = len(texts)
    result = task.embed(model.run, texts, "input")
    vectors = result.vectors
    if request.encoding_format == "base64":
        encoded: list[list[float] | str] = [
            base64.b64encode(row.astype("<f4").tobytes()).decode("ascii") for row in vectors
        ]
    else:
        encoded = [row.tolist() for row in np.asarray(vectors)]
    answer = EmbeddingsResponse(
        data=[EmbeddingData(index=i, embedding=e) for i, e in enumerate(encoded)],
        model=manifest.name,
        usage=EmbeddingsUsage(prompt_tokens=result.tokens, total_tokens=result.tokens),
    )
    return Response(answer.model_dump_json(), media_type="application/json")
