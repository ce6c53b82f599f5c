"""The v1 events as OpenAPI operations, from the message registry and the declared replies."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

import calchub.api.v1.handlers  # noqa: F401  (so handlers and replies are known)
from calchub.api.openapi import PUBLIC, SIGNED_IN, Components, Section, add_section
from calchub.api.v1.registry import DEFINITIONS, HANDLERS, REPLIES, MessageDef

DESCRIPTION = (
    "CoCalc's HTTP API v1: `POST /api/v1/<event>` with a JSON body (a form body, or a GET "
    "with a query string, works too: object fields then take JSON text). A reply is HTTP 200 "
    '`{"event": <answer>, "id": <message id>, ...}`; a refusal is HTTP 200 with '
    '`"event": "error"`; a missing or wrong key and malformed parameters are HTTP 400 '
    '`{"error": "..."}`.'
)

PROTOCOL_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
    "additionalProperties": False,
}
ERROR_REPLY = {
    "type": "object",
    "description": "the event was refused or failed",
    "properties": {"event": {"const": "error"}, "id": {}, "error": {}},
    "required": ["event", "id", "error"],
    "additionalProperties": False,
}


def _envelope(components: Components, event: str | None, name: str, fields: type[BaseModel]) -> Any:
    """`{"event": event, "id": ..., <fields>}` as one closed object schema."""
    schema = fields.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    for nested, definition in schema.pop("$defs", {}).items():
        components.schemas.setdefault(nested, definition)
    properties: dict[str, Any] = {"id": {}}
    required = ["id"]
    if event is not None:
        properties = {"event": {"const": event}, **properties}
        required.insert(0, "event")
    properties.update(schema.get("properties", {}))
    required.extend(schema.get("required", []))
    envelope = {
        "type": "object",
        "title": schema.get("title", name),
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if schema.get("description"):
        envelope["description"] = schema["description"]
    return components.schema(name, envelope)


def _answers(components: Components, defn: MessageDef) -> list[Any]:
    declared = REPLIES[defn.event]
    answers: list[Any] = []
    if declared.success is not None:
        answers.append(
            _envelope(components, defn.response_event, f"v1_{defn.event}_reply", declared.success)
        )
    for event, fields in declared.others.items():
        answers.append(_envelope(components, event, f"v1_{event}", fields))
    answers.append(components.schema("v1_error", ERROR_REPLY))
    return answers


def _operation(components: Components, defn: MessageDef) -> dict[str, Any]:
    request = components.model(f"v1_{defn.event}", defn.request)
    protocol_error = {
        "description": "missing or wrong API key, unknown event, malformed body or parameters",
        "content": {
            "application/json": {"schema": components.schema("protocol_error", PROTOCOL_ERROR)}
        },
    }
    declared = REPLIES[defn.event]
    summary = defn.description.split(". ")[0].rstrip(".")
    description = defn.description
    if declared.unavailable is not None:
        description += f"\n\nOn this server: always an error ({declared.unavailable})."
    if defn.examples:
        description += "\n\n" + "\n".join(f"    {example}" for example in defn.examples)
    responses: dict[str, Any] = {}
    if defn.dispatchable:
        responses["200"] = {
            "description": "the reply, or an error event",
            "content": {"application/json": {"schema": {"anyOf": _answers(components, defn)}}},
        }
    responses["400"] = protocol_error
    responses["413"] = {
        "description": "the body is larger than the server accepts",
        "content": {
            "application/json": {"schema": components.schema("protocol_error", PROTOCOL_ERROR)}
        },
    }
    if defn.dispatchable and defn.event not in HANDLERS:
        responses["501"] = protocol_error | {"description": "not implemented on this server"}
    return {
        "operationId": f"v1_{defn.event}",
        "tags": ["v1"],
        "summary": summary,
        "description": description,
        "security": PUBLIC if defn.public else SIGNED_IN,
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": request}},
        },
        "responses": responses,
    }


def v1_paths(components: Components) -> dict[str, Any]:
    return {
        f"/api/v1/{event}": {"post": _operation(components, DEFINITIONS[event])}
        for event in sorted(DEFINITIONS)
    }


add_section(Section("v1", "HTTP API v1", DESCRIPTION, v1_paths))
