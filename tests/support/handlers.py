"""Lambda handlers that misbehave on purpose, for the local gateway's error paths."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = {
        "routeKey": event["routeKey"],
        "pid": os.getpid(),
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(30)
    return echo(event, context)


def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
    os._exit(3)


def raises(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("handler bug")
