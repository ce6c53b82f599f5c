"""Serving the OpenAPI documents: `/api/openapi.json` (the whole API) and
`/api/<edge>/openapi.json` (one edge)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from calchub.api.openapi import SECTIONS, document
from calchub.api.responses import json_response


def _server_url(request: Request) -> str:
    # The prefix the server is served under (behind a proxy), so "Try it" calls go there.
    return str(request.scope.get("root_path", "")) or "/"


def one_edge(name: str) -> Any:
    async def endpoint(request: Request) -> Response:
        return json_response(document([name], server_url=_server_url(request)))

    return endpoint


async def _whole(request: Request) -> Response:
    return json_response(document(server_url=_server_url(request)))


def openapi_routes() -> list[Route]:
    """Routes for the sections known now (edges add theirs when imported)."""
    routes = [Route("/api/openapi.json", _whole, methods=["GET"])]
    routes += [
        Route(f"/api/{name}/openapi.json", one_edge(name), methods=["GET"]) for name in SECTIONS
    ]
    return routes
