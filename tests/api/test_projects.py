"""Projects over real HTTP: creation, permissions, project_exec and text files, and the
sandbox seen from the API (escapes, bombs, isolation)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from calchub.db.tables import project_users, projects
from tests.api.test_v2 import v2
from tests.conftest import User
from tests.harness import ApiClient, Database, Server


def _create(api: ApiClient, user: User, **fields: Any) -> str:
    reply = api.call("create_project", user.api_key, fields)
    assert reply.event == "project_created", reply.body
    uuid.UUID(reply["project_id"])
    return str(reply["project_id"])


def _exec(api: ApiClient, key: str, project_id: str, command: str, **fields: Any) -> Any:
    return api.call("project_exec", key, {"project_id": project_id, "command": command, **fields})


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    return make_user()


@pytest.fixture
def project(api: ApiClient, owner: User) -> str:
    return _create(api, owner, title="Test project")


def _add_member(db: Database, project_id: str, account_id: str, group: str) -> None:
    from sqlalchemy import insert

    from calchub.db.types import utcnow

    db.execute(
        insert(project_users).values(
            project_id=project_id, account_id=account_id, group=group, hide=False, added=utcnow()
        )
    )


# --- create_project ------------------------------------------------------------------------


def test_create_project_stores_fields(api: ApiClient, owner: User, db: Database) -> None:
    project_id = _create(
        api, owner, title="My title", description="About it", image="img1", license="lic-a, lic-b"
    )
    row = db.execute(select(projects).where(projects.c.project_id == project_id))[0]
    assert (row.title, row.description, row.compute_image) == ("My title", "About it", "img1")
    assert row.site_license == {"lic-a": {}, "lic-b": {}}
    assert row.run_state == "opened"
    members = db.execute(select(project_users).where(project_users.c.project_id == project_id))
    assert [(m.account_id, m.group) for m in members] == [(owner.account_id, "owner")]


def test_create_project_defaults_and_form(api: ApiClient, owner: User, db: Database) -> None:
    reply = api.call("create_project", owner.api_key, form={"title": "F", "start": "false"})
    assert reply.event == "project_created"
    row = db.execute(select(projects).where(projects.c.project_id == reply["project_id"]))[0]
    assert (row.title, row.description, row.compute_image) == ("F", "", "ubuntu2004")
    time.sleep(0.5)
    row = db.execute(select(projects).where(projects.c.project_id == reply["project_id"]))[0]
    assert row.run_state == "opened"  # start=false (a form string) means false


def test_create_project_with_start(api: ApiClient, owner: User, db: Database) -> None:
    project_id = _create(api, owner, start=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row = db.execute(select(projects.c.run_state).where(projects.c.project_id == project_id))
        if row[0].run_state == "running":
            break
        time.sleep(0.2)
    assert row[0].run_state == "running"


def test_projects_get_distinct_uids(api: ApiClient, owner: User, db: Database) -> None:
    ids = [_create(api, owner) for _ in range(3)]
    uids = {r.uid for r in db.execute(select(projects.c.uid).where(projects.c.project_id.in_(ids)))}
    assert len(uids) == 3 and min(uids) >= 1_000_000


def test_create_project_bad_input(api: ApiClient, owner: User) -> None:
    assert api.call("create_project", owner.api_key, {"title": 5}).status == 400
    assert api.call("create_project", owner.api_key, {"title": "x" * 5000}).status == 400
    assert api.call("create_project", owner.api_key, {"start": "yes"}).status == 400
    assert (
        "unexpected argument 'owner'"
        in api.call("create_project", owner.api_key, {"owner": "x"})["error"]
    )


# --- permissions ---------------------------------------------------------------------------


def test_stranger_learns_nothing(
    api: ApiClient, project: str, make_user: Callable[..., User]
) -> None:
    stranger = make_user()
    missing = str(uuid.uuid4())
    for pid in (project, missing):
        reply = _exec(api, stranger.api_key, pid, "ls")
        assert reply.body["error"] == (
            f"User {stranger.account_id} does not have write access to project {pid}"
        )
        reply = api.call(
            "read_text_file_from_project", stranger.api_key, {"project_id": pid, "path": "x"}
        )
        assert reply["error"] == (
            f"User {stranger.account_id} does not have read access to project {pid}"
        )
        reply = api.call(
            "write_text_file_to_project",
            stranger.api_key,
            {"project_id": pid, "path": "x", "content": "y"},
        )
        assert reply["error"].endswith(f"does not have write access to project {pid}")
        assert api.call("touch_project", stranger.api_key, {"project_id": pid})["error"] == (
            "must have write access"
        )
        assert (
            api.call("disconnect_from_project", stranger.api_key, {"project_id": pid})["error"]
            == "must have write access"
        )


def test_invalid_project_ids(api: ApiClient, owner: User) -> None:
    reply = _exec(api, owner.api_key, "not-a-uuid", "ls")
    assert reply["error"] == (
        "Internal error determining user permission -- invalid project_id -- not-a-uuid"
    )
    reply = api.call("touch_project", owner.api_key, {"project_id": "../etc"})
    assert reply["error"] == "project_id must be specified and valid"


def test_roles(
    api: ApiClient, project: str, make_user: Callable[..., User], db: Database, admin_key: str
) -> None:
    viewer, collaborator = make_user(), make_user()
    _add_member(db, project, viewer.account_id, "viewer")
    _add_member(db, project, collaborator.account_id, "collaborator")
    assert api.call(
        "write_text_file_to_project",
        collaborator.api_key,
        {"project_id": project, "path": "c.txt", "content": "c"},
    ).event == ("file_written_to_project")
    # viewers may read but not write or run
    reply = api.call(
        "read_text_file_from_project", viewer.api_key, {"project_id": project, "path": "c.txt"}
    )
    assert reply["content"] == "c"
    reply = api.call(
        "write_text_file_to_project",
        viewer.api_key,
        {"project_id": project, "path": "v.txt", "content": "v"},
    )
    assert "does not have write access" in reply["error"]
    assert "does not have write access" in _exec(api, viewer.api_key, project, "ls")["error"]
    # admins may do anything
    assert _exec(api, admin_key, project, "cat", args=["c.txt"])["stdout"] == "c"


def test_touch_and_disconnect(api: ApiClient, project: str, owner: User, db: Database) -> None:
    assert api.call("touch_project", owner.api_key, {"project_id": project}).event == "success"
    row = db.execute(select(projects).where(projects.c.project_id == project))[0]
    assert owner.account_id in row.last_active
    deadline = time.monotonic() + 30
    while row.run_state != "running" and time.monotonic() < deadline:
        time.sleep(0.2)
        row = db.execute(select(projects).where(projects.c.project_id == project))[0]
    assert row.run_state == "running"  # touching starts the project
    assert (
        api.call("disconnect_from_project", owner.api_key, {"project_id": project}).event
        == "success"
    )


# --- project_exec --------------------------------------------------------------------------


def test_exec_pwd_and_args(api: ApiClient, project: str, owner: User) -> None:
    reply = _exec(api, owner.api_key, project, "pwd")
    assert reply.body == {
        "event": "project_exec_output",
        "id": reply["id"],
        "stdout": f"/projects/{project}\n",
        "stderr": "",
        "exit_code": 0,
    }
    assert _exec(api, owner.api_key, project, "echo", args=["xyz", "abc"])["stdout"] == (
        "xyz abc\n"
    )
    reply = api.call(
        "project_exec",
        owner.api_key,
        form={"project_id": project, "command": "echo", "args[]": ["a b", "c"]},
    )
    assert reply["stdout"] == "a b c\n"


def test_exec_path(api: ApiClient, project: str, owner: User) -> None:
    api.call(
        "write_text_file_to_project",
        owner.api_key,
        {"project_id": project, "path": "Private/x", "content": ""},
    )
    assert _exec(api, owner.api_key, project, "pwd", path="Private")["stdout"] == (
        f"/projects/{project}/Private\n"
    )
    assert _exec(api, owner.api_key, project, "pwd", path="/etc")["stdout"] == "/etc\n"
    reply = _exec(api, owner.api_key, project, "pwd", path="no/such/dir")
    assert reply.event == "error"


def test_exec_bash_mode(api: ApiClient, project: str, owner: User) -> None:
    # whitespace in command and no args: bash
    reply = _exec(api, owner.api_key, project, "echo $((6*7)) | tr 4 X")
    assert reply["stdout"] == "X2\n"
    # bash with args: the args are shell-escaped onto the command
    reply = _exec(api, owner.api_key, project, "echo", args=["$HOME", "a;b"], bash=True)
    assert reply["stdout"] == "$HOME a;b\n"


def test_exec_nonzero_exit(api: ApiClient, project: str, owner: User) -> None:
    reply = _exec(api, owner.api_key, project, "ls", args=["/nonexistent"])
    assert reply.event == "error"
    assert reply["error"].startswith(
        "Error executing command 'ls' with args '/nonexistent' -- command 'ls' "
        "(args=/nonexistent) exited with nonzero code 2 -- stderr='"
    )
    reply = _exec(api, owner.api_key, project, "ls", args=["/nonexistent"], err_on_exit=False)
    assert reply.event == "project_exec_output" and reply["exit_code"] == 2
    assert "No such file" in reply["stderr"]


def test_exec_not_found(api: ApiClient, project: str, owner: User) -> None:
    reply = _exec(api, owner.api_key, project, "no-such-command-xyz")
    assert reply.event == "error"
    assert "command 'no-such-command-xyz' (args=) was not able to run" in reply["error"]


def test_exec_err_on_exit_false_from_form(api: ApiClient, project: str, owner: User) -> None:
    reply = api.call(
        "project_exec",
        owner.api_key,
        form={"project_id": project, "command": "false", "err_on_exit": "false"},
    )
    assert reply.event == "project_exec_output" and reply["exit_code"] == 1


def test_exec_max_output(api: ApiClient, project: str, owner: User) -> None:
    reply = _exec(api, owner.api_key, project, "echo", args=["xyz", "abc"], max_output=3)
    assert reply["stdout"] == "xyz (truncated at 3 characters)"
    reply = _exec(api, owner.api_key, project, "echo", args=["ab"], max_output=100)
    assert reply["stdout"] == "ab\n"


def test_exec_timeout_kills_background_children(api: ApiClient, project: str, owner: User) -> None:
    started = time.monotonic()
    reply = _exec(
        api,
        owner.api_key,
        project,
        "sleep 1000 & setsid sleep 1001 & nohup sleep 1002 >/dev/null 2>&1 & sleep 60",
        timeout=1,
    )
    assert time.monotonic() - started < 20
    assert reply.event == "error"
    assert reply["error"].startswith(
        "Error executing command 'sleep 1000 & setsid sleep 1001 & nohup sleep 1002 >/dev/null "
        "2>&1 & sleep 60' with args '' -- killed command 'bash /tmp/"
    )
    time.sleep(0.5)
    survivors = _exec(api, owner.api_key, project, "ps", args=["-eo", "args"])["stdout"]
    assert "sleep 100" not in survivors
    # err_on_exit false: an ordinary reply with exit code 1
    reply = _exec(api, owner.api_key, project, "sleep", args=["30"], timeout=1, err_on_exit=False)
    assert reply.event == "project_exec_output" and reply["exit_code"] == 1


def test_exec_timeout_zero_still_answers(api: ApiClient, project: str, owner: User) -> None:
    reply = _exec(api, owner.api_key, project, "echo", args=["ok"], timeout=0)
    assert reply["stdout"] == "ok\n"


def test_refused_commands(api: ApiClient, project: str, owner: User) -> None:
    assert _exec(api, owner.api_key, project, "smc-jupyter")["error"] == (
        "do not run smc-jupyter directly"
    )
    assert _exec(api, owner.api_key, project, "ipython-notebook").event == "error"


def test_exec_bad_input(api: ApiClient, project: str, owner: User) -> None:
    assert _exec(api, owner.api_key, project, "ls", args="notalist").status == 400
    assert _exec(api, owner.api_key, project, "ls", timeout=-1).status == 400
    assert _exec(api, owner.api_key, project, "ls", max_output="x").status == 400
    assert api.call("project_exec", owner.api_key, {"project_id": project}).status == 400


def test_aggregate_shares_one_run(api: ApiClient, project: str, owner: User) -> None:
    command = "date +%s%N; sleep 1"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        replies = list(
            pool.map(lambda _: _exec(api, owner.api_key, project, command, aggregate=5), range(4))
        )
    assert len({r["stdout"] for r in replies}) == 1
    later = _exec(api, owner.api_key, project, command, aggregate=6)
    assert later["stdout"] != replies[0]["stdout"]


def test_64_concurrent_execs(api: ApiClient, project: str, owner: User) -> None:
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        replies = list(
            pool.map(lambda n: _exec(api, owner.api_key, project, "echo", args=[str(n)]), range(64))
        )
    assert sorted(int(r["stdout"]) for r in replies) == list(range(64))


# --- the sandbox, seen through the API -----------------------------------------------------


def test_output_bomb_is_bounded(api: ApiClient, project: str, owner: User) -> None:
    reply = _exec(api, owner.api_key, project, "yes", timeout=2, max_output=1000, err_on_exit=False)
    assert reply["stdout"].endswith(" (truncated at 1000 characters)")
    assert len(reply["stdout"]) < 1100


def test_fork_bomb_is_contained(api: ApiClient, project: str, owner: User) -> None:
    reply = _exec(
        api,
        owner.api_key,
        project,
        "bomb() { bomb | bomb & }; bomb; sleep 3",
        timeout=5,
        err_on_exit=False,
    )
    assert reply.status == 200
    # the project (and the server) still work afterwards
    assert _exec(api, owner.api_key, project, "echo", args=["alive"])["stdout"] == "alive\n"
    assert api.call("ping", owner.api_key).event == "pong"


def test_cannot_write_system_folders(api: ApiClient, project: str, owner: User) -> None:
    reply = _exec(api, owner.api_key, project, "touch", args=["/usr/evil"], err_on_exit=False)
    assert reply["exit_code"] != 0
    reply = api.call(
        "write_text_file_to_project",
        owner.api_key,
        {"project_id": project, "path": "/usr/evil", "content": "x"},
    )
    assert reply.event == "error"


def test_cannot_see_other_projects_or_server_data(
    api: ApiClient, owner: User, project: str, make_user: Callable[..., User], server: Server
) -> None:
    other = _create(api, make_user())
    secret = f"/projects/{other}"
    listing = _exec(api, owner.api_key, project, "ls", args=["/projects"])["stdout"]
    assert listing.split() == [project]
    reply = _exec(api, owner.api_key, project, "ls", args=[secret], err_on_exit=False)
    assert reply["exit_code"] != 0
    data_dir = str(server.data_dir)
    reply = _exec(api, owner.api_key, project, "ls", args=[data_dir], err_on_exit=False)
    assert reply["exit_code"] != 0
    reply = api.call(
        "read_text_file_from_project",
        owner.api_key,
        {"project_id": project, "path": f"{data_dir}/calchub.db"},
    )
    assert reply.event == "error" and "ENOENT" in reply["error"]


def test_no_network_to_the_hub(api: ApiClient, owner: User, project: str, server: Server) -> None:
    probe = (
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {server.port}),"
        ' timeout=3)"'
    )
    reply = _exec(api, owner.api_key, project, probe, timeout=10)
    assert reply.event == "error"
    assert "Connection refused" in reply["error"] or "Network is unreachable" in reply["error"]
    if "Connection refused" in reply["error"]:
        assert reply["error"].endswith(
            "if you need full internet access, which is disabled by default."
        )


def test_no_network_to_a_host_listener(api: ApiClient, owner: User, project: str) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[Any] = []

    def accept() -> None:
        listener.settimeout(5)
        with contextlib.suppress(OSError):
            accepted.append(listener.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    port = listener.getsockname()[1]
    _exec(
        api,
        owner.api_key,
        project,
        f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\"",
        timeout=5,
        err_on_exit=False,
    )
    thread.join()
    listener.close()
    assert accepted == []


# --- text files ----------------------------------------------------------------------------


def test_write_then_read(api: ApiClient, project: str, owner: User) -> None:
    text = "héllo\nwörld ✓\n"
    reply = api.call(
        "write_text_file_to_project",
        owner.api_key,
        {"project_id": project, "path": "deep/er/file.txt", "content": text},
    )
    assert reply.event == "file_written_to_project"
    reply = api.call(
        "read_text_file_from_project",
        owner.api_key,
        {"project_id": project, "path": "deep/er/file.txt"},
    )
    assert reply.body == {
        "event": "text_file_read_from_project",
        "id": reply["id"],
        "content": text,
    }
    api.call(
        "write_text_file_to_project",
        owner.api_key,
        {"project_id": project, "path": "deep/er/file.txt", "content": "short"},
    )
    assert (
        api.call(
            "read_text_file_from_project",
            owner.api_key,
            {"project_id": project, "path": "deep/er/file.txt"},
        )["content"]
        == "short"
    )
    # an absolute path inside the home works too
    assert (
        api.call(
            "read_text_file_from_project",
            owner.api_key,
            {"project_id": project, "path": f"/projects/{project}/deep/er/file.txt"},
        )["content"]
        == "short"
    )


def test_read_errors(api: ApiClient, project: str, owner: User) -> None:
    reply = api.call(
        "read_text_file_from_project", owner.api_key, {"project_id": project, "path": "missing.txt"}
    )
    assert reply["error"] == (
        f"ENOENT: no such file or directory, open '/projects/{project}/missing.txt'"
    )
    _exec(api, owner.api_key, project, "mkdir", args=["adir"])
    reply = api.call(
        "read_text_file_from_project", owner.api_key, {"project_id": project, "path": "adir"}
    )
    assert reply["error"].startswith("EISDIR")
    _exec(api, owner.api_key, project, "head -c 12000000 /dev/zero > big.bin")
    reply = api.call(
        "read_text_file_from_project", owner.api_key, {"project_id": project, "path": "big.bin"}
    )
    assert reply["error"] == (
        "Attempt to open large file of size 12MB; the maximum allowed size is 10MB. Use vim, "
        "emacs, or pico from a terminal instead."
    )


def test_read_array_form(api: ApiClient, owner: User, make_user: Callable[..., User]) -> None:
    p1, p2 = _create(api, owner), _create(api, owner)
    api.call(
        "write_text_file_to_project",
        owner.api_key,
        {"project_id": p1, "path": "a.txt", "content": "A"},
    )
    api.call(
        "write_text_file_to_project",
        owner.api_key,
        {"project_id": p2, "path": "b.txt", "content": "B"},
    )
    reply = api.call(
        "read_text_file_from_project",
        owner.api_key,
        {"project_id": [p1, p2, p1], "path": ["a.txt", "b.txt", "nope"]},
    )
    items = sorted(reply["content"], key=lambda item: item["path"])
    assert items[0] == {"path": "a.txt", "project_id": p1, "content": "A"}
    assert items[1] == {"path": "b.txt", "project_id": p2, "content": "B"}
    assert items[2]["path"] == "nope" and items[2]["error"].startswith("ENOENT")
    # one path array for a single project
    reply = api.call(
        "read_text_file_from_project", owner.api_key, {"project_id": p1, "path": ["a.txt"]}
    )
    assert reply["content"] == [{"path": "a.txt", "project_id": p1, "content": "A"}]
    reply = api.call(
        "read_text_file_from_project", owner.api_key, {"project_id": [p1, p2], "path": ["a.txt"]}
    )
    assert reply["error"] == (
        "if project_id is an array, then path must be an array of the same length"
    )
    # a project the caller may not read spoils the whole request
    foreign = _create(api, make_user())
    reply = api.call(
        "read_text_file_from_project",
        owner.api_key,
        {"project_id": [p1, foreign], "path": ["a.txt", "x"]},
    )
    assert reply["error"] == (
        f"User {owner.account_id} does not have read access to project {foreign}"
    )


def test_file_escapes(
    api: ApiClient, owner: User, make_user: Callable[..., User], server: Server
) -> None:
    victim_owner = make_user()
    victim = _create(api, victim_owner)
    api.call(
        "write_text_file_to_project",
        victim_owner.api_key,
        {"project_id": victim, "path": "secret.txt", "content": "top secret"},
    )
    mine = _create(api, owner)
    host_home = server.projects_root / victim
    for target in (
        f"/projects/{victim}/secret.txt",
        f"{host_home}/secret.txt",
        str(server.data_dir / "calchub.db"),
    ):
        _exec(api, owner.api_key, mine, "ln", args=["-sfn", target, "link"])
        reply = api.call(
            "read_text_file_from_project", owner.api_key, {"project_id": mine, "path": "link"}
        )
        assert "top secret" not in str(reply.body)
        assert reply.event == "error"
        reply = api.call(
            "write_text_file_to_project",
            owner.api_key,
            {"project_id": mine, "path": "link", "content": "pwned"},
        )
        for path in ("../" + victim + "/secret.txt", f"../../projects/{victim}/secret.txt"):
            read = api.call(
                "read_text_file_from_project", owner.api_key, {"project_id": mine, "path": path}
            )
            assert "top secret" not in str(read.body)
    assert (host_home / "secret.txt").read_text() == "top secret"
    assert (
        api.call(
            "read_text_file_from_project",
            victim_owner.api_key,
            {"project_id": victim, "path": "secret.txt"},
        )["content"]
        == "top secret"
    )


def test_write_bad_input(api: ApiClient, project: str, owner: User) -> None:
    reply = api.call(
        "write_text_file_to_project", owner.api_key, {"project_id": project, "path": "x"}
    )
    assert "property 'content' must be specified" in reply["error"]
    reply = api.call(
        "write_text_file_to_project",
        owner.api_key,
        {"project_id": project, "path": "x", "content": 5},
    )
    assert reply.status == 400


def test_disk_quota(api: ApiClient, owner: User, server: Server, db: Database) -> None:
    project_id = _create(api, owner)
    db.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(settings={"disk_quota": -2990})
    )  # negative contributions are ignored
    big = "x" * (1024 * 1024)
    server.cli("admin", "setting", "default_quota_disk_mb", "2")
    try:
        reply = api.call(
            "write_text_file_to_project",
            owner.api_key,
            {"project_id": project_id, "path": "a", "content": big},
        )
        assert reply.event == "file_written_to_project", reply.body
        reply = api.call(
            "write_text_file_to_project",
            owner.api_key,
            {"project_id": project_id, "path": "b", "content": big * 2},
        )
        assert reply.event == "error"
        assert reply["error"].startswith("disk quota exceeded")
    finally:
        server.cli("admin", "setting", "default_quota_disk_mb", "--reset")


# --- lifecycle -----------------------------------------------------------------------------


def _state(db: Database, project_id: str) -> str:
    return str(
        db.execute(select(projects.c.run_state).where(projects.c.project_id == project_id))[
            0
        ].run_state
    )


def _wait_state(db: Database, project_id: str, state: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _state(db, project_id) != state and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _state(db, project_id) == state


def test_exec_starts_a_stopped_project(
    api: ApiClient, project: str, owner: User, db: Database
) -> None:
    assert _state(db, project) == "opened"
    assert _exec(api, owner.api_key, project, "true").event == "project_exec_output"
    assert _state(db, project) == "running"


def _state_files(server: Server, project_id: str) -> list[Path]:
    # os.walk passes over a folder that goes away while it walks (the hub cleaning up after
    # a project), where Path.glob raises.
    return [
        Path(folder, "state.json")
        for folder, _, files in os.walk(server.env["CALCHUB_RUNTIME_ROOT"])
        if Path(folder).name == project_id and "state.json" in files
    ]


def _sandbox_of(server: Server, project_id: str) -> tuple[int, int]:
    """The running project's recorded process and uid, from its state.json."""
    found = _state_files(server, project_id)
    assert len(found) == 1, found
    state = json.loads(found[0].read_text())
    return int(state["pid"]), int(state["uid"])


