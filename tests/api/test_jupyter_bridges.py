"""Jupyter on the conat bridges, driven by CoCalc's own client (`cocalc-api` 0.5.1) against a
real server with real kernels in real sandboxes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from cocalc_api import Hub, Project

from tests.api.bridge import hub as hub_call
from tests.api.bridge import new_key
from tests.api.bridge import project as project_call
from tests.conftest import User
from tests.harness import ApiClient, Server


@pytest.fixture(scope="module")
def owner(api: ApiClient, admin_key: str) -> User:
    email = f"bridge-jupyter-{uuid.uuid4().hex[:8]}@example.com"
    body = {
        "first_name": "Bri",
        "last_name": "Dge",
        "email_address": email,
        "password": "correct horse",
        "agreed_to_terms": True,
        "get_api_key": True,
    }
    reply = api.call("create_account", admin_key, body)
    assert reply.event == "account_created", reply.body
    return User(reply["account_id"], reply["api_key"], email, "correct horse", "Bri", "Dge")


@pytest.fixture(scope="module")
def project_id(server: Server, owner: User) -> Iterator[str]:
    hub = Hub(api_key=owner.api_key, host=server.url)
    made = str(hub.projects.create_project(title="bridge kernels"))
    yield made
    hub.projects.stop(made)


def test_hub_kernels_and_execute(server: Server, owner: User, project_id: str) -> None:
    hub = Hub(api_key=owner.api_key, host=server.url)
    kernels: Any = hub.jupyter.kernels(project_id=project_id)
    assert "python3" in [k["name"] for k in kernels]
    result: Any = hub.jupyter.execute(
        input="sum(range(100))", kernel="python3", project_id=project_id
    )
    assert result["output"][0] == {"data": {"text/plain": "4950"}}
    assert isinstance(result["created"], str)
    result = hub.jupyter.execute(
        history=["a = 100"], input="sum(range(a + 1))", kernel="python3", project_id=project_id
    )
    assert result["output"][0] == {"data": {"text/plain": "5050"}}
    result = hub.jupyter.execute(input="print('hi')", kernel="python3", project_id=project_id)
    assert result["output"][0]["name"] == "stdout"
    again: Any = hub.jupyter.execute(input="print('hi')", kernel="python3", project_id=project_id)
    assert again["output"] == result["output"] and isinstance(again["id"], int)


def test_hub_refusals(
    server: Server, owner: User, project_id: str, make_user: Callable[..., User]
) -> None:
    stranger = Hub(api_key=make_user().api_key, host=server.url)
    with pytest.raises(RuntimeError) as refused:
        stranger.jupyter.execute(input="1", kernel="python3", project_id=project_id)
    assert str(refused.value) == (
        "Error: permission denied -- user must be collaborator on project"
    )
    with pytest.raises(RuntimeError) as off:
        stranger.jupyter.execute(input="1", kernel="python3")
    assert str(off.value) == "Error: Jupyter API is not enabled on this server."
    assert hub_call(server, owner.api_key, "jupyter.execute", {"hash": "0" * 40}) is None


def test_project_kernels_execute_list_and_stop(
    server: Server, owner: User, project_id: str
) -> None:
    project = Project(api_key=owner.api_key, project_id=project_id, host=server.url)
    output: Any = project.system.jupyter_execute(input="2 + 2", kernel="python3")
    assert output == [{"data": {"text/plain": "4"}}]
    listed: Any = project.system.list_jupyter_kernels()
    assert listed and all(
        isinstance(k["pid"], int) and isinstance(k["connectionFile"], str) for k in listed
    )
    pid = listed[0]["pid"]
    assert project.system.stop_jupyter_kernel(pid=pid) == {"success": True}
    assert pid not in [k["pid"] for k in project.system.list_jupyter_kernels()]
    assert project.system.stop_jupyter_kernel(pid=pid) == {"success": False}


def test_a_project_key_and_a_session(server: Server, owner: User, project_id: str) -> None:
    key = new_key(server, owner.account_id, "--project", project_id)
    project = Project(api_key=key, host=server.url)
    assert project.system.jupyter_execute(input="3 * 3", kernel="python3") == [
        {"data": {"text/plain": "9"}}
    ]
    # Beyond CoCalc: a session keeps state between executes on the project bridge.
    made = httpx.post(
        f"{server.url}/api/v2/jupyter/sessions/create",
        json={"project_id": project_id, "kernel": "python3"},
        auth=httpx.BasicAuth(key, ""),
        timeout=120,
    ).json()
    session = made["session"]["session_id"]
    run = {"input": "x = 41", "kernel": "python3", "session": session}
    assert project_call(server, key, project_id, "system.jupyterExecute", run) == []
    answer = project_call(
        server, key, project_id, "system.jupyterExecute", {**run, "input": "x + 1"}
    )
    assert answer == [{"data": {"text/plain": "42"}}]
