"""The conat bridge as OpenAPI operations, from its method registries.

Each bridge is one URL whose body names the method, so each is one operation; the methods it
answers are the `name` field's values, listed with their auth rule."""

from __future__ import annotations

from typing import Any

from calchub.api.conat import methods  # noqa: F401  (declares the methods)
from calchub.api.conat.common import DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS
from calchub.api.conat.registry import HUB_METHODS, PROJECT_METHODS, Auth, Method
from calchub.api.openapi import SIGNED_IN, Components, Section, add_section

DESCRIPTION = (
    "The bridge that CoCalc's current clients (the `cocalc-api` Python package and its MCP "
    "server) call: `POST` a method's `name` and its `args`; the answer is the method's result "
    'as JSON, or `{"error": "..."}`, always with HTTP 200.'
)

AUTH_WORDS = {
    Auth.AUTH_FIRST: "the caller's account_id is put into args[0]",
    Auth.AUTH_FIRST_REQUIRE_ACCOUNT: "the caller's account_id is put into args[0]",
    Auth.REQUIRE_ACCOUNT: "args as sent",
    Auth.NO_AUTH: "args as sent",
}

ANSWER = {
    "description": (
        'the method\'s result (any JSON value), or `{"error": "..."}` when the call was '
        "refused, failed or timed out"
    ),
    "content": {"application/json": {"schema": {}}},
}


def _request_schema(names: list[str], *, project: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "name": {"type": "string", "enum": names, "description": "the method to call"},
        "args": {
            "type": "array",
            "default": [],
            "description": "its arguments (most methods take one options object)",
        },
        "timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": DEFAULT_TIMEOUT_MS,
            "description": f"milliseconds (at most {MAX_TIMEOUT_MS}) before `timeout` answers",
        },
    }
    if project:
        properties["project_id"] = {
            "type": "string",
            "description": "the project; optional with a project-scoped key",
        }
        properties["compute_server_id"] = {
            "type": "integer",
            "description": "0 or absent: compute servers are not supported",
        }
    return {"type": "object", "properties": properties, "required": ["name"]}


def _method_list(table: dict[str, Method], *, project: bool) -> str:
    lines = []
    for name in sorted(table):
        rule = "" if project else f" ({AUTH_WORDS[table[name].auth]})"
        lines.append(f"- `{name}`{rule}")
    return "\n".join(lines)


def conat_paths(components: Components) -> dict[str, Any]:
    hub_names = sorted(HUB_METHODS)
    project_names = ["ping", *sorted(PROJECT_METHODS)]
    return {
        "/api/conat/hub": {
            "post": {
                "operationId": "conat_hub",
                "tags": ["conat"],
                "summary": "Call a hub method as the key's account",
                "description": (
                    "Needs an account's key (a project-scoped key is not signed in here). "
                    "Methods:\n\n" + _method_list(HUB_METHODS, project=False)
                ),
                "security": SIGNED_IN,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": components.schema(
                                "conat_hub_request", _request_schema(hub_names, project=False)
                            )
                        }
                    },
                },
                "responses": {"200": ANSWER},
            }
        },
        "/api/conat/project": {
            "post": {
                "operationId": "conat_project",
                "tags": ["conat"],
                "summary": "Call a method of a project's API",
                "description": (
                    "As a collaborator's account key (name the project in `project_id`) or "
                    "a project-scoped key. A stopped project is started first. Methods:\n\n"
                    + _method_list(PROJECT_METHODS, project=True)
                    + "\n- `ping` (answers `pong` without starting the project)"
                ),
                "security": SIGNED_IN,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": components.schema(
                                "conat_project_request",
                                _request_schema(project_names, project=True),
                            )
                        }
                    },
                },
                "responses": {"200": ANSWER},
            }
        },
    }


add_section(Section("conat", "conat bridge", DESCRIPTION, conat_paths))