def _children_of(parent: int) -> list[tuple[int, str, int, str]]:
    """(pid, state, uid, command name) of each child of `parent`."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, KeyError):
                status = (entry / "status").read_text()
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                if int(fields["PPid"]) == parent:
                    uid = int(fields["Uid"].split()[0])
                    name = fields["Name"].strip()
                    children.append((int(entry.name), fields["State"].strip()[0], uid, name))
    return children


def _no_unreaped_child(hub: int, uid: int) -> None:
    deadline = time.monotonic() + 10
    while zombies := [c for c in _children_of(hub) if c[1] == "Z" and c[2] == uid]:
        assert time.monotonic() < deadline, f"the hub left them unreaped: {zombies}"
        time.sleep(0.1)


def test_the_hub_is_its_sandboxes_parent_and_reaps_them(
    api: ApiClient, project: str, owner: User, db: Database, server: Server
) -> None:
    """Once a project runs, bubblewrap's monitor has gone: the sandbox's first process is the
    hub's child, and whichever way the project ends (stop, a crash, the idle timeout), the
    hub reaps it."""
    assert server.process is not None
    hub = server.process.pid
    for end in ("stop", "crash", "idle"):
        assert _exec(api, owner.api_key, project, "true").event == "project_exec_output"
        pid, uid = _sandbox_of(server, project)
        assert (pid, "python3") in [(c[0], c[3]) for c in _children_of(hub)]
        assert not [c for c in _children_of(hub) if c[2] == uid and c[3] == "bwrap"]
        if end == "stop":
            status, answer = v2(server, owner.api_key, "projects/stop", {"project_id": project})
            assert status == 200 and answer == {"status": "ok"}, answer
        elif end == "crash":
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10  # the hub's exit watcher cleans up after it
            while _state_files(server, project):
                assert time.monotonic() < deadline, "the hub did not notice the crash"
                time.sleep(0.1)
        else:
            server.cli("admin", "setting", "default_quota_idle_timeout_s", "2")
            try:
                _wait_state(db, project, "opened", timeout=30)
            finally:
                server.cli("admin", "setting", "default_quota_idle_timeout_s", "--reset")
        _no_unreaped_child(hub, uid)


def test_action_requests(api: ApiClient, project: str, owner: User, db: Database) -> None:
    _exec(api, owner.api_key, project, "true")
    for action, state in (("stop", "opened"), ("start", "running"), ("restart", "running")):
        db.execute(
            update(projects)
            .where(projects.c.project_id == project)
            .values(action_request={"action": action}, action_state="pending")
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = db.execute(select(projects).where(projects.c.project_id == project))[0]
            if row.action_state == "done":
                break
            time.sleep(0.2)
        assert row.action_state == "done"
        assert row.action_request["finished"] and "err" not in row.action_request
        _wait_state(db, project, state)


def test_idle_projects_are_stopped(
    api: ApiClient, project: str, owner: User, db: Database, server: Server
) -> None:
    _exec(api, owner.api_key, project, "true")
    assert _state(db, project) == "running"
    server.cli("admin", "setting", "default_quota_idle_timeout_s", "2")
    try:
        _wait_state(db, project, "opened", timeout=30)
    finally:
        server.cli("admin", "setting", "default_quota_idle_timeout_s", "--reset")
    # and it starts again on demand
    assert _exec(api, owner.api_key, project, "echo", args=["back"])["stdout"] == "back\n"


def test_network_needs_quota_and_operator_consent(
    api: ApiClient, owner: User, db: Database, server: Server
) -> None:
    project_id = _create(api, owner)
    db.execute(
        update(projects).where(projects.c.project_id == project_id).values(settings={"network": 1})
    )
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\""
    # Whether the project has a route out (its namespace is connected by pasta).
    route = "awk '$2 == \"00000000\" {found = 1} END {exit !found}' /proc/net/route"
    try:
        # The quota grants network, but the site has not allowed it: no route out.
        reply = _exec(api, owner.api_key, project_id, route, timeout=5, err_on_exit=False)
        assert reply["exit_code"] != 0
        server.cli("admin", "setting", "project_network", "nat")
        db.execute(
            update(projects)
            .where(projects.c.project_id == project_id)
            .values(action_request={"action": "restart"}, action_state="pending")
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = db.execute(
                select(projects.c.action_state).where(projects.c.project_id == project_id)
            )[0].action_state
            if state == "done":
                break
            time.sleep(0.2)
        reply = _exec(api, owner.api_key, project_id, route, timeout=5, err_on_exit=False)
        assert reply["exit_code"] == 0, reply.body
        # Networked, it still never reaches the host's loopback.
        reply = _exec(api, owner.api_key, project_id, probe, timeout=5, err_on_exit=False)
        assert reply["exit_code"] != 0, reply.body
        assert "ConnectionRefusedError" in reply["stderr"], reply.body
    finally:
        server.cli("admin", "setting", "project_network", "--reset")
        listener.close()
