"""Errors as the API shows them: a status and `{"error": "<what was wrong, where>"}`.

This is the Open Inference Protocol's error object, used by every route but the OpenAI-compatible
ones, which answer the same message in OpenAI's shape (`{"error": {"message": ...}}`). A client's mistake is a
4xx naming the field; an unexpected failure is a 500 without the trace (which goes to the log).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.log import logger
from functions.observability import current_request
from modelfn.api_routes import MODEL_ROUTES, SERVER_ROUTES


class ApiError(Exception):
    """An error the API answers with `status` and `{"error": message}`."""

    status = 400

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadInput(ApiError):
    """The request is well-formed JSON but its content cannot be served (400, as OIP does)."""


class UnknownModel(ApiError):
    status = 404


class UnknownFile(ApiError):
    """A page asset or version file the function does not have (the playground's routes)."""

    status = 404


class ModelUnavailable(ApiError):
    """The model is not loaded; the client should retry after `retry_after_s`."""

    status = 503

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, math.ceil(retry_after_s)))})


class ErrorResponse(BaseModel):
    """The body of every error: the Open Inference Protocol's error object."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"error": "inputs[0]: not valid base64; send the image file's bytes base64-encoded"}
            ]
        },
    )

    error: str = Field(description="What was wrong and where, e.g. the field `inputs[2]`.")


# For the OpenAPI document: each error status a route can answer, as `responses=` takes it.
_ERRORS: dict[int, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The request is invalid; `error` says where."},
    404: {"model": ErrorResponse, "description": "This function serves no such model or version."},
    415: {
        "model": ErrorResponse,
        "description": "The body is compressed (Content-Encoding); send it uncompressed.",
    },
    500: {"model": ErrorResponse, "description": "Unexpected failure; details are in the log."},
    503: {
        "model": ErrorResponse,
        "description": "The model is not loaded (yet); `error` says why, as a category.",
        "headers": {
            "Retry-After": {
                "description": "Seconds until the function tries to load the model again.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route that can answer these error statuses."""
    return {status: _ERRORS[status] for status in statuses}


# --- OpenAI's error shape, for the OpenAI-compatible routes ----------------------------------
# OpenAI's clients read an error's text from {"error": {"message": ...}} and show only the status
# for any other body ("Error code: 404"), so those routes answer in OpenAI's shape; the message
# is the one every other route would give.
OPENAI_PATHS = ("/v1/embeddings",)  # path endings: functions/routes/embeddings.py
OPENAI_TYPES = {
    400: "invalid_request_error",
    404: "invalid_request_error",
    415: "invalid_request_error",
}


class OpenAIError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(description="What was wrong and where, e.g. `input[2]: empty text`.")
    type: str = Field(description="invalid_request_error (4xx) or server_error (5xx).")
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    """The body of every error of an OpenAI-compatible route, in OpenAI's shape."""

    model_config = ConfigDict(extra="forbid")

    error: OpenAIError


def openai_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`error_responses` for an OpenAI-compatible route: the same statuses, OpenAI's body."""
    return {status: {**_ERRORS[status], "model": OpenAIErrorResponse} for status in statuses}


def is_openai_route(path: str) -> bool:
    return path.endswith(OPENAI_PATHS)


# Every route may fail unexpectedly; each route adds the statuses it answers itself.
ERROR_RESPONSES = error_responses(500)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, *, openai: bool = False
) -> JSONResponse:
    """`{"error": message}`, or with `openai` OpenAI's `{"error": {"message": ..., ...}}`."""
    if openai:
        kind = OPENAI_TYPES.get(status, "server_error")
        body = OpenAIErrorResponse(error=OpenAIError(message=message, type=kind))
        return JSONResponse(body.model_dump(), status_code=status, headers=headers)
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def location(loc: Sequence[str | int]) -> str:
    """('body', 'inputs', 0, 'shape') -> 'inputs[0].shape', the way error messages name fields."""
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part != "body" or where:
            where += f".{part}" if where else part
    return where


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """Pydantic's validation errors as one line: 'inputs[0].shape: Field required; ...'."""
    parts = []
    for err in errors:
        loc = location(err.get("loc", ()))
        where = loc or "request body"
        if err.get("type") == "json_invalid":
            detail = err.get("ctx", {}).get("error", "")
            parts.append(f"request body is not valid JSON ({detail}); send a JSON object")
        elif err.get("type") == "missing" and not loc:
            parts.append("request body is missing; send a JSON object")
        elif err.get("type") in ("model_attributes_type", "dict_type") and not loc:
            parts.append("request body is not a JSON object; send a JSON object ({...})")
        else:
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    current_request().error_type = type(exc).__name__
    openai = is_openai_route(request.url.path)
    return error_response(exc.status, exc.message, exc.headers, openai=openai)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    current_request().error_type = "RequestValidation"
    message = describe_validation_errors(exc.errors())
    return error_response(400, message, openai=is_openai_route(request.url.path))


def served_routes(model: str) -> list[str]:
    """The routes the API sends to `model`'s function, e.g. 'POST /models/cifar10-cnn/predict'."""
    return [route.for_model(model).key for route in (*MODEL_ROUTES, *SERVER_ROUTES)]


def _http_error_handler(model: str) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    # The API only routes the shared list to a function (not /docs): a 404 names those routes.
    routes = ", ".join(served_routes(model))

    async def _http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        current_request().error_type = {404: "NoSuchRoute", 405: "MethodNotAllowed"}.get(
            exc.status_code, f"HTTP{exc.status_code}"
        )
        if exc.status_code == 404:
            message = (
                f"{request.method} {request.url.path} is not a route of this function; "
                f"its routes: {routes}"
            )
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        openai = is_openai_route(request.url.path)
        return error_response(exc.status_code, message, dict(exc.headers or {}), openai=openai)

    return _http_error


class CatchAllMiddleware:
    """Turn an unexpected exception into a logged 500 `{"error": ...}` with no trace in the body.

    Starlette's own `Exception` handler re-raises after answering, which Mangum then logs as an
    adapter failure; this middleware ends the request here instead.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            current_request().error_type = type(exc).__name__
            context = scope.get("aws.context")
            request_id = getattr(context, "aws_request_id", None) or "local"
            logger.exception(
                "unhandled error", extra={"path": scope.get("path"), "request_id": request_id}
            )
            if started:
                raise
            response = error_response(
                500, f"internal error (request id {request_id}); the function's log has the details"
            )
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI, model: str) -> None:
    """Answer every error as `{"error": ...}`; `model` is the served model, for 404 messages."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler(model))
    app.add_middleware(CatchAllMiddleware)
