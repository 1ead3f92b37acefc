"""Trace context: which distributed trace a request belongs to, read from its headers.

W3C Trace Context (`traceparent`, `tracestate`) first; else AWS X-Ray's `X-Amzn-Trace-Id`,
which API Gateway adds to every request it forwards (its Root is a W3C trace id written
otherwise: `1-` + 8 hex digits of time + 24 more); else a new trace. The function is one span
of the trace: the answer carries `traceparent` with the same trace id and this span's own id,
and every log line and capture record names the trace id. A malformed header is ignored, as
the W3C recommendation says a receiver must: never an error for the caller.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

# version-traceid-parentid-flags, lower-case hex. Version 00 is exactly this; a later version may
# append fields after a dash, which a 00 reader ignores; version ff is invalid.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_XRAY_ROOT = re.compile(r"1-([0-9a-f]{8})-([0-9a-f]{24})")
_XRAY_PARENT = re.compile(r"[0-9a-f]{16}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
MAX_TRACESTATE = 512  # the length W3C asks a platform to propagate at least; longer is dropped


@dataclass(frozen=True)
class TraceContext:
    trace_id: str  # 32 lower-case hex digits
    span_id: str  # this request's span, 16 hex digits, new for each request
    parent_id: str | None  # the caller's span, where a header named one
    sampled: bool
    tracestate: str | None = None  # passed on as received, with a valid traceparent only

    def traceparent(self) -> str:
        """The header for the answer: this trace, this span, the caller's sampling decision."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


def trace_context(headers: Iterable[tuple[bytes, bytes]]) -> TraceContext:
    """The trace a request (its ASGI headers) belongs to, or a new one."""
    found: dict[bytes, str] = {}
    for name, value in headers:
        key = name.lower()
        if key in (b"traceparent", b"tracestate", b"x-amzn-trace-id") and key not in found:
            found[key] = value.decode("latin-1").strip()
    span = secrets.token_hex(8)
    parsed = _w3c(found.get(b"traceparent"))
    if parsed is not None:
        trace_id, parent, flags = parsed
        state: str | None = found.get(b"tracestate")
        if state is not None and (len(state) > MAX_TRACESTATE or not state.isprintable()):
            state = None
        return TraceContext(trace_id, span, parent, bool(int(flags, 16) & 1), state or None)
    xray = _xray(found.get(b"x-amzn-trace-id"))
    if xray is not None:
        return TraceContext(xray[0], span, xray[1], xray[2])
    return TraceContext(secrets.token_hex(16), span, None, False)


def _w3c(header: str | None) -> tuple[str, str, str] | None:
    """(trace id, parent id, flags) of a valid traceparent, else None."""
    if not header:
        return None
    match = _TRACEPARENT.fullmatch(header)
    if match is None:
        return None
    version, trace_id, parent, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent == _ZERO_SPAN:
        return None
    return trace_id, parent, flags


def _xray(header: str | None) -> tuple[str, str | None, bool] | None:
    """(trace id, parent id, sampled) of an X-Amzn-Trace-Id with a valid Root, else None."""
    if not header:
        return None
    fields = dict(part.strip().partition("=")[::2] for part in header.split(";") if "=" in part)
    root = _XRAY_ROOT.fullmatch(fields.get("Root", ""))
    if root is None or root.group(1) + root.group(2) == _ZERO_TRACE:
        return None
    parent = fields.get("Parent")
    valid_parent = parent if parent and _XRAY_PARENT.fullmatch(parent) else None
    return root.group(1) + root.group(2), valid_parent, fields.get("Sampled") == "1"
