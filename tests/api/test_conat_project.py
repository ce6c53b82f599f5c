"""`POST /api/conat/project`: who may call a project's API, the start before each call, and
the project methods cocalc-api and its MCP server use, over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from tests.api.bridge import call, hub, new_key, project
from tests.conftest import User
from tests.harness import Server


def _project(server: Server, user: User) -> str:
    project_id = hub(server, user.api_key, "projects.createProject", {"title": "p"})
    assert isinstance(project_id, str)
    return project_id


def test_who_may_call(server: Server, user: User, make_user: Callable[..., User]) -> None:
    stranger = make_user()
    project_id = _project(server, user)
    other_project = _project(server, stranger)
    assert project(server, None, project_id, "system.ping") == {
        "error": "must sign in as project or account"
    }
    assert project(server, "sk_" + "x" * 24, project_id, "system.ping") == {
        "error": "must sign in as project or account"
    }
    assert project(server, user.api_key, None, "system.ping") == {
        "error": "must specify project_id or use project-specific api key"
    }
    assert project(server, stranger.api_key, project_id, "system.ping") == {
        "error": "Error: user must be a collaborator on the project"
    }
    assert project(server, user.api_key, "not-a-uuid", "system.ping")["error"].startswith("Error")
    assert project(server, user.api_key, project_id, "ping") == "pong"
    assert project(server, user.api_key, project_id, "system.ping", compute_server_id=3) == {
        "error": "compute servers are not supported"
    }
    assert project(server, user.api_key, project_id, "system.nothing") == {
        "error": "Error: unknown function 'system.nothing'"
    }

    # A project key: its own project only, with or without naming it.
    key = new_key(server, user.account_id, "--project", project_id)
    answer = project(server, key, None, "system.test")
    assert set(answer) == {"project_id", "server_time"} and answer["project_id"] == project_id
    assert project(server, key, project_id.upper(), "system.test")["project_id"] == project_id
    assert project(server, key, other_project, "system.test") == {
        "error": "project specific api key must match requested project"
    }
    exec_ = {"command": "cat", "args": ["/etc/hostname"]}
    assert project(server, key, other_project, "system.exec", exec_)["error"]
    # ... and nothing of the hub.
    assert hub(server, key, "system.test")["error"].startswith("must be signed in")


def test_test_injects_the_project(server: Server, user: User) -> None:
    project_id = _project(server, user)
    answer = project(server, user.api_key, project_id, "system.test", {"project_id": "x"})
    assert answer["project_id"] == project_id


def test_a_call_starts_a_stopped_project(server: Server, user: User) -> None:
    project_id = _project(server, user)
    assert hub(server, user.api_key, "projects.state", {"project_id": project_id})["state"] == (
        "opened"
    )
    answer = project(server, user.api_key, project_id, "system.exec", {"command": "echo hi"})
    assert answer == {"type": "blocking", "stdout": "hi\n", "stderr": "", "exit_code": 0}
    state = hub(server, user.api_key, "projects.state", {"project_id": project_id})
    assert state["state"] == "running"


def test_exec(server: Server, user: User) -> None:
    key, project_id = user.api_key, _project(server, user)

    def run(**opts: object) -> object:
        return project(server, key, project_id, "system.exec", opts)

    assert run(command="echo", args=["a b"])["stdout"] == "a b\n"  # type: ignore[index]
    # Whitespace and no args: bash, as CoCalc runs it.
    assert run(command="echo 'x' > f.txt && cat f.txt")["stdout"] == "x\n"  # type: ignore[index]
    assert run(command="pwd", path="sub")["error"]  # type: ignore[index]
    run(command="mkdir -p sub")
    assert run(command="pwd", cwd="sub")["stdout"].endswith("/sub\n")  # type: ignore[index]
    with_env = run(command="echo $GREETING-$HOME", env={"GREETING": "hello"})
    assert with_env["stdout"] == f"hello-/projects/{project_id}\n"  # type: ignore[index]
    # pip works in a project (the system's Python is read-only there anyway).
    pip = run(command="python3", args=["-m", "pip", "install", "--no-index", "pip"], timeout=60)
    assert pip["exit_code"] == 0, pip  # type: ignore[index]
    failed = run(command="echo 'test error message' >&2; exit 42", bash=True)
    assert failed == {
        "error": "command 'echo 'test error message' >&2; exit 42' exited with nonzero code 42 "
        "-- stderr='test error message\n'"
    }
    failed = run(command="false", args=[])
    assert failed == {"error": "command 'false' (args=) exited with nonzero code 1 -- stderr=''"}
    killed = run(command="sleep 30", timeout=1)
    assert killed["error"].startswith("killed command")  # type: ignore[index]
    for bad in (
        {"command": 5},
        {},
        {"command": "ls", "args": "x"},
        {"command": "ls", "timeout": "x"},
        {"command": "ls", "bash": "yes"},
        {"command": "ls", "async_call": "yes"},
        {"async_get": 5},
        {"async_get": "x" * 101},
        {"async_get": str(uuid.uuid4()), "async_await": "yes"},
        {"command": "env", "env": {"A": 1}},
        {"command": "env", "env": {"A=B": "1"}},
        {"command": "env", "env": ["A"]},
    ):
        answer = project(server, key, project_id, "system.exec", bad)
        assert answer["error"].startswith("Error: "), (bad, answer)


def test_deadline_answers_timeout(server: Server, user: User) -> None:
    project_id = _project(server, user)
    body = {
        "project_id": project_id,
        "name": "system.exec",
        "args": [{"command": "sleep 30", "timeout": 30}],
        "timeout": 100,
    }
    assert call(server, "project", user.api_key, body) == {"error": "timeout"}


def test_files(server: Server, user: User, make_user: Callable[..., User]) -> None:
    stranger = make_user()
    key, project_id = user.api_key, _project(server, user)
    theirs = _project(server, stranger)
    secret = {"path": "secret.txt", "content": "theirs"}
    assert (
        project(server, stranger.api_key, theirs, "system.writeTextFileToProject", secret) is None
    )
    write = {"path": "dir/a.txt", "content": "hello"}
    assert project(server, key, project_id, "system.writeTextFileToProject", write) is None
    read = {"path": "dir/a.txt"}
    assert project(server, key, project_id, "system.readTextFileFromProject", read) == "hello"
    listing = project(server, key, project_id, "system.listing", {"path": "dir"})
    assert [(e["name"], e["size"]) for e in listing] == [("a.txt", 5)]
    assert "dir" in [e["name"] for e in project(server, key, project_id, "system.listing", {})]
    for name, opts in [
        # Another project's home is not even visible from this one.
        ("system.readTextFileFromProject", {"path": f"/projects/{theirs}/secret.txt"}),
        ("system.readTextFileFromProject", {"path": f"../{theirs}/secret.txt"}),
        ("system.listing", {"path": f"../{theirs}"}),
        ("system.readTextFileFromProject", {"path": 5}),
        ("system.writeTextFileToProject", {"path": "a", "content": None}),
        ("system.listing", {"path": "dir", "hidden": "yes"}),
    ]:
        answer = project(server, key, project_id, name, opts)
        assert isinstance(answer, dict) and answer["error"].startswith("Error: "), (name, answer)
    assert (
        project(server, stranger.api_key, project_id, "system.readTextFileFromProject", read)[
            "error"
        ]
        == "Error: user must be a collaborator on the project"
    )


def test_jupyter_is_answered(server: Server, user: User) -> None:
    project_id = _project(server, user)
    # A project that has not run any kernel yet lists none.
    assert project(server, user.api_key, project_id, "system.listJupyterKernels", {}) == []


def test_unknown_project(server: Server, user: User) -> None:
    answer = project(server, user.api_key, str(uuid.uuid4()), "system.ping")
    assert answer == {"error": "Error: user must be a collaborator on the project"}


def test_async_exec_jobs(server: Server, user: User, make_user: Callable[..., User]) -> None:
    key, project_id = user.api_key, _project(server, user)

    def run(**opts: object) -> Any:
        return project(server, key, project_id, "system.exec", opts)

    started = run(command="echo $GREETING; echo oops >&2", env={"GREETING": "hi"}, async_call=True)
    assert started["type"] == "async" and started["status"] in ("running", "completed")
    assert isinstance(started["pid"], int) and started["pid"] > 0
    job_id = started["job_id"]
    done = run(async_get=job_id, async_await=True, async_stats=True)
    assert (done["status"], done["stdout"], done["stderr"]) == ("completed", "hi\n", "oops\n")
    assert done["exit_code"] == 0 and done["job_id"] == job_id and done["stats"] == []
    # err_on_exit holds, as for a blocking exec: the error keeps stderr only.
    failing = run(command="echo out; echo bad >&2; exit 3", async_call=True)
    failed = run(async_get=failing["job_id"], async_await=True)
    assert (failed["status"], failed["stdout"], failed["stderr"]) == ("error", "", "bad\n")
    assert failed["exit_code"] == 1

    missing = "Async operation '{}' does not exist."
    unknown = str(uuid.uuid4())
    assert run(async_get=unknown)["error"].endswith(missing.format(unknown))
    # Only this project's jobs, even for a caller who may use the other project too.
    other = _project(server, user)
    elsewhere = project(server, key, other, "system.exec", {"async_get": job_id})
    assert elsewhere["error"].endswith(missing.format(job_id))
    # Someone else's key cannot reach the project at all.
    poll = {"async_get": job_id}
    stranger = project(server, make_user().api_key, project_id, "system.exec", poll)
    assert "error" in stranger and "hi" not in str(stranger)
