"""OpenAPI 3.1 documents generated from the edges' registries.

Each edge contributes a `Section`: its paths, described from its own registry, with the
schemas they refer to put into the shared components. `/api/<edge>/openapi.json` serves one
edge's section; `/api/openapi.json` serves them all. Nothing here restates a field list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from calchub import __version__

OPENAPI_VERSION = "3.1.0"

# How every edge authenticates: the API key as the HTTP Basic user name (no password), or
# as a bearer token.
SECURITY_SCHEMES = {
    "apiKeyBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "the API key as the user name, with an empty password (`curl -u sk_...:`)",
    },
    "apiKeyBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer sk_...`",
    },
}
SIGNED_IN: list[dict[str, list[str]]] = [{"apiKeyBasic": []}, {"apiKeyBearer": []}]
# Public operations also accept a blank key.
PUBLIC: list[dict[str, list[str]]] = [*SIGNED_IN, {}]


class Components:
    """The schemas of one document: models by name, each added once."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def model(
        self, name: str, model: type[BaseModel], *, mode: str = "validation"
    ) -> dict[str, str]:
        """A `$ref` to `model`'s JSON schema, added under `name` (its nested models beside it)."""
        if name not in self.schemas:
            schema = model.model_json_schema(
                ref_template="#/components/schemas/{model}",
                mode=mode,  # type: ignore[arg-type]
            )
            for nested, definition in schema.pop("$defs", {}).items():
                self.schemas.setdefault(nested, definition)
            self.schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def schema(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        self.schemas.setdefault(name, schema)
        return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class Section:
    """One edge's part of the API."""

    name: str  # the path segment: /api/<name>/openapi.json
    title: str
    description: str
    paths: Callable[[Components], dict[str, Any]]


SECTIONS: dict[str, Section] = {}


def add_section(section: Section) -> None:
    if section.name in SECTIONS:
        raise ValueError(f"OpenAPI section {section.name!r} added twice")
    SECTIONS[section.name] = section


def document(names: list[str] | None = None, *, server_url: str = "") -> dict[str, Any]:
    """The OpenAPI document of the named sections (all, in the order added, by default)."""
    chosen = [SECTIONS[name] for name in (names if names is not None else list(SECTIONS))]
    components = Components()
    paths: dict[str, Any] = {}
    for section in chosen:
        paths.update(section.paths(components))
    if names is not None and len(chosen) == 1:
        title, description = chosen[0].title, chosen[0].description
    else:
        title = "calchub API"
        description = "\n\n".join(f"**{s.title}**: {s.description}" for s in chosen)
    doc: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": __version__, "description": description},
        "tags": [{"name": s.name, "description": s.title} for s in chosen],
        "paths": paths,
        "components": {"schemas": components.schemas, "securitySchemes": SECURITY_SCHEMES},
    }
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc
