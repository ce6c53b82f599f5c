"""The ASGI application: routes plus a lifespan that opens and closes the shared services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calchub import __version__, metrics
from calchub.api.conat import openapi as conat_openapi  # noqa: F401  (describes the bridge)
from calchub.api.conat.hub_endpoint import handle_hub
from calchub.api.conat.project_endpoint import handle_project
from calchub.api.openapi_routes import openapi_routes
from calchub.api.reference_page import api_index, reference_page
from calchub.api.responses import json_response

# Registers the v1 handlers, and describes them in the OpenAPI document.
from calchub.api.v1 import handlers, openapi  # noqa: F401
from calchub.api.v1.endpoint import handle_v1
from calchub.api.v1.registry import DEFINITIONS
from calchub.api.v2 import openapi as v2_openapi  # noqa: F401  (describes the routes)
from calchub.api.v2.endpoint import handle_v2
from calchub.config import Settings
from calchub.health import healthz, readyz
from calchub.hub import Hub
from calchub.prefix import UrlPrefix
from calchub.scheduler import DUTIES, scheduler_loop
from calchub.web.routes import web_routes


async def index(request: Request) -> Response:
    return json_response(
        {
            "name": "calchub",
            "version": __version__,
            "api": "/api/v1/<event>",
            "reference": "/api/docs",
            "pages": "/app",
            "openapi": "/api/openapi.json",
        }
    )


def build_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        hub = await Hub.open(settings)
        hub.check_runtime()
        await hub.check_network()
        app.state.hub = hub
        if hub.runtime.problem is None:
            hub.spawn(hub.runtime.clean_leftovers(), "runtime leftovers")
        hub.spawn(scheduler_loop(hub, DUTIES, settings.scheduler_interval_s), "scheduler")
        try:
            yield
        finally:
            await hub.close()

    documents = openapi_routes()
    v1_document = [route for route in documents if route.path == "/api/v1/openapi.json"]
    routes = [
        # Starlette tries routes in order: the API's edges first (each a request per call),
        # each edge's OpenAPI document before the catch-all that would take its path.
        *v1_document,
        # CoCalc answers POST only; GET is accepted too so `curl -u key: .../ping` works.
        Route("/api/v1/{rest:path}", handle_v1, methods=["POST", "GET"]),
        Route("/api/conat/hub", handle_hub, methods=["POST"]),
        Route("/api/conat/project", handle_project, methods=["POST"]),
        *[route for route in documents if route not in v1_document],
        Route("/api/v2/{rest:path}", handle_v2, methods=["POST", "GET"]),
        Route("/api/docs", reference_page, methods=["GET"], name="api_docs"),
        Route("/api/", api_index, methods=["GET"]),
        Route("/api", api_index, methods=["GET"]),
        # The web pages (and `/` for programs, which get the index as JSON).
        *web_routes(index),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics.metrics_endpoint, methods=["GET"]),
    ]
    # Each v1 event is its own route in the metrics; unknown names share one label.
    metrics.name_route("/api/v1/{rest:path}", "rest", DEFINITIONS, "/api/v1/{event}")
    middleware = [Middleware(metrics.MetricsMiddleware)]
    if settings.url_prefix.rstrip("/"):
        # Without a prefix the layer would only pass each request on.
        middleware.insert(0, Middleware(UrlPrefix, prefix=settings.url_prefix))
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
