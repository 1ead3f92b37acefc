"""API Gateway HTTP API (payload format 2.0) events, built from plain HTTP requests.

The local gateway hands these to a model's Lambda handler, the same object Lambda runs, so a
request behaves locally as it does behind the deployed API. The shape follows the AWS docs'
"Working with AWS Lambda proxy integrations for HTTP APIs" example event.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

# Content types API Gateway passes to Lambda as text; anything else arrives base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-www-form-urlencoded")


def http_api_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    route_key: str | None = None,
    path_parameters: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    api_id: str = "local",
    stage: str = "$default",
) -> dict[str, Any]:
    """Build the event API Gateway would send for this request."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    cookies = [c.strip() for c in lowered.pop("cookie", "").split(";") if c.strip()]
    content_type = lowered.get("content-type", "")
    is_text = content_type.startswith(_TEXT_TYPES) or (not body)
    now = time.time()
    request_id = uuid.uuid4().hex[:16]
    query_params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        # API Gateway joins repeated parameters with commas.
        query_params[key] = f"{query_params[key]},{value}" if key in query_params else value
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": api_id,
            "domainName": lowered.get("host", "localhost"),
            "domainPrefix": lowered.get("host", "localhost").split(".")[0],
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key or "$default",
            "stage": stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
    }
    if cookies:
        event["cookies"] = cookies
    if query_params:
        event["queryStringParameters"] = query_params
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body and is_text:
        try:
            event["body"] = body.decode("utf-8")
        except UnicodeDecodeError:
            is_text = False  # bytes that claim to be text but aren't UTF-8 travel as base64
    if body and not is_text:
        event["body"] = base64.b64encode(body).decode("ascii")
    event["isBase64Encoded"] = not is_text
    return event


def response_parts(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """Turn a Lambda proxy response (payload 2.0) back into status, headers and body bytes."""
    status = int(result.get("statusCode", 200))
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    if result.get("cookies"):
        headers["set-cookie"] = ", ".join(result["cookies"])
    return status, headers, body
