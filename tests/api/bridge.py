"""Calling the conat bridge over HTTP, as cocalc-api does (Basic auth with `key:`)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.harness import Server


def call(
    server: Server,
    endpoint: str,
    key: str | None,
    body: Any,
    *,
    bearer: bool = False,
) -> Any:
    """POST /api/conat/<endpoint>; asserts CoCalc's HTTP 200 and returns the JSON answer."""
    headers = {}
    auth = None
    if key is not None:
        if bearer:
            headers["Authorization"] = f"Bearer {key}"
        else:
            auth = httpx.BasicAuth(key, "")
    response = httpx.post(
        f"{server.url}/api/conat/{endpoint}", json=body, headers=headers, auth=auth, timeout=120
    )
    assert response.status_code == 200, response.text
    return response.json()


def hub(server: Server, key: str | None, name: str, *args: Any, **extra: Any) -> Any:
    return call(server, "hub", key, {"name": name, "args": list(args), **extra})


def project(
    server: Server, key: str | None, project_id: str | None, name: str, *args: Any, **extra: Any
) -> Any:
    body: dict[str, Any] = {"name": name, "args": list(args), **extra}
    if project_id is not None:
        body["project_id"] = project_id
    return call(server, "project", key, body)


def new_key(server: Server, account_id: str, *options: str) -> str:
    created = server.cli_json("admin", "api-key", "create", account_id, *options)
    return str(created["api_key"])
