"""REST v2 (`POST /api/v2/<path>`) over real HTTP: the envelope and status codes, auth as
CoCalc's getAccountId (a bad key is an anonymous caller; a project key acts as its project),
and every route: success, refusals, bad input, other users' ids."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.api.bridge import new_key
from tests.conftest import User
from tests.harness import Server

MakeUser = Callable[..., User]


def v2(
    server: Server,
    key: str | None,
    path: str,
    body: Any = None,
    *,
    bearer: bool = False,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """POST /api/v2/<path> as curl would (`-u key:` or a Bearer header)."""
    all_headers = dict(headers or {})
    auth = None
    if key is not None:
        if bearer:
            all_headers["Authorization"] = f"Bearer {key}"
        else:
            auth = httpx.BasicAuth(key, "")
    response = httpx.post(
        f"{server.url}/api/v2/{path}",
        json=body if content is None else None,
        content=content,
        headers=all_headers,
        auth=auth,
        timeout=120,
    )
    return response.status_code, response.json()


def ok(server: Server, key: str | None, path: str, body: Any = None, **kw: Any) -> Any:
    status, answer = v2(server, key, path, body, **kw)
    assert status == 200 and not (isinstance(answer, dict) and "error" in answer), answer
    return answer


def error(server: Server, key: str | None, path: str, body: Any = None, **kw: Any) -> str:
    status, answer = v2(server, key, path, body, **kw)
    assert status == 200 and isinstance(answer, dict) and set(answer) == {"error"}, answer
    return str(answer["error"])


def _project(server: Server, user: User, title: str = "v2") -> str:
    project_id = ok(server, user.api_key, "projects/create", {"title": title})["project_id"]
    assert uuid.UUID(project_id)
    return str(project_id)


# --- the envelope --------------------------------------------------------------------------


def test_unknown_skipped_and_malformed(server: Server, user: User) -> None:
    key = user.api_key
    assert v2(server, key, "nothing/here", {}) == (
        404,
        {"error": "no such endpoint '/api/v2/nothing/here'"},
    )
    assert v2(server, key, "purchases/get-balance", {}) == (
        200,
        {"error": "not available on this server"},
    )
    status, answer = v2(
        server,
        key,
        "messages/get",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and "error" in answer
    status, answer = v2(server, key, "messages/get", [1, 2])
    assert (status, answer) == (400, {"error": "the body must be a JSON object"})
    # An oversized body is refused before it is parsed.
    status, answer = v2(
        server,
        key,
        "messages/get",
        content=b" " * (11 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert status == 400 and "too large" in answer["error"]
    # An anonymous caller may not send much.
    status, answer = v2(server, None, "accounts/search", {"query": "x" * 70_000})
    assert status == 400 and "too large" in answer["error"]
    # Like CoCalc's get-params, a GET carries no body: the route sees none.
    response = httpx.get(f"{server.url}/api/v2/messages/get", auth=(key, ""))
    assert (response.status_code, response.json()) == (
        200,
        {"status": "success", "messages": []},
    )
    # A field of the wrong type is a refusal, not a crash.
    assert error(server, key, "messages/get", {"limit": "many"}).startswith("limit:")
    assert error(server, key, "api-keys", {"action": "steal"}).startswith("action:")


def test_auth_bad_keys_are_anonymous(server: Server, user: User) -> None:
    for key in (None, "", "sk-" + "x" * 22, "sk_nope"):
        assert error(server, key, "messages/get", {}) == "must be signed in"
        assert error(server, key, "projects/create", {}) == "user must be signed in"
    status, answer = v2(server, None, "messages/get", {}, headers={"Authorization": "Token x"})
    assert (status, answer) == (200, {"error": "must be signed in"})
    for bearer in (False, True):
        answer = ok(server, user.api_key, "messages/get", {}, bearer=bearer)
        assert answer == {"status": "success", "messages": []}
    current = new_key(server, user.account_id)
    assert ok(server, current, "messages/get", {})["status"] == "success"


# --- projects and exec ---------------------------------------------------------------------


def test_exec_and_project_keys(server: Server, make_user: MakeUser) -> None:
    owner, stranger = make_user(), make_user()
    project = _project(server, owner)
    answer = ok(server, owner.api_key, "exec", {"project_id": project, "command": "pwd"})
    assert answer == {
        "type": "blocking",
        "stdout": f"/projects/{project}\n",
        "stderr": "",
        "exit_code": 0,
    }
    answer = ok(
        server,
        owner.api_key,
        "exec",
        {"project_id": project, "command": "echo $((6*7))", "bash": True},
    )
    assert answer["stdout"] == "42\n"
    failed = error(server, owner.api_key, "exec", {"project_id": project, "command": "false"})
    assert failed.startswith("Error executing command 'false' with args '' -- ")
    answer = ok(
        server,
        owner.api_key,
        "exec",
        {"project_id": project, "command": "false", "err_on_exit": False},
    )
    assert answer["exit_code"] == 1
    # Outsiders, anonymous callers, bad ids and bad bodies.
    body = {"project_id": project, "command": "id"}
    assert error(server, stranger.api_key, "exec", body) == (
        "user must be a collaborator on the project"
    )
    assert error(server, None, "exec", body) == "must be signed in"
    assert error(server, owner.api_key, "exec", {"project_id": "x", "command": "id"}) == (
        "project_id must be a valid uuid"
    )
    assert error(server, owner.api_key, "exec", {"project_id": project}) == (
        "command must be specified"
    )
    assert error(server, owner.api_key, "exec", {**body, "args": "notalist"}).startswith("args")
    assert error(server, owner.api_key, "exec", {**body, "timeout": -1}).startswith("timeout")
    # A project key acts as its project, and only there.
    project_key = new_key(server, owner.account_id, "--project", project)
    assert (
        ok(server, project_key, "exec", {"project_id": project, "command": "pwd"})["exit_code"] == 0
    )
    other = _project(server, stranger, "other")
    assert error(server, project_key, "exec", {"project_id": other, "command": "pwd"}) == (
        "user must be a collaborator on the project"
    )
    assert error(server, project_key, "projects/create", {}) == "user must be signed in"
    assert error(server, project_key, "api-keys", {"action": "get"}) == (
        "account_id is not a valid account"
    )
    assert ok(server, owner.api_key, "projects/stop", {"project_id": project}) == {"status": "ok"}


def test_project_control_and_files(server: Server, make_user: MakeUser) -> None:
    owner, helper, stranger = make_user(), make_user(), make_user()
    project = _project(server, owner)
    for path, refusal in [
        ("projects/start", "must be a collaborator to start project"),
        ("projects/stop", "must be a collaborator to stop project"),
        ("projects/touch", "must be a collaborator to stop project"),
        ("projects/delete", "must be an owner to delete a project"),
    ]:
        assert error(server, stranger.api_key, path, {"project_id": project}) == refusal
        assert error(server, owner.api_key, path, {"project_id": "nope"}) == (
            "project_id must be a valid uuid"
        )
        assert error(server, None, path, {"project_id": project}) == "must be signed in"
    # Collaborators.
    member = {"project_id": project, "account_id": helper.account_id}
    assert error(server, stranger.api_key, "projects/collaborators/add", member).endswith(
        f"does not have write access to project {project}"
    )
    assert ok(server, owner.api_key, "projects/collaborators/add", member) == {"status": "ok"}
    write = {"project_id": project, "path": "notes/a.txt", "content": "hello v2"}
    assert ok(server, helper.api_key, "projects/write-text-file", write) == {"status": "ok"}
    answer = ok(
        server,
        owner.api_key,
        "exec",
        {"project_id": project, "command": "cat", "args": ["notes/a.txt"]},
    )
    assert answer["stdout"] == "hello v2"
    assert ok(server, owner.api_key, "projects/collaborators/remove", member) == {"status": "ok"}
    assert error(server, helper.api_key, "projects/write-text-file", write)
    bad_member = {"project_id": project, "account_id": "x"}
    assert error(server, owner.api_key, "projects/collaborators/add", bad_member) == (
        "account_id must be a valid uuid"
    )
    # write-text-file's own refusals.
    assert error(server, None, "projects/write-text-file", write) == "must be authenticated"
    assert error(
        server, owner.api_key, "projects/write-text-file", {**write, "project_id": 1}
    ).startswith("project_id")
    assert (
        error(server, owner.api_key, "projects/write-text-file", {**write, "project_id": "x"})
        == "must set project_id to a valid uuid"
    )
    assert (
        error(
            server,
            owner.api_key,
            "projects/write-text-file",
            {"project_id": project, "content": "x"},
        )
        == "must specify a 'path'"
    )
    assert (
        error(
            server, owner.api_key, "projects/write-text-file", {"project_id": project, "path": "x"}
        )
        == "must include content of file"
    )
    assert error(
        server, owner.api_key, "projects/write-text-file", {**write, "path": "../../etc/passwd-x"}
    )
    assert error(server, stranger.api_key, "projects/write-text-file", write)
    # Copies, within a project and into another.
    copy = {
        "src_project_id": project,
        "path": "notes",
        "target_project_id": project,
        "target_path": "copy",
    }
    assert ok(server, owner.api_key, "projects/copy-path", copy) == {"copy_id": ""}
    answer = ok(
        server,
        owner.api_key,
        "exec",
        {"project_id": project, "command": "cat", "args": ["copy/a.txt"]},
    )
    assert answer["stdout"] == "hello v2"
    theirs = _project(server, stranger, "theirs")
    assert error(server, owner.api_key, "projects/copy-path", {**copy, "target_project_id": theirs})
    assert error(
        server, stranger.api_key, "projects/copy-path", {**copy, "target_project_id": theirs}
    )
    assert error(server, owner.api_key, "projects/copy-path", {**copy, "path": ""}) == (
        "path must be specified"
    )
    assert (
        error(server, owner.api_key, "projects/copy-path", {**copy, "src_project_id": "x"})
        == "src_project_id must be a valid uuid"
    )
    assert (
        error(server, owner.api_key, "projects/copy-path", {**copy, "target_project_id": None})
        == "target_project_id must be a valid uuid"
    )
    waiting = ok(
        server,
        owner.api_key,
        "projects/copy-path",
        {**copy, "target_path": "copy2", "wait_until_done": False},
    )
    assert uuid.UUID(waiting["copy_id"])
    # Deleting is the owner's.
    assert ok(server, owner.api_key, "projects/delete", {"project_id": project}) == {"status": "ok"}


def test_create_bad_input(server: Server, user: User) -> None:
    assert error(server, user.api_key, "projects/create", {"title": 5}).startswith("title")
    assert error(server, user.api_key, "projects/create", {"title": "t" * 5000}).startswith("title")


# --- queries, accounts, messages, keys, support --------------------------------------------


def test_user_query_and_accounts(server: Server, make_user: MakeUser) -> None:
    ada = make_user(first_name="Adalbert", last_name="Quux")
    answer = ok(
        server,
        ada.api_key,
        "user-query",
        {"query": {"accounts": {"account_id": None, "first_name": None}}},
    )
    assert answer == {
        "query": {"accounts": {"account_id": ada.account_id, "first_name": "Adalbert"}}
    }
    assert error(server, None, "user-query", {"query": {"accounts": {"account_id": None}}}) == (
        "must be signed in"
    )
    assert "error" in v2(server, ada.api_key, "user-query", {"query": {"nope": {}}})[1]
    names = ok(server, None, "accounts/get-names", {"account_ids": [ada.account_id]})
    assert names["names"][ada.account_id]["first_name"] == "Adalbert"
    assert error(server, None, "accounts/get-names", {"account_ids": "x"}).startswith("account_ids")
    found = ok(server, None, "accounts/search", {"query": "Adalbert Quux"})
    assert ada.account_id in [row["account_id"] for row in found]
    assert error(server, None, "accounts/search", {"query": "x", "limit": 10**9}).startswith(
        "limit"
    )


def test_messages(server: Server, make_user: MakeUser) -> None:
    ada, bob = make_user(), make_user()
    sent = ok(
        server,
        ada.api_key,
        "messages/send",
        {"to_ids": [bob.account_id], "subject": "Hi", "body": "there"},
    )
    assert sent["status"] == "success" and isinstance(sent["id"], int)
    to_self = ok(server, ada.api_key, "messages/send", {"subject": "note", "body": "me"})
    got = ok(server, bob.api_key, "messages/get", {"type": "received"})
    assert [m["id"] for m in got["messages"]] == [sent["id"]]
    mine = ok(server, ada.api_key, "messages/get", {})
    assert [m["id"] for m in mine["messages"]] == [to_self["id"]]
    ghost = str(uuid.uuid4())
    assert error(server, ada.api_key, "messages/send", {"to_ids": [ghost], "subject": "s"}) == (
        f"invalid account_id -- {ghost}"
    )
    assert error(server, ada.api_key, "messages/get", {"limit": 501}) == (
        "limit must be at most 500"
    )
    assert error(server, ada.api_key, "messages/get", {"cutoff": "2020-01-01T00:00:00"}) == (
        "cutoff must name its time zone"
    )
    assert error(server, None, "messages/send", {"subject": "s"}) == "must be signed in"


def test_api_keys(server: Server, make_user: MakeUser) -> None:
    owner, stranger = make_user(), make_user()
    (created,) = ok(
        server,
        owner.api_key,
        "api-keys",
        {"action": "create", "name": "ci", "expire": "2099-01-01T00:00:00Z"},
    )["response"]
    assert created["name"] == "ci" and created["secret"].startswith("sk-")
    # The new key works on v2 at once.
    assert ok(server, created["secret"], "messages/get", {})["status"] == "success"
    listed = ok(server, owner.api_key, "api-keys", {"action": "get"})["response"]
    assert created["id"] in [row["id"] for row in listed]
    assert all("secret" not in row for row in listed)
    assert ok(
        server,
        owner.api_key,
        "api-keys",
        {"action": "edit", "id": created["id"], "name": "renamed"},
    ) == {"response": {}}
    (row,) = ok(server, owner.api_key, "api-keys", {"action": "get", "id": created["id"]})[
        "response"
    ]
    assert row["name"] == "renamed"
    # Another account's key is out of reach.
    assert ok(server, stranger.api_key, "api-keys", {"action": "get", "id": created["id"]}) == {
        "response": [None]
    }
    ok(server, stranger.api_key, "api-keys", {"action": "delete", "id": created["id"]})
    assert ok(server, created["secret"], "messages/get", {})["status"] == "success"
    assert ok(server, owner.api_key, "api-keys", {"action": "delete", "id": created["id"]}) == {
        "response": {}
    }
    assert error(server, created["secret"], "messages/get", {}) == "must be signed in"
    assert error(server, owner.api_key, "api-keys", {"action": "edit"}) == "id must be given"
    assert error(
        server, owner.api_key, "api-keys", {"action": "create", "expire": "tomorrow"}
    ).startswith("expire")
    project = _project(server, owner)
    assert error(
        server, stranger.api_key, "api-keys", {"action": "create", "project_id": project}
    ) == ("user must be collaborator on project to manage project_id api keys")


def test_support_tickets(server: Server, user: User) -> None:
    answer = ok(
        server,
        user.api_key,
        "support/create-ticket",
        {"options": {"email": user.email, "subject": "Help", "body": "please"}},
    )
    assert "/support/tickets/" in answer["url"]
    tickets = ok(server, user.api_key, "support/tickets", {})["tickets"]
    assert [t["subject"] for t in tickets] == ["Help"]
    assert error(server, user.api_key, "support/create-ticket", {"options": {}}).startswith(
        "options.email"
    )
    assert error(server, None, "support/tickets", {}) == "must be signed in"


@pytest.mark.parametrize("path", ["exec", "projects/create", "api-keys", "messages/send"])
def test_routes_answer_json_objects_for_empty_bodies(server: Server, user: User, path: str) -> None:
    status, answer = v2(
        server, user.api_key, path, content=b"", headers={"Content-Type": "application/json"}
    )
    assert status == 200 and isinstance(answer, dict), answer


def test_exec_env(server: Server, user: User) -> None:
    project = _project(server, user)
    body = {"project_id": project, "command": "echo $TEST_ENV-$HOME", "bash": True}
    got = ok(server, user.api_key, "exec", {**body, "env": {"TEST_ENV": "123"}})
    assert got["stdout"] == f"123-/projects/{project}\n"
    # Merged over the project's environment, as CoCalc merges it.
    got = ok(server, user.api_key, "exec", {**body, "env": {"HOME": "/elsewhere"}})
    assert got["stdout"] == "-/elsewhere\n"
    for bad in ({"A": 1}, {"A=B": "1"}, ["A"], "A=1", {"A": "x\u0000"}, {"V": "x" * 1_000_001}):
        assert "env" in error(server, user.api_key, "exec", {**body, "env": bad})


def test_async_exec_jobs(server: Server, make_user: MakeUser) -> None:
    owner, stranger = make_user(), make_user()
    project = _project(server, owner)
    started = ok(
        server,
        owner.api_key,
        "exec",
        {"project_id": project, "command": "echo hi", "bash": True, "async_call": True},
    )
    assert started["type"] == "async" and started["status"] == "running"
    assert (started["stdout"], started["stderr"], started["exit_code"]) == ("", "", 0)
    job_id = started["job_id"]
    assert uuid.UUID(job_id) and isinstance(started["start"], int)
    done = ok(
        server,
        owner.api_key,
        "exec",
        {"async_get": job_id, "async_await": True, "async_stats": True},
    )
    assert done["status"] == "completed" and done["stdout"] == "hi\n"
    assert done["exit_code"] == 0 and done["stats"] == []
    assert isinstance(done["elapsed_s"], float) and done["job_id"] == job_id
    # Polling again answers the same, without stats unless asked.
    again = ok(server, owner.api_key, "exec", {"async_get": job_id})
    assert again["stdout"] == "hi\n" and "stats" not in again
    # A failing command: an error under err_on_exit, the real values without it.
    failing = {
        "project_id": project,
        "command": "echo out; echo err >&2; exit 3",
        "bash": True,
        "async_call": True,
    }
    job = ok(server, owner.api_key, "exec", failing)["job_id"]
    got = ok(server, owner.api_key, "exec", {"async_get": job, "async_await": True})
    assert (got["status"], got["stdout"], got["stderr"], got["exit_code"]) == (
        "error",
        "",
        "err\n",
        1,
    )
    job = ok(server, owner.api_key, "exec", {**failing, "err_on_exit": False})["job_id"]
    got = ok(server, owner.api_key, "exec", {"async_get": job, "async_await": True})
    assert (got["status"], got["stdout"], got["exit_code"]) == ("completed", "out\n", 3)
    # Unknown ids, and other people's jobs, do not exist.
    for unknown in (str(uuid.uuid4()), "x", job_id.upper() + "0"):
        assert error(server, owner.api_key, "exec", {"async_get": unknown}) == (
            "Error executing command 'undefined' with args 'undefined' -- "
            f"Error: Async operation '{unknown}' does not exist."
        )
    assert error(server, stranger.api_key, "exec", {"async_get": job_id}) == (
        "Error executing command 'undefined' with args 'undefined' -- "
        f"Error: Async operation '{job_id}' does not exist."
    )
    assert error(
        server,
        stranger.api_key,
        "exec",
        {"project_id": project, "command": "id", "async_call": True},
    ) == ("user must be a collaborator on the project")
    assert error(server, None, "exec", {"async_get": job_id}) == "must be signed in"
    # At most 10 jobs run at once in a project.
    slow = {
        "project_id": project,
        "command": "sleep",
        "args": ["20"],
        "timeout": 20,
        "async_call": True,
    }
    for _ in range(10):
        ok(server, owner.api_key, "exec", slow)
    assert error(server, owner.api_key, "exec", slow) == (
        "too many exec jobs running in this project (at most 10)"
    )
    assert ok(server, owner.api_key, "projects/stop", {"project_id": project}) == {"status": "ok"}


def _poll(server: Server, key: str, job_id: str, done: Callable[[Any], bool], **fields: Any) -> Any:
    """Poll the job until `done` says so of its state; it must still be running meanwhile."""
    deadline = time.monotonic() + 60
    while True:
        got = ok(server, key, "exec", {"async_get": job_id, **fields})
        if done(got):
            return got
        assert got["status"] == "running" and time.monotonic() < deadline, got
        time.sleep(0.05)


def _waiting_for(name: str) -> str:
    """Shell that waits until the test creates `name` in the home folder."""
    return f"while [ ! -e {name} ]; do sleep 0.02; done"


def test_async_exec_output_grows_while_it_runs(server: Server, user: User) -> None:
    key, project = user.api_key, _project(server, user)
    job = {
        "project_id": project,
        "command": f"echo first; echo oops >&2; {_waiting_for('go')}; echo second",
        "bash": True,
        "timeout": 60,
        "async_call": True,
    }
    started = ok(server, key, "exec", job)
    # The reply comes once the command started, with its pid.
    assert isinstance(started["pid"], int) and started["pid"] > 0
    assert (started["status"], started["stdout"]) == ("running", "")
    job_id = started["job_id"]
    partial = _poll(
        server, key, job_id, lambda got: got["stdout"] == "first\n" and got["stderr"] == "oops\n"
    )
    assert partial["status"] == "running" and partial["pid"] == started["pid"]
    ok(server, key, "exec", {"project_id": project, "command": "touch go", "bash": True})
    done = ok(server, key, "exec", {"async_get": job_id, "async_await": True})
    assert (done["status"], done["stdout"], done["stderr"], done["exit_code"]) == (
        "completed",
        "first\nsecond\n",
        "oops\n",
        0,
    )
    assert done["pid"] == started["pid"]

    # Output beyond max_output is cut while the job runs as it is at its end.
    job = {
        **job,
        "command": f"printf '%030d' 0; {_waiting_for('go2')}; echo more",
        "max_output": 10,
    }
    job_id = ok(server, key, "exec", job)["job_id"]
    cut = "0" * 10 + " (truncated at 10 characters)"
    _poll(server, key, job_id, lambda got: got["stdout"] == cut)
    ok(server, key, "exec", {"project_id": project, "command": "touch go2", "bash": True})
    done = ok(server, key, "exec", {"async_get": job_id, "async_await": True})
    assert (done["status"], done["stdout"]) == ("completed", cut)

    # With async_stats, samples of the command's processes: the first a second after its
    # start.
    job = {**job, "command": _waiting_for("go3"), "max_output": None}
    job_id = ok(server, key, "exec", job)["job_id"]
    sampled = _poll(server, key, job_id, lambda got: got["stats"] != [], async_stats=True)
    for sample in sampled["stats"]:
        assert set(sample) == {"timestamp", "mem_rss", "cpu_pct", "cpu_secs"}
        assert isinstance(sample["timestamp"], int) and sample["timestamp"] >= started["start"]
        assert all(isinstance(sample[k], int | float) and sample[k] >= 0 for k in sample)
    ok(server, key, "exec", {"project_id": project, "command": "touch go3", "bash": True})
    done = ok(server, key, "exec", {"async_get": job_id, "async_await": True, "async_stats": True})
    assert done["status"] == "completed" and len(done["stats"]) >= len(sampled["stats"])

    # A command that cannot start answers without a pid, and ends in an error.
    started = ok(
        server, key, "exec", {"project_id": project, "command": "no-such-cmd", "async_call": True}
    )
    assert "pid" not in started
    done = ok(server, key, "exec", {"async_get": started["job_id"], "async_await": True})
    assert done["status"] == "error" and "pid" not in done
    assert ok(server, key, "projects/stop", {"project_id": project}) == {"status": "ok"}
