"""The Open Inference Protocol v2 messages: inference request and response, as pydantic models
whose JSON Schema is what /openapi.json documents, and the binary tensor data extension's
additions to that document. functions/routes/infer.py runs them; functions/examples.py builds
the documented examples from them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic.config import JsonDict

from functions.tensors import BINARY_SIZE, DATATYPE_NAMES

BINARY_OUTPUT = "binary_data_output"  # request parameter of the binary extension


# The OpenAPI document states what a valid request is; the models stay lenient where
# run_inference checks a field itself, so its 400 names the tensor and what the model takes.
def _object(
    properties: dict[str, Any], *, required: list[str] | None = None, more: bool = True
) -> Any:
    schema = {"type": "object", "properties": properties, "additionalProperties": more}
    return schema | ({"required": required} if required else {})


def _or_null(schema: dict[str, Any]) -> Any:
    return WithJsonSchema({"anyOf": [schema, {"type": "null"}]})


_SIZE = {"type": "integer", "minimum": 0, "description": "Bytes of this tensor after the JSON."}
# JSON tensor data: numbers, booleans, or strings for BYTES (UTF-8 text), row-major.
_VALUE: dict[str, Any] = {"anyOf": [{"type": "number"}, {"type": "boolean"}, {"type": "string"}]}
_SHAPE: JsonDict = {"items": {"type": "integer", "minimum": 0}}
_DATATYPE: JsonDict = {"enum": [*DATATYPE_NAMES]}


class RequestInput(BaseModel):
    name: str
    shape: list[int] = Field(
        description="Dimensions, each >= 0; the full batch's shape.", json_schema_extra=_SHAPE
    )
    datatype: str = Field(json_schema_extra=_DATATYPE)
    parameters: Annotated[dict[str, Any] | None, _or_null(_object({BINARY_SIZE: _SIZE}))] = Field(
        default=None, description='{"binary_data_size": N}: the data is N bytes after the JSON.'
    )
    data: Annotated[
        list[Any] | None,
        _or_null({"type": "array", "items": {"anyOf": [*_VALUE["anyOf"], {"type": "array"}]}}),
    ] = Field(default=None, description="Row-major values, flat or nested; BYTES as strings.")


class RequestOutput(BaseModel):
    name: str
    parameters: Annotated[
        dict[str, Any] | None, _or_null(_object({"binary_data": {"type": "boolean"}}))
    ] = Field(default=None, description='{"binary_data": true}: return this output as binary data.')


class InferenceRequest(BaseModel):
    id: str | None = Field(default=None, description="Echoed in the response; made up if absent.")
    parameters: Annotated[
        dict[str, Any] | None, _or_null(_object({BINARY_OUTPUT: {"type": "boolean"}}))
    ] = Field(
        default=None,
        description=(
            "Task options: mode (next, score, generate), top_k, max_tokens, temperature and seed "
            "for language models; none for classifiers. binary_data_output: true returns every "
            "output as binary data."
        ),
    )
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(default=None, description="Default: every output.")

    @field_validator("id")
    @classmethod
    def _echoable(cls, value: str | None) -> str | None:
        # The response echoes the id as UTF-8 JSON, and a lone surrogate (JSON "\ud800", which
        # json.loads accepts) has no UTF-8 form: refused here, it was a 500 when the answer was
        # serialised, after the model had run (found fuzzing, issue 11; tests/reliability/regressions).
        if value is not None and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(
                    "has a lone UTF-16 surrogate (e.g. \\ud800), which is not text; send UTF-8 text"
                ) from None
        return value


class ResponseOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    shape: list[int] = Field(json_schema_extra=_SHAPE)
    datatype: str = Field(json_schema_extra=_DATATYPE)
    # Exactly one of the two: binary outputs have parameters, JSON outputs data.
    parameters: Annotated[
        dict[str, Any] | None,
        WithJsonSchema(_object({BINARY_SIZE: _SIZE}, required=[BINARY_SIZE], more=False)),
    ] = None
    data: Annotated[list[Any] | None, WithJsonSchema({"type": "array", "items": _VALUE})] = Field(
        default=None, description="Row-major, flat; BYTES as strings."
    )


class InferenceResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: str
    model_version: str
    id: str
    # OIP's optional response parameters; ours say which graph answered (fp32 or int8).
    parameters: Annotated[
        dict[str, Any],
        WithJsonSchema(_object({"precision": {"type": "string", "enum": ["fp32", "int8"]}})),
    ]
    outputs: list[ResponseOutput]


# The binary tensor data extension in the document: a request body or response may be the JSON
# header followed by raw tensor bytes, its length in the Inference-Header-Content-Length header.
_HEADER_LENGTH = {
    "description": "Binary tensor data extension: bytes of JSON before the tensors' raw bytes.",
    "schema": {"type": "integer", "minimum": 0},
}
BINARY_EXTENSION: dict[str, Any] = {
    "parameters": [
        {
            "name": "Inference-Header-Content-Length",
            "in": "header",
            "required": False,
            **_HEADER_LENGTH,
        }
    ],
    "requestBody": {"content": {"application/octet-stream": {}}},
}
BINARY_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/octet-stream": {}},
        "headers": {"Inference-Header-Content-Length": _HEADER_LENGTH},
    }
}
