"""REST v2 `jupyter/*` over real HTTP, with real kernels in real sandboxes: CoCalc's execute
and kernels (cache, hash lookups, refusals) and calchub's persistent sessions."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from calchub.db.tables import projects
from tests.conftest import User
from tests.harness import ApiClient, Database

RANDOM = "import random; random.random()"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def v2(api: ApiClient, path: str, key: str | None, body: Any = None) -> httpx.Response:
    auth = httpx.BasicAuth(key, "") if key is not None else None
    return api.http.post(f"/api/v2/{path}", json=body if body is not None else {}, auth=auth)


def ok(api: ApiClient, path: str, key: str | None, body: Any = None) -> dict[str, Any]:
    response = v2(api, path, key, body)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert "error" not in reply, reply
    assert reply["success"] is True
    return dict(reply)


def error(api: ApiClient, path: str, key: str | None, body: Any = None) -> str:
    response = v2(api, path, key, body)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert set(reply) == {"error"}, reply
    return str(reply["error"])


@pytest.fixture(scope="module")
def owner(api: ApiClient, admin_key: str) -> User:
    email = f"jupyter-{uuid.uuid4().hex[:8]}@example.com"
    body = {
        "first_name": "Jo",
        "last_name": "Pyter",
        "email_address": email,
        "password": "correct horse",
        "agreed_to_terms": True,
        "get_api_key": True,
    }
    reply = api.call("create_account", admin_key, body)
    assert reply.event == "account_created", reply.body
    return User(reply["account_id"], reply["api_key"], email, "correct horse", "Jo", "Pyter")


@pytest.fixture(scope="module")
def project(api: ApiClient, owner: User, db: Database) -> Iterator[str]:
    reply = api.call("create_project", owner.api_key, {"title": "kernels"})
    assert reply.event == "project_created", reply.body
    project_id = str(reply["project_id"])
    yield project_id
    stop = {"projects": {"project_id": project_id, "action_request": {"action": "stop"}}}
    api.call("query", owner.api_key, {"query": stop})


def ends_interrupted(out: list[dict[str, object]]) -> bool:
    """An interrupted Python cell ends with a KeyboardInterrupt error, or, when a second
    interrupt caught IPython formatting that error (a busy machine), with its stderr note."""
    last = out[-1]
    return last.get("ename") == "KeyboardInterrupt" or "KeyboardInterrupt" in str(
        last.get("text") if last.get("name") == "stderr" else ""
    )


def _run_state(db: Database, project_id: str) -> str:
    row = db.execute(select(projects.c.run_state).where(projects.c.project_id == project_id))
    return str(row[0].run_state)


def test_execute_starts_a_stopped_project_and_answers_cocalcs_shape(
    api: ApiClient, owner: User, project: str, db: Database
) -> None:
    assert _run_state(db, project) == "opened"
    body = {"input": "sum(range(100))", "kernel": "python3", "project_id": project}
    reply = ok(api, "jupyter/execute", owner.api_key, body)
    assert reply["output"] == [{"data": {"text/plain": "4950"}}]
    assert ISO.match(reply["created"])
    assert "id" not in reply
    assert _run_state(db, project) == "running"
    history = {**body, "input": "a + 1", "history": ["a = sum(range(100))"]}
    reply = ok(api, "jupyter/execute", owner.api_key, history)
    assert reply["output"] == [{"data": {"text/plain": "4951"}}]
    printed = ok(api, "jupyter/execute", owner.api_key, {**body, "input": "print('hi')"})
    assert printed["output"][0]["name"] == "stdout"


def test_results_are_cached_and_found_by_hash(api: ApiClient, owner: User, project: str) -> None:
    body = {"input": RANDOM, "kernel": "python3", "project_id": project}
    first = ok(api, "jupyter/execute", owner.api_key, body)
    again = ok(api, "jupyter/execute", owner.api_key, body)
    assert again["output"] == first["output"]
    assert again["created"] == first["created"]
    assert isinstance(again["id"], int)
    fresh = ok(api, "jupyter/execute", owner.api_key, {**body, "noCache": True})
    assert "id" not in fresh
    assert fresh["output"] != first["output"]
    text = json.dumps([None, RANDOM, "python3", project, None], separators=(",", ":"))
    digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
    by_hash = ok(api, "jupyter/execute", owner.api_key, {"hash": digest})
    assert by_hash["output"] == fresh["output"]
    assert ok(api, "jupyter/execute", owner.api_key, {"hash": "0" * 40}) == {"success": True}


def test_kernels_of_a_project(api: ApiClient, owner: User, project: str) -> None:
    reply = ok(api, "jupyter/kernels", owner.api_key, {"project_id": project})
    python = next(k for k in reply["kernels"] if k["name"] == "python3")
    assert python["language"] == "python"
    assert {"display_name", "interrupt_mode", "env", "metadata", "resource_dir", "argv"} <= set(
        python
    )


def test_strangers_and_anonymous_callers_are_refused(
    api: ApiClient, project: str, make_user: Any
) -> None:
    stranger: User = make_user()
    refused = "permission denied -- user must be collaborator on project"
    body = {"input": "1", "kernel": "python3", "project_id": project}
    assert error(api, "jupyter/execute", stranger.api_key, body) == refused
    assert error(api, "jupyter/kernels", stranger.api_key, {"project_id": project}) == refused
    assert error(api, "jupyter/execute", None, body) == refused
    assert error(api, "jupyter/execute", "sk-not-a-real-key", body) == refused
    create = {"project_id": project, "kernel": "python3"}
    assert error(api, "jupyter/sessions/create", stranger.api_key, create) == refused
    assert error(api, "jupyter/sessions/create", None, create) == "must be signed in"


def test_without_a_project_the_global_pool_is_off(api: ApiClient, owner: User) -> None:
    message = "Jupyter API is not enabled on this server."
    body = {"input": "1", "kernel": "python3"}
    assert error(api, "jupyter/execute", owner.api_key, body) == message
    assert error(api, "jupyter/execute", None, body) == message
    assert error(api, "jupyter/kernels", None, {}) == message


def test_bad_input(api: ApiClient, owner: User, project: str) -> None:
    base = {"input": "1", "kernel": "python3", "project_id": project}
    assert error(api, "jupyter/execute", owner.api_key, {**base, "input": 5}) == (
        "input must be a string"
    )
    assert "history" in error(api, "jupyter/execute", owner.api_key, {**base, "history": "x"})
    assert error(api, "jupyter/execute", owner.api_key, {**base, "kernel": ""}) == (
        "kernel must be specified"
    )
    assert "cobol" in error(api, "jupyter/execute", owner.api_key, {**base, "kernel": "cobol"})
    assert "invalid project_id" in error(
        api, "jupyter/execute", owner.api_key, {**base, "project_id": "../etc"}
    )
    assert "timeout" in error(api, "jupyter/execute", owner.api_key, {**base, "timeout": "x"})
    assert v2(api, "jupyter/nothing", owner.api_key).status_code == 404
    response = api.http.post(
        "/api/v2/jupyter/execute",
        content=b"{not json",
        headers={"content-type": "application/json"},
        auth=httpx.BasicAuth(owner.api_key, ""),
    )
    assert response.status_code == 400


def test_a_timed_out_cell_is_interrupted(api: ApiClient, owner: User, project: str) -> None:
    body = {
        "input": "import time; time.sleep(60)",
        "kernel": "python3",
        "project_id": project,
        "timeout": 1,
    }
    reply = ok(api, "jupyter/execute", owner.api_key, body)
    assert ends_interrupted(reply["output"]), reply
    # An interrupted run is not cached.
    assert "id" not in ok(api, "jupyter/execute", owner.api_key, body)


def test_sessions_keep_state(api: ApiClient, owner: User, project: str, make_user: Any) -> None:
    made = ok(
        api, "jupyter/sessions/create", owner.api_key, {"project_id": project, "kernel": "python3"}
    )
    session = made["session"]["session_id"]
    run = {"project_id": project, "session_id": session}
    ok(api, "jupyter/sessions/execute", owner.api_key, {**run, "input": "x = 1"})
    reply = ok(api, "jupyter/sessions/execute", owner.api_key, {**run, "input": "x + 1"})
    assert reply["output"] == [{"data": {"text/plain": "2"}}]
    listed = ok(api, "jupyter/sessions/list", owner.api_key, {"project_id": project})
    assert [s["session_id"] for s in listed["sessions"]] == [session]
    stranger: User = make_user()
    refused = error(api, "jupyter/sessions/execute", stranger.api_key, {**run, "input": "x"})
    assert refused == "permission denied -- user must be collaborator on project"
    assert ok(api, "jupyter/sessions/delete", owner.api_key, run)["deleted"] is True
    assert ok(api, "jupyter/sessions/delete", owner.api_key, run)["deleted"] is False
    gone = error(api, "jupyter/sessions/execute", owner.api_key, {**run, "input": "x"})
    assert session in gone
