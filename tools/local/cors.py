"""CORS as the HTTP API answers it where a stage lists origins (cdk.json `cors-origins`).

API Gateway answers a preflight itself (an OPTIONS with `Origin` and
`Access-Control-Request-Method`), whether or not a route has OPTIONS, and adds the allowed
origin to the answers of every other request, ignoring any CORS headers the function sets. An
origin not in the list gets the answer without CORS headers, which the browser then refuses.
The methods, headers and max age are the deployed API's (modelfn.api_routes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelfn.api_routes import CORS_HEADERS, CORS_MAX_AGE_S, CORS_METHODS


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def is_preflight(origins: Sequence[str], method: str, headers: Mapping[str, str]) -> bool:
    """Whether the API answers this request itself: CORS is on and it is a browser preflight."""
    return (
        bool(origins)
        and method == "OPTIONS"
        and _header(headers, "origin") is not None
        and _header(headers, "access-control-request-method") is not None
    )


def preflight_answer(
    origins: Sequence[str], headers: Mapping[str, str]
) -> tuple[int, dict[str, str], bytes]:
    """The API's own answer to a preflight: 204, with the CORS headers where the origin is allowed."""
    out = {"content-type": "application/json"}
    origin = _header(headers, "origin")
    if origin is not None and allowed(origins, origin):
        out |= {
            "access-control-allow-origin": _allow(origins, origin),
            "access-control-allow-methods": ",".join(CORS_METHODS),
            "access-control-allow-headers": ",".join(CORS_HEADERS),
            "access-control-max-age": str(CORS_MAX_AGE_S),
        }
    return 204, out, b""


def with_cors(
    origins: Sequence[str], request_headers: Mapping[str, str], answer_headers: dict[str, str]
) -> dict[str, str]:
    """An answer's headers as the API sends them: the function's CORS headers dropped, and the
    allowed origin added where CORS is on and the request came from one."""
    if not origins:
        return answer_headers
    out = {k: v for k, v in answer_headers.items() if not k.lower().startswith("access-control-")}
    origin = _header(request_headers, "origin")
    if origin is not None and allowed(origins, origin):
        out["access-control-allow-origin"] = _allow(origins, origin)
    return out


def allowed(origins: Sequence[str], origin: str) -> bool:
    return "*" in origins or origin in origins


def _allow(origins: Sequence[str], origin: str) -> str:
    return "*" if "*" in origins else origin
