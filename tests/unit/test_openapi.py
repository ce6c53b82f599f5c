"""The OpenAPI document: valid OpenAPI 3.1, one operation per registered message, and
reply declarations for every event."""

from __future__ import annotations

from typing import Any

from openapi_spec_validator import validate

from calchub.api.conat import openapi as conat_openapi  # noqa: F401  (adds the bridge)
from calchub.api.conat.registry import HUB_METHODS, PROJECT_METHODS
from calchub.api.openapi import SECTIONS, document
from calchub.api.reference_page import render
from calchub.api.v1 import openapi  # noqa: F401  (adds the v1 section)
from calchub.api.v1.registry import DEFINITIONS, HANDLERS, REPLIES
from calchub.api.v2 import openapi as v2_openapi  # noqa: F401  (adds REST v2)
from calchub.api.v2.registry import ROUTES


def test_whole_document_is_valid_openapi_31() -> None:
    doc = document(server_url="/")
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_each_section_is_valid_alone() -> None:
    for name in SECTIONS:
        validate(document([name]))


def test_every_v1_event_is_an_operation() -> None:
    paths = document(["v1"])["paths"]
    assert set(paths) == {f"/api/v1/{event}" for event in DEFINITIONS}
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_bridge_method_is_named() -> None:
    doc = document(["conat"])
    schemas = doc["components"]["schemas"]
    assert set(doc["paths"]) == {"/api/conat/hub", "/api/conat/project"}
    assert schemas["conat_hub_request"]["properties"]["name"]["enum"] == sorted(HUB_METHODS)
    names = schemas["conat_project_request"]["properties"]["name"]["enum"]
    assert set(names) == {"ping", *PROJECT_METHODS}
    assert set(SECTIONS) >= {"v1", "conat", "v2"}
    assert set(document()["paths"]) >= {"/api/conat/hub", "/api/v1/ping"}


def test_every_v2_route_is_an_operation() -> None:
    paths = document(["v2"])["paths"]
    assert set(paths) == {f"/api/v2/{path}" for path in ROUTES}
    assert all("post" in item for item in paths.values())


def test_every_event_declares_its_replies() -> None:
    assert set(REPLIES) == set(DEFINITIONS)
    for event, declared in REPLIES.items():
        defn = DEFINITIONS[event]
        if declared.unavailable is None:
            assert event in HANDLERS and defn.dispatchable, event
            assert declared.success is not None


def _answers(doc: dict[str, Any], event: str) -> list[dict[str, Any]]:
    schemas = doc["components"]["schemas"]
    op = doc["paths"][f"/api/v1/{event}"]["post"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    return [schemas[ref["$ref"].rsplit("/", 1)[-1]] for ref in schema["anyOf"]]


def test_reply_envelopes() -> None:
    doc = document(["v1"])
    ping, error = _answers(doc, "ping")
    assert ping["properties"]["event"] == {"const": "pong"}
    assert set(ping["required"]) == {"event", "id", "now"}
    assert ping["additionalProperties"] is False
    assert error["properties"]["event"] == {"const": "error"}
    events = [a["properties"]["event"]["const"] for a in _answers(doc, "create_account")]
    assert events == ["account_created", "account_creation_failed", "error"]
    # Billing: only the error event; response types: no 200 at all.
    assert [a["properties"]["event"]["const"] for a in _answers(doc, "stripe_get_charges")] == [
        "error"
    ]
    assert "200" not in doc["paths"]["/api/v1/stripe_plans"]["post"]["responses"]


def test_public_events_accept_a_blank_key() -> None:
    paths = document(["v1"])["paths"]
    assert {} in paths["/api/v1/public_get_text_file"]["post"]["security"]
    assert {} not in paths["/api/v1/project_exec"]["post"]["security"]


def test_reference_page_lists_every_operation() -> None:
    page = render(document())
    for event in DEFINITIONS:
        assert f"id='v1_{event}'" in page, event
    # Nothing loaded from anywhere: no scripts, style sheets, images or absolute links.
    for loads in ("<script", "<link", "src=", "href='http", 'href="http'):
        assert loads not in page, loads
