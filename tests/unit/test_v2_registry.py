"""The v2 route registry: every route is an OpenAPI operation with its body's schema, and
docs/api-v2.md is what the registry renders."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from calchub.api.openapi import document
from calchub.api.v2 import openapi  # noqa: F401  (adds the v2 section)
from calchub.api.v2.docs import render_v2_page
from calchub.api.v2.registry import ROUTES, is_skipped, is_web_only

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api-v2.md"


def test_every_route_is_an_operation() -> None:
    doc = document(["v2"])
    validate(doc)
    assert set(doc["paths"]) == {f"/api/v2/{path}" for path in ROUTES}
    exec_body = doc["components"]["schemas"]["v2_exec_request"]["properties"]
    assert {"project_id", "command", "args", "timeout", "bash"} <= set(exec_body)


def test_docs_page_is_current() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_v2_page(), "run `calchub docs`"
    for path in ROUTES:
        assert f"`{path}`" in render_v2_page()


def test_skipped_prefixes() -> None:
    assert is_skipped("purchases/get-balance") and is_skipped("token-action")
    assert not is_skipped("projects/create") and not is_skipped("exec")
    assert not any(is_skipped(path) for path in ROUTES)
    assert is_web_only("auth/sign-in") and not is_web_only("accounts/sign-out")
    assert not any(is_web_only(path) for path in ROUTES)
