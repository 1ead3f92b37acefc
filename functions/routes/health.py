"""GET /v2/health/live and /v2/health/ready: the Open Inference Protocol's server probes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from functions.deps import SlotDep
from functions.errors import error_responses
from functions.request_body import JsonRoute

router = APIRouter(prefix="/v2/health", tags=["health"], route_class=JsonRoute)


class LiveResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"live": True}]})

    live: bool


class ReadyResponse(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ready": True}]})

    ready: bool


@router.get("/live", response_model=LiveResponse)
async def live() -> LiveResponse:
    """The function is up and answering (even while its model is not loaded)."""
    return LiveResponse(live=True)


@router.get("/ready", response_model=ReadyResponse, responses=error_responses(503))
async def ready(slot: SlotDep) -> ReadyResponse:
    """The served model is loaded; 503 with Retry-After and why (a category) while it is not."""
    slot.get()
    return ReadyResponse(ready=True)
