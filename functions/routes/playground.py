"""The playground's routes (modelfn.api_routes.PLAYGROUND_ROUTES): a model's page and card.

Included by the app only with `MODELFN_PLAYGROUND` on. Every answer carries a strict
Content-Security-Policy: the page runs its own script and style only (no inline code, no other
origin), and shows images from its own function or from what the user picked (data:, blob:).
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from functions.deps import ModelDep, check_served
from functions.errors import UnknownFile
from functions.playground import ASSETS, PAGE, static_file
from functions.playground.card import PLOT_TYPES, is_plot, model_card
from functions.request_body import JsonRoute
from modelfn.artifact import read_verified

# The page runs its own script and style only, talks to its own origin only, and shows images
# from its function, or from what the user picked: data: (examples), blob: (an upload's preview).
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; "  # the form posts with fetch, never by navigating
    "frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page and its assets change with a release, the card and plots with an alias move.
    "Cache-Control": "no-cache",
}

# Not in /openapi.json: the API document describes the API, and these routes are a page.
router = APIRouter(include_in_schema=False, route_class=JsonRoute)  # JsonRoute: named in telemetry


def _answer(body: bytes | str, media_type: str) -> Response:
    return Response(body, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/models/{name}/page")
async def page(name: str, request: Request) -> Response:
    """The model's page; it loads before the model does, and its card says why one is missing."""
    check_served(name, request.app.state.slot)
    return _answer(static_file(PAGE), "text/html; charset=utf-8")


@router.get("/models/{name}/card.json")
async def card(model: ModelDep, request: Request) -> Response:
    """The model card of the served version (functions/playground/card.py)."""
    alias = request.app.state.slot.settings.alias
    return _answer(model_card(model, alias).model_dump_json(), "application/json")


@router.get("/models/{name}/static/{asset}")
async def asset(name: str, asset: str, request: Request) -> Response:
    check_served(name, request.app.state.slot)
    if asset not in ASSETS:
        raise UnknownFile(f"the playground has no asset {asset!r}; it serves {sorted(ASSETS)}")
    return _answer(static_file(asset), ASSETS[asset])


@router.get("/models/{name}/files/{file}")
async def version_file(file: str, model: ModelDep) -> Response:
    """A report plot of the served version, its bytes checked against the manifest's sha256."""
    manifest = model.manifest
    if file not in manifest.files or not is_plot(file):
        plots = sorted(f for f in manifest.files if is_plot(f))
        raise UnknownFile(
            f"{manifest.name} {manifest.version} has no plot {file!r}; its plots: {plots or 'none'}"
        )
    media_type = PLOT_TYPES[file[file.rindex(".") :]]
    return _answer(read_verified(model.folder, manifest, file), media_type)
