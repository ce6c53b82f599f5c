"""The API reference as one HTML page, rendered on the server from the OpenAPI document.

Served at `/api/docs` (and `/api/`): it needs no script and nothing from another host, so it
works on a server without internet access, behind any proxy.
"""

from __future__ import annotations

import html
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from calchub.api.openapi import document

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d2330; }
nav { position: fixed; top: 0; bottom: 0; width: 17rem; overflow-y: auto; padding: 1rem;
      background: #f3f5f8; border-right: 1px solid #dde2ea; box-sizing: border-box; }
nav a { display: block; color: #234; text-decoration: none; font-size: 13px; }
nav h2 { font-size: 14px; margin: 1rem 0 .3rem; }
main { margin-left: 17rem; padding: 1rem 2rem 4rem; max-width: 60rem; }
section.op { border-top: 1px solid #dde2ea; padding-top: .5rem; margin-top: 1.5rem; }
.path { font-family: ui-monospace, monospace; background: #eef1f6; padding: .1rem .4rem; }
.method { font-weight: bold; color: #05613a; margin-right: .4rem; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: .4rem 0; }
td, th { border: 1px solid #dde2ea; padding: .25rem .5rem; text-align: left;
         vertical-align: top; }
code, pre { font-family: ui-monospace, monospace; font-size: 13px; }
pre { background: #f3f5f8; padding: .5rem; overflow-x: auto; }
.required { color: #a3261b; font-size: 12px; }
"""

_CODE = re.compile(r"`([^`]+)`")


def _text(value: str) -> str:
    """Escaped text; `code` spans and indented lines (examples) keep their form."""
    blocks: list[str] = []
    for paragraph in value.split("\n\n"):
        lines = paragraph.split("\n")
        if all(line.startswith("- ") for line in lines):
            items = (_CODE.sub(r"<code>\1</code>", html.escape(line[2:])) for line in lines)
            blocks.append("<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>")
        elif all(line.startswith("    ") for line in lines if line):
            code = "\n".join(line[4:] for line in lines)
            blocks.append(f"<pre>{html.escape(code)}</pre>")
        else:
            escaped = html.escape(paragraph)
            blocks.append("<p>" + _CODE.sub(r"<code>\1</code>", escaped) + "</p>")
    return "\n".join(blocks)


class Schemas:
    def __init__(self, components: dict[str, Any]) -> None:
        self.components = components

    def resolve(self, schema: Any) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 20:
            schema = self.components.get(schema["$ref"].rsplit("/", 1)[-1], {})
            seen += 1
        return schema if isinstance(schema, dict) else {}

    def type_name(self, schema: Any, depth: int = 0) -> str:
        if not isinstance(schema, dict) or depth > 4:
            return "any"
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            target = self.resolve(schema)
            return str(target.get("title", name)) if depth else self.type_name(target, depth + 1)
        if "const" in schema:
            return f"{schema['const']!r}"
        for key in ("anyOf", "oneOf"):
            if key in schema:
                names = [self.type_name(s, depth + 1) for s in schema[key]]
                return " or ".join(dict.fromkeys(names))
        kind = schema.get("type")
        if kind == "array":
            return f"array of {self.type_name(schema.get('items', {}), depth + 1)}"
        if kind == "object" and "additionalProperties" in schema:
            extra = schema["additionalProperties"]
            if isinstance(extra, dict):
                return f"object of {self.type_name(extra, depth + 1)}"
        if isinstance(kind, str):
            return kind
        return "any"

    def fields_table(self, schema: Any) -> str:
        target = self.resolve(schema)
        properties: dict[str, Any] = target.get("properties", {})
        if not properties:
            return "<p>No fields.</p>"
        required = set(target.get("required", []))
        rows = []
        for name, prop in properties.items():
            note = '<span class="required">required</span>' if name in required else ""
            if isinstance(prop, dict) and "default" in prop and prop["default"] is not None:
                note = f"default <code>{html.escape(repr(prop['default']))}</code>"
            about = prop.get("description", "") if isinstance(prop, dict) else ""
            about_html = _CODE.sub(r"<code>\1</code>", html.escape(about))
            rows.append(
                f"<tr><td><code>{html.escape(name)}</code></td>"
                f"<td>{html.escape(self.type_name(prop))}</td><td>{note}</td>"
                f"<td>{about_html}</td></tr>"
            )
        return (
            "<table><tr><th>field</th><th>type</th><th></th><th>about</th></tr>"
            + "".join(rows)
            + "</table>"
        )


def _responses(schemas: Schemas, responses: dict[str, Any]) -> str:
    parts = []
    for status, response in responses.items():
        parts.append(f"<h4>HTTP {html.escape(status)}: {html.escape(response['description'])}</h4>")
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        for answer in schema.get("anyOf", []):
            target = schemas.resolve(answer)
            event = target.get("properties", {}).get("event", {}).get("const", "")
            label = f"event <code>{html.escape(event)}</code>" if event else "reply"
            parts.append(f"<p>{label}</p>" + schemas.fields_table(target))
    return "\n".join(parts)


def render(doc: dict[str, Any]) -> str:
    schemas = Schemas(doc["components"]["schemas"])
    nav: list[str] = []
    body: list[str] = []
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in doc["paths"].items():
        for method, op in item.items():
            by_tag.setdefault(op.get("tags", ["api"])[0], []).append((path, method, op))
    titles = {tag["name"]: tag["description"] for tag in doc.get("tags", [])}
    for tag, operations in by_tag.items():
        nav.append(f"<h2>{html.escape(titles.get(tag, tag))}</h2>")
        body.append(f"<h2 id='tag-{html.escape(tag)}'>{html.escape(titles.get(tag, tag))}</h2>")
        for path, method, op in operations:
            anchor = html.escape(op["operationId"])
            nav.append(f"<a href='#{anchor}'>{html.escape(path.rsplit('/', 1)[-1])}</a>")
            request = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            public = {} in op.get("security", [])
            body.append(
                f"<section class='op' id='{anchor}'>"
                f"<h3><span class='method'>{method.upper()}</span>"
                f"<span class='path'>{html.escape(path)}</span></h3>"
                + _text(op.get("description", ""))
                + ("<p>A blank API key is accepted.</p>" if public else "")
                + "<h4>Request fields</h4>"
                + schemas.fields_table(request.get("schema", {}))
                + _responses(schemas, op.get("responses", {}))
                + "</section>"
            )
    info = doc["info"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(info['title'])} reference</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<nav><strong>{html.escape(info['title'])}</strong> {html.escape(info['version'])}"
        + "".join(nav)
        + "</nav><main>"
        f"<h1>{html.escape(info['title'])}</h1>"
        + _text(info.get("description", ""))
        + "<p>Machine-readable: <a href='openapi.json'>openapi.json</a>.</p>"
        + "".join(body)
        + "</main></body></html>"
    )


_PAGE: dict[str, str] = {}


async def reference_page(request: Request) -> Response:
    root = str(request.scope.get("root_path", ""))
    if root not in _PAGE:
        _PAGE[root] = render(document(server_url=root or "/"))
    return HTMLResponse(_PAGE[root])


async def api_index(request: Request) -> Response:
    return RedirectResponse(str(request.url_for("api_docs")), status_code=307)
