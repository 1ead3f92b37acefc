"""The FastAPI app of one model's function: settings, the model loaded at init, the routers."""

from __future__ import annotations

from fastapi import FastAPI

import modelfn
from functions.errors import ERROR_RESPONSES, install_error_handlers
from functions.model_loader import LoadedModel, ModelSlot
from functions.observability import RequestTelemetryMiddleware
from functions.openapi import install_openapi
from functions.request_body import RequestBodyMiddleware
from functions.routes import embeddings, health, infer, models, predict
from functions.settings import FunctionSettings


def create_app(
    settings: FunctionSettings | None = None, loaded: ModelSlot | LoadedModel | None = None
) -> FastAPI:
    """Build the app; without `loaded`, fetch and load the model now (the Lambda init phase).

    A failed load does not fail the app: model routes answer 503 and retry the load later.
    """
    settings = settings or FunctionSettings.resolve()
    if isinstance(loaded, LoadedModel):
        slot = ModelSlot.holding(loaded, settings)
    elif loaded is None:
        slot = ModelSlot(settings)
        slot.load()
    else:
        slot = loaded

    app = FastAPI(
        title=f"modelfn: {settings.model}",
        version=modelfn.__version__,
        description="One model: a friendly predict route and Open Inference Protocol v2.",
        responses=ERROR_RESPONSES,
        # The API routes only its own list here (modelfn/api_routes.py); the pages that read
        # /openapi.json are the local gateway's /docs, whose assets are served locally. FastAPI's
        # own would load Swagger UI from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.slot = slot
    install_error_handlers(app, settings.model)
    app.add_middleware(RequestBodyMiddleware)
    # Added last, so it runs first: it times everything, the 500s of CatchAllMiddleware included.
    app.add_middleware(
        RequestTelemetryMiddleware,
        model=settings.model,
        capture_rate=settings.capture_sample_rate,
        capture_raw=settings.capture_raw,
    )
    for router in (predict.router, infer.router, models.router, health.router, embeddings.router):
        app.include_router(router)
    if settings.playground:  # the model's page and card, where a stage turns them on
        # Imported only then: a deployed function without them does not pay for it at init.
        from functions.routes import playground

        app.include_router(playground.router)
    install_openapi(app)
    return app
