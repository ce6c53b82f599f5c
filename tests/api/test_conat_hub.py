"""`POST /api/conat/hub`: auth, dispatch, CoCalc's argument rewrite and errors, and every
hub method cocalc-api calls, over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.api.bridge import call, hub, new_key
from tests.conftest import User
from tests.harness import ApiClient, Server

NOT_SIGNED_IN = "must be signed in and MUST provide an api key (cookies are not allowed)"


def _project(server: Server, user: User, title: str = "bridge") -> str:
    project_id = hub(server, user.api_key, "projects.createProject", {"title": title})
    assert isinstance(project_id, str) and uuid.UUID(project_id), project_id
    return project_id


def test_auth(server: Server, user: User, api: ApiClient) -> None:
    assert hub(server, None, "system.ping") == {"error": NOT_SIGNED_IN}
    assert hub(server, "sk-" + "a" * 22, "system.ping") == {"error": NOT_SIGNED_IN}
    response = httpx.post(
        f"{server.url}/api/conat/hub",
        json={"name": "system.ping"},
        headers={"Authorization": f"Token {user.api_key}"},
    )
    assert (response.status_code, response.json()) == (200, {"error": NOT_SIGNED_IN})
    # Both Basic (as cocalc-api sends) and Bearer, for v1 and current keys alike.
    current = new_key(server, user.account_id)
    for key in (user.api_key, current):
        for bearer in (False, True):
            answer = call(server, "hub", key, {"name": "system.test"}, bearer=bearer)
            assert answer["account_id"] == user.account_id
    # A project key is no account: the hub refuses it.
    project_id = _project(server, user)
    project_key = new_key(server, user.account_id, "--project", project_id)
    assert hub(server, project_key, "system.test") == {"error": NOT_SIGNED_IN}
    assert hub(server, project_key, "projects.createProject", {}) == {"error": NOT_SIGNED_IN}
    assert hub(
        server, project_key, "db.userQuery", {"query": {"accounts": {"account_id": None}}}
    ) == {"error": NOT_SIGNED_IN}


def test_dispatch_and_bad_bodies(server: Server, user: User) -> None:
    key = user.api_key
    for name in ("nothing", "system.nothing", "llm.evaluate", "system", ".ping", "system.ping.x"):
        assert hub(server, key, name) == {"error": f"Error: unknown function '{name}'"}
    for body, needle in [
        ({}, "name"),
        ({"name": 7}, "name"),
        ({"name": "system.ping", "args": {"a": 1}}, "args"),
        ({"name": "system.ping", "timeout": "soon"}, "timeout"),
        ({"name": "system.ping", "timeout": -5}, "timeout"),
        ([1, 2], "object"),
    ]:
        answer = call(server, "hub", key, body)
        assert needle in answer["error"], (body, answer)
    response = httpx.post(
        f"{server.url}/api/conat/hub",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
        auth=(key, ""),
    )
    assert response.status_code == 200 and "JSON" in response.json()["error"]
    response = httpx.get(f"{server.url}/api/conat/hub", auth=(key, ""))
    assert response.status_code == 405


def test_system_methods(server: Server, user: User, make_user: Callable[..., User]) -> None:
    other = make_user(first_name="Ada", last_name="Lovelace")
    key = user.api_key
    assert isinstance(hub(server, key, "system.ping")["now"], int)
    # authFirst: the caller's account_id replaces whatever the client sent.
    answer = hub(server, key, "system.test", {"account_id": other.account_id})
    assert answer["account_id"] == user.account_id and isinstance(answer["server_time"], int)

    missing = str(uuid.uuid4())
    names = hub(server, key, "system.getNames", [other.account_id, missing])
    assert names[other.account_id] == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "profile": None,
    }
    assert names[missing] == {"first_name": "Deleted", "last_name": "User"}
    assert "invalid account_id" in hub(server, key, "system.getNames", ["nope"])["error"]
    assert "array" in hub(server, key, "system.getNames", "nope")["error"]

    found = hub(server, key, "system.userSearch", {"query": other.email})
    assert [r["account_id"] for r in found] == [other.account_id]
    assert isinstance(found[0]["created"], int) and found[0]["email_address"] == other.email
    refused = hub(server, key, "system.userSearch", {"query": other.email, "admin": True})
    assert refused["error"].startswith("Error: ")
    assert "limit" in hub(server, key, "system.userSearch", {"query": "x", "limit": "9"})["error"]

    assert hub(server, key, "purchases.getBalance", {}) == 0
    assert "Jupyter" in hub(server, key, "jupyter.kernels", {})["error"]


def test_manage_api_keys(server: Server, user: User, make_user: Callable[..., User]) -> None:
    stranger = make_user()
    key = user.api_key
    created = hub(server, key, "system.manageApiKeys", {"action": "create", "name": "bridge"})
    assert len(created) == 1 and created[0]["name"] == "bridge"
    secret = created[0]["secret"]
    assert secret.startswith("sk-") and created[0]["trunc"] == secret[:3] + "..." + secret[-6:]
    assert hub(server, secret, "system.test")["account_id"] == user.account_id
    listed = hub(server, key, "system.manageApiKeys", {"action": "get"})
    assert created[0]["id"] in [k["id"] for k in listed]
    assert all("secret" not in k and "project_id" not in k for k in listed)
    # Another account sees none of them and cannot touch them.
    theirs = hub(server, stranger.api_key, "system.manageApiKeys", {"action": "get"})
    assert created[0]["id"] not in [k["id"] for k in theirs]
    edit = {"action": "edit", "id": created[0]["id"], "name": "x"}
    answer = hub(server, stranger.api_key, "system.manageApiKeys", edit)
    assert answer == {"error": f"Error: no api key with id {created[0]['id']}"}
    delete = {"action": "delete", "id": created[0]["id"]}
    assert hub(server, stranger.api_key, "system.manageApiKeys", delete) is None
    assert hub(server, secret, "system.test")["account_id"] == user.account_id

    past = {"action": "edit", "id": created[0]["id"], "expire": "2000-01-01T00:00:00Z"}
    assert hub(server, key, "system.manageApiKeys", past) is None
    assert hub(server, secret, "system.test") == {"error": NOT_SIGNED_IN}

    project_id = _project(server, user)
    scoped = {"action": "create", "project_id": project_id}
    refused = hub(server, stranger.api_key, "system.manageApiKeys", scoped)
    assert refused == {
        "error": "Error: user must be collaborator on project to manage project_id api keys"
    }
    made = hub(server, key, "system.manageApiKeys", scoped)[0]
    one = {"action": "get", "project_id": project_id, "id": made["id"]}
    assert [k["id"] for k in hub(server, key, "system.manageApiKeys", one)] == [made["id"]]
    assert hub(server, key, "system.manageApiKeys", {"action": "get", "id": 0}) == [None]
    for bad in ({"action": "fly"}, {"action": "get", "id": "1"}, {"action": "create", "expire": 5}):
        assert hub(server, key, "system.manageApiKeys", bad)["error"].startswith("Error: ")


def test_project_lifecycle(server: Server, user: User, make_user: Callable[..., User]) -> None:
    stranger = make_user()
    key = user.api_key
    project_id = _project(server, user, "lifecycle")
    state = hub(server, key, "projects.state", {"project_id": project_id})
    assert state["state"] == "opened" and state["time"].endswith("Z")
    assert hub(server, key, "projects.status", {"project_id": project_id}) == {}

    for name, doing in [
        ("projects.start", "start it"),
        ("projects.stop", "stop it"),
        ("projects.touch", "touch it"),
        ("projects.state", "get state"),
        ("projects.status", "get status"),
    ]:
        answer = hub(server, stranger.api_key, name, {"project_id": project_id})
        assert answer == {"error": f"Error: must be collaborator on project to {doing}"}
        answer = hub(server, key, name, {"project_id": "../etc"})
        assert answer == {
            "error": "Error: invalid account_id or project_id -- all must be valid uuid's"
        }
    answer = hub(server, stranger.api_key, "projects.deleteProject", {"project_id": project_id})
    assert answer == {"error": "Error: must be an owner to delete a project"}

    assert hub(server, key, "projects.start", {"project_id": project_id}) is None
    assert hub(server, key, "projects.state", {"project_id": project_id})["state"] == "running"
    status = hub(server, key, "projects.status", {"project_id": project_id})
    assert isinstance(status["project.pid"], int) and isinstance(status["start_ts"], int)
    assert hub(server, key, "projects.stop", {"project_id": project_id}) is None
    assert hub(server, key, "projects.state", {"project_id": project_id})["state"] == "opened"
    assert hub(server, key, "projects.touch", {"project_id": project_id}) is None
    assert hub(server, key, "projects.state", {"project_id": project_id})["state"] == "running"
    assert hub(server, key, "projects.deleteProject", {"project_id": project_id}) is None
    query = {"query": {"projects_all": [{"project_id": project_id, "deleted": None}]}}
    rows = hub(server, key, "db.userQuery", query)["projects_all"]
    assert rows == [{"project_id": project_id, "deleted": True}]


def test_create_project_options(server: Server, user: User) -> None:
    key = user.api_key
    project_id = hub(server, key, "projects.createProject", {})
    rows = hub(
        server,
        key,
        "db.userQuery",
        {"query": {"projects": [{"project_id": project_id, "title": None, "description": None}]}},
    )
    assert rows["projects"] == [{"project_id": project_id, "title": "No Title", "description": ""}]
    answer = hub(server, key, "projects.createProject", {"project_id": str(uuid.uuid4())})
    assert answer == {"error": "Error: only admins can specify the project_id"}
    assert hub(server, key, "projects.createProject", {"title": 5})["error"].startswith("Error: ")


def test_collaborators(server: Server, user: User, make_user: Callable[..., User]) -> None:
    helper, stranger = make_user(), make_user()
    project_id = _project(server, user)
    add = {"opts": {"project_id": project_id, "account_id": helper.account_id}}
    answer = hub(server, stranger.api_key, "projects.addCollaborator", add)
    assert answer["error"] == (
        f"Error: user {stranger.account_id} does not have write access to project {project_id}"
    )
    assert hub(server, user.api_key, "projects.addCollaborator", add) == {
        "project_id": [project_id]
    }
    users = hub(
        server,
        helper.api_key,
        "db.userQuery",
        {"query": {"projects": [{"project_id": project_id, "users": None}]}},
    )
    assert set(users["projects"][0]["users"]) == {user.account_id, helper.account_id}
    assert hub(server, user.api_key, "projects.removeCollaborator", add) is None
    assert hub(server, helper.api_key, "projects.state", {"project_id": project_id})["error"]
    assert "opts" in hub(server, user.api_key, "projects.addCollaborator", {})["error"]


def test_copy_between_projects(server: Server, user: User, make_user: Callable[..., User]) -> None:
    stranger = make_user()
    source, target = _project(server, user, "src"), _project(server, user, "dst")
    stranger_project = _project(server, stranger, "theirs")
    write = {"name": "system.writeTextFileToProject", "args": [{"path": "a.txt", "content": "hi"}]}
    assert call(server, "project", user.api_key, {**write, "project_id": source}) is None
    order = {
        "src_project_id": source,
        "src_path": "a.txt",
        "target_project_id": target,
        "target_path": "b.txt",
    }
    assert hub(server, user.api_key, "projects.copyPathBetweenProjects", order) is None
    read = {"name": "system.readTextFileFromProject", "args": [{"path": "b.txt"}]}
    assert call(server, "project", user.api_key, {**read, "project_id": target}) == "hi"
    # Neither from nor into someone else's project.
    for changed in ({"src_project_id": stranger_project}, {"target_project_id": stranger_project}):
        answer = hub(server, user.api_key, "projects.copyPathBetweenProjects", {**order, **changed})
        assert answer["error"].startswith("Error: "), answer
    bad = {**order, "src_path": "../../etc/passwd"}
    assert hub(server, user.api_key, "projects.copyPathBetweenProjects", bad)["error"]


def test_user_query_and_history(server: Server, user: User, make_user: Callable[..., User]) -> None:
    stranger = make_user()
    key = user.api_key
    answer = hub(server, key, "db.userQuery", {"query": {"accounts": {"first_name": None}}})
    assert answer == {"accounts": {"first_name": user.first_name}}
    # authFirst: another account_id in the arguments changes nothing.
    answer = hub(
        server,
        key,
        "db.userQuery",
        {"query": {"accounts": {"first_name": None}}, "account_id": stranger.account_id},
    )
    assert answer == {"accounts": {"first_name": user.first_name}}
    assert hub(server, key, "db.userQuery", {})["error"].startswith("Error: ")
    assert hub(server, key, "db.userQuery", {"query": {"no_such_table": {}}})["error"]

    project_id = _project(server, user)
    history = {"project_id": project_id, "path": "a.txt"}
    assert hub(server, key, "sync.history", history) == {"patches": [], "info": {}}
    refused = hub(server, stranger.api_key, "sync.history", history)
    assert refused == {"error": "Error: user must be collaborator on source project"}


@pytest.mark.parametrize("args", [["x"], [5], [[1]]])
def test_non_object_arguments(server: Server, user: User, args: list[object]) -> None:
    answer = call(server, "hub", user.api_key, {"name": "projects.state", "args": args})
    assert answer["error"].startswith("Error: ")
