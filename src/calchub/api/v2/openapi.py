"""REST v2 as OpenAPI operations, one per route of its registry.

A route declared with a body model (`registry.route`) is described by that model's schema,
its description and its answer; the others read their bodies field by field, so their
request is an open JSON object and the handler's docstring, where it has one, describes them."""

from __future__ import annotations

import inspect
from typing import Any

from calchub.api.openapi import PUBLIC, SIGNED_IN, Components, Section, add_section
from calchub.api.v2 import routes  # noqa: F401  (declares the routes)
from calchub.api.v2.registry import ROUTES, V2Route

DESCRIPTION = (
    "CoCalc's REST endpoints: `POST /api/v2/<path>` with a JSON body. Answers and refusals "
    '(`{"error": "..."}`) are HTTP 200; a malformed or oversized body is HTTP 400, an unknown '
    "path HTTP 404. A missing or unknown key makes the caller anonymous; routes that need an "
    'account answer `{"error": "must be signed in"}`.'
)

ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}


def _operation_id(path: str) -> str:
    return "v2_" + path.replace("/", "_").replace("-", "_")


def _request_schema(components: Components, route: V2Route) -> dict[str, Any]:
    if route.request is None:
        return components.schema("v2_request", {"type": "object"})
    return components.model(_operation_id(route.path) + "_request", route.request)


def _operation(components: Components, route: V2Route) -> dict[str, Any]:
    about = (
        route.description or inspect.getdoc(route.handler) or f"CoCalc's `/api/v2/{route.path}`."
    )
    if route.response:
        about += f"\n\nAnswers `{route.response}`."
    if route.public:
        about += "\n\nAnswers anonymous callers too."
    return {
        "operationId": _operation_id(route.path),
        "tags": ["v2"],
        "summary": route.path,
        "description": about,
        "security": PUBLIC if route.public else [*SIGNED_IN, {}],
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": _request_schema(components, route)}},
        },
        "responses": {
            "200": {
                "description": 'the answer (any JSON value), or `{"error": "..."}`',
                "content": {"application/json": {"schema": {}}},
            },
            "400": {
                "description": "the body is not a JSON object, or too large",
                "content": {"application/json": {"schema": components.schema("v2_error", ERROR)}},
            },
        },
    }


def v2_paths(components: Components) -> dict[str, Any]:
    return {
        f"/api/v2/{path}": {"post": _operation(components, ROUTES[path])} for path in sorted(ROUTES)
    }


add_section(Section("v2", "REST v2", DESCRIPTION, v2_paths))
