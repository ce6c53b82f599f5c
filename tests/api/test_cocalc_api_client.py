"""CoCalc's own Python client (`cocalc-api` 0.5.1) and its MCP server, unchanged, against a
real calchub: every hub and project method it offers that this server serves."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cocalc_api import Hub, Project
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.api.bridge import new_key
from tests.conftest import User
from tests.harness import Server


def test_hub_system(server: Server, user: User, make_user: Callable[..., User]) -> None:
    other = make_user(first_name="Grace", last_name="Hopper")
    hub = Hub(api_key=user.api_key, host=server.url)
    assert isinstance(hub.system.ping()["now"], int)
    assert hub.system.test()["account_id"] == user.account_id
    names: Any = hub.system.get_names([other.account_id])
    assert names[other.account_id]["first_name"] == "Grace"
    found: Any = hub.system.user_search(other.email)
    assert [r["account_id"] for r in found] == [other.account_id]
    with pytest.raises(RuntimeError):
        Hub(api_key="sk-" + "q" * 22, host=server.url).system.ping()


def test_hub_projects(server: Server, user: User, make_user: Callable[..., User]) -> None:
    first, second = make_user(), make_user()
    hub = Hub(api_key=user.api_key, host=server.url)
    project_id = hub.projects.create_project(title="client", description="made by cocalc-api")
    assert uuid.UUID(project_id)
    [row] = hub.projects.get(project_id=project_id)
    assert row["title"] == "client" and row["state"]["state"] == "opened"
    assert hub.projects.state(project_id)["state"] == "opened"

    assert hub.projects.add_collaborator(project_id, first.account_id) == {
        "project_id": [project_id]
    }
    hub.projects.add_collaborator(project_id, second.account_id)
    hub.projects.remove_collaborator(project_id, first.account_id)
    [row] = hub.projects.get(project_id=project_id, fields=["project_id", "users"])
    assert set(row["users"]) == {user.account_id, second.account_id}

    hub.projects.start(project_id)
    status = hub.projects.status(project_id)
    assert {"project.pid", "start_ts", "version"} <= set(status)
    hub.projects.touch(project_id)
    hub.projects.stop(project_id)
    assert hub.projects.state(project_id)["state"] == "opened"

    target = hub.projects.create_project(title="target")
    Project(api_key=user.api_key, project_id=project_id, host=server.url).system.exec(
        "echo 'copied' > note.txt"
    )
    hub.projects.copy_path_between_projects(
        src_project_id=project_id, src_path="note.txt", target_project_id=target
    )
    # The target never ran: the call starts it.
    target_api = Project(api_key=user.api_key, project_id=target, host=server.url)
    assert target_api.system.exec("cat note.txt")["stdout"] == "copied\n"

    hub.projects.delete(project_id)
    [row] = hub.projects.get(all=True, project_id=project_id, deleted=True)
    assert row["deleted"] is True
    assert hub.projects.get(project_id=project_id, deleted=False) == []
    stranger = Hub(api_key=first.api_key, host=server.url)
    with pytest.raises(RuntimeError, match="must be collaborator on project to start it"):
        stranger.projects.start(target)


def test_hub_db_and_sync(server: Server, user: User) -> None:
    hub = Hub(api_key=user.api_key, host=server.url)
    answer = hub.db.query({"accounts": {"first_name": None, "last_name": None}})
    assert answer == {"accounts": {"first_name": user.first_name, "last_name": user.last_name}}
    project_id = hub.projects.create_project(title="sync")
    assert hub.sync.history(project_id=project_id, path="x.txt") == {"patches": [], "info": {}}


def test_project_client(server: Server, user: User, make_user: Callable[..., User]) -> None:
    hub = Hub(api_key=user.api_key, host=server.url)
    project_id = hub.projects.create_project(title="project api")
    project = Project(api_key=user.api_key, project_id=project_id, host=server.url)
    assert isinstance(project.system.ping()["now"], int)
    assert project.system.test()["project_id"] == project_id
    assert "Linux" in project.system.exec("uname -a")["stdout"]
    with pytest.raises(RuntimeError) as failed:
        project.system.exec("echo 'test error message' >&2; exit 42", bash=True)
    assert "exited with nonzero code 42" in str(failed.value)
    assert "stderr='test error message" in str(failed.value)
    # An asynchronous job through the client's own argument, polled through call().
    started = project.system.exec("echo async-$((6*7))", async_call=True)
    assert started["type"] == "async" and isinstance(started["pid"], int)
    polled = project.call("system.exec", [{"async_get": started["job_id"], "async_await": True}])
    assert (polled["status"], polled["stdout"]) == ("completed", "async-42\n")

    # A project key: its own project, nothing else.
    key = new_key(server, user.account_id, "--project", project_id)
    scoped = Project(api_key=key, host=server.url)
    assert scoped.system.test()["project_id"] == project_id
    assert scoped.system.exec("echo hi")["stdout"] == "hi\n"
    other = Hub(api_key=make_user().api_key, host=server.url).projects.create_project()
    with pytest.raises(RuntimeError, match="must match requested project"):
        Project(api_key=key, project_id=other, host=server.url).system.ping()
    with pytest.raises(RuntimeError, match="must be signed in"):
        Hub(api_key=key, host=server.url).system.test()


async def _mcp_exec(server: Server, key: str, project_id: str | None) -> tuple[set[str], str]:
    env = {"COCALC_API_KEY": key, "COCALC_HOST": server.url, "PATH": "/usr/bin:/bin"}
    if project_id is not None:
        env["COCALC_PROJECT_ID"] = project_id
    params = StdioServerParameters(command=sys.executable, args=["-m", "cocalc_api.mcp"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name for tool in (await session.list_tools()).tools}
        result = await session.call_tool("exec", {"command": "echo mcp-$((40+2))"})
        text = "".join(getattr(part, "text", "") for part in result.content)
        await session.call_tool("exec", {"command": "echo x > listed.txt"})
        files = await session.read_resource("cocalc://project-files")  # type: ignore[arg-type]
        text += "".join(getattr(part, "text", "") for part in files.contents)
        if project_id is not None:
            profile = await session.read_resource("cocalc://account-profile")  # type: ignore[arg-type]
            text += "".join(getattr(part, "text", "") for part in profile.contents)
    return tools, text


def test_mcp_server(server: Server, user: User) -> None:
    hub = Hub(api_key=user.api_key, host=server.url)
    project_id = hub.projects.create_project(title="mcp")

    tools, text = asyncio.run(_mcp_exec(server, user.api_key, project_id))
    assert {"exec", "projects_search", "set_current_project", "project_status"} <= tools
    assert "mcp-42" in text and "listed.txt" in text
    assert user.email in text and "Error" not in text

    key = new_key(server, user.account_id, "--project", project_id)
    tools, text = asyncio.run(_mcp_exec(server, key, None))
    assert "exec" in tools and "projects_search" not in tools
    assert "mcp-42" in text and "listed.txt" in text
