"""`query` over real HTTP for the tables CoCalc's projects write themselves: `listings`
(answered from the runtime), `project_status` (the runtime's status), `project_info` and
`usage_info` (no rows), with members, admins and strangers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from calchub.db.tables import projects
from tests.api.project_files import new_id, sh, write
from tests.api.queries import create, err, make_team, ok, q
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]
NO_READ = "FATAL: you do not have read access to this project"
PROJECT_CLIENT_ONLY = "FATAL: project_id must be specified"


@pytest.fixture
def team(api: ApiClient, db: Database, make_user: MakeUser) -> dict[str, Any]:
    return make_team(api, db, make_user)


def run_state(db: Database, project_id: str) -> str:
    rows = db.execute(select(projects.c.run_state).where(projects.c.project_id == project_id))
    return str(rows[0].run_state)


def listing_query(project_id: Any, path: Any, **fields: Any) -> dict[str, Any]:
    return {"listings": {"project_id": project_id, "path": path, "listing": None, **fields}}


# --- listings ---------------------------------------------------------------------------------


def test_listing_starts_the_project_and_lists_everything(
    api: ApiClient, db: Database, team: dict[str, Any]
) -> None:
    owner, pid = team["owner"], team["project_id"]
    assert run_state(db, pid) == "opened"
    before = datetime.now(UTC)
    got = ok(q(api, owner.api_key, listing_query(pid, "", time=None, error=None)))
    assert run_state(db, pid) == "running"
    row = got["listings"]
    assert row["project_id"] == pid and row["path"] == "" and row["error"] is None
    assert isinstance(row["listing"], list)
    listed_at = datetime.fromisoformat(row["time"].replace("Z", "+00:00"))
    assert before.replace(microsecond=0) <= listed_at <= datetime.now(UTC)
    write(api, owner.api_key, pid, "d/b.txt", "12345")
    write(api, owner.api_key, pid, "d/.hidden", "x")
    sh(api, owner.api_key, pid, "mkdir d/sub && touch -d @1600000000.25 d/b.txt d/sub d/.hidden")
    got = ok(q(api, owner.api_key, listing_query(pid, "d")))
    # Hidden files included, as a project writes them; clients filter.
    assert got == {
        "listings": {
            "project_id": pid,
            "path": "d",
            "listing": [
                {"name": ".hidden", "size": 1, "mtime": 1600000000.25},
                {"name": "b.txt", "size": 5, "mtime": 1600000000.25},
                {"name": "sub", "isdir": True, "mtime": 1600000000.25},
            ],
        }
    }


def test_members_and_admins_read_strangers_do_not(
    api: ApiClient, team: dict[str, Any], admin_key: str
) -> None:
    pid = team["project_id"]
    write(api, team["owner"].api_key, pid, "shared/f.txt", "f")
    for key in (team["collab"].api_key, team["viewer"].api_key, admin_key):
        got = ok(q(api, key, {"listings": [listing_query(pid, "shared")["listings"]]}))
        (row,) = got["listings"]
        assert (row["project_id"], row["path"]) == (pid, "shared")
        (entry,) = row["listing"]
        assert (entry["name"], entry["size"]) == ("f.txt", 1)
        assert abs(entry["mtime"] - time.time()) < 600
    stranger = team["stranger"].api_key
    assert err(q(api, stranger, listing_query(pid, "shared"))) == NO_READ
    assert err(q(api, stranger, listing_query(new_id(), ""))) == NO_READ
    assert err(q(api, stranger, listing_query("not-a-uuid", ""))) == (
        "invalid project_id -- not-a-uuid"
    )
    # An admin acting as the stranger is refused like the stranger.
    as_stranger = [{"account_id": team["stranger"].account_id}]
    assert err(q(api, admin_key, listing_query(pid, "shared"), options=as_stranger)) == NO_READ


def test_no_rows_without_project_and_path(
    api: ApiClient, db: Database, team: dict[str, Any]
) -> None:
    key, pid = team["owner"].api_key, team["project_id"]
    for query in (
        {"project_id": None, "path": None, "listing": None},
        {"project_id": pid, "listing": None},
        {"project_id": pid, "path": None, "listing": None},
        {"path": "", "listing": None},
        {"project_id": pid, "path": 7, "listing": None},
        {"project_id": pid, "path": {">=": ""}, "listing": None},
    ):
        assert ok(q(api, key, {"listings": [query]})) == {"listings": []}, query
        assert ok(q(api, key, {"listings": query})) == {}, query
    assert ok(q(api, key, listing_query(pid, ""), options=[{"limit": 0}])) == {}
    # Nothing was listed, so nothing was started.
    assert run_state(db, pid) == "opened"
    # Other values must match the one row made for the project and path.
    mismatch = listing_query(pid, "", error="x")["listings"]
    assert ok(q(api, key, {"listings": [mismatch]})) == {"listings": []}
    match = listing_query(pid, "", error=None)["listings"]
    assert len(ok(q(api, key, {"listings": [match]}))["listings"]) == 1


def test_file_system_errors_go_into_the_row(api: ApiClient, team: dict[str, Any]) -> None:
    key, pid = team["owner"].api_key, team["project_id"]
    write(api, key, pid, "file.txt", "not a folder")
    home = f"/projects/{pid}"
    for path, error in (
        ("nope", f"ENOENT: no such file or directory, scandir '{home}/nope'"),
        ("file.txt", f"ENOTDIR: not a directory, scandir '{home}/file.txt'"),
    ):
        got = ok(q(api, key, listing_query(pid, path, error=None)))
        assert got == {
            "listings": {"project_id": pid, "path": path, "listing": None, "error": error}
        }
        # The array form drops the null listing.
        got = ok(q(api, key, {"listings": [listing_query(pid, path, error=None)["listings"]]}))
        assert got == {"listings": [{"project_id": pid, "path": path, "error": error}]}


def test_listing_options_and_fields(api: ApiClient, team: dict[str, Any]) -> None:
    key, pid = team["owner"].api_key, team["project_id"]
    assert err(q(api, key, listing_query(pid, ""), options=[{"offset": 1}])) == (
        "unknown option 'offset'"
    )
    assert err(q(api, key, listing_query(pid, ""), options=[{"limit": -1}])) == (
        "ERROR -- opts.limit = '-1' is not an integer"
    )
    assert err(q(api, key, listing_query(pid, ""), options=[{"order_by": "password"}])) == (
        "ERROR -- invalid order_by='password'"
    )
    assert err(q(api, key, {"listings": {"project_id": pid, "path": "", "owner": None}})) == (
        "FATAL: user get query not allowed for listings.owner"
    )
    got = ok(q(api, key, listing_query(pid, "", missing=None, interest=None, deleted=None)))[
        "listings"
    ]
    assert got["missing"] is None and got["interest"] is None and got["deleted"] is None
    with_changes = q(api, key, {"listings": [listing_query(pid, "")["listings"]]}, changes=True)
    assert err(with_changes) == "changefeeds are not supported for querying this table"


def test_listing_sets_are_for_projects_only(
    api: ApiClient, team: dict[str, Any], admin_key: str
) -> None:
    pid = team["project_id"]
    for key in (team["owner"].api_key, admin_key, team["stranger"].api_key):
        for value in (
            {"project_id": pid, "path": "", "listing": []},
            {"path": "x", "error": "e"},
            {"project_id": pid, "path": "", "interest": "{now}"},
        ):
            assert err(q(api, key, {"listings": value})) == PROJECT_CLIENT_ONLY, value
        deleting = [{"delete": True}]
        reply = q(api, key, {"listings": {"project_id": pid, "path": ""}}, options=deleting)
        assert err(reply) == PROJECT_CLIENT_ONLY


# --- project_status, project_info, usage_info --------------------------------------------------


def test_project_status_from_the_runtime(
    api: ApiClient, team: dict[str, Any], admin_key: str
) -> None:
    pid = team["project_id"]
    query = {"project_status": {"project_id": pid, "status": None}}
    stopped = ok(q(api, team["owner"].api_key, query))
    assert stopped == {"project_status": {"project_id": pid, "status": None}}
    ran = api.call("project_exec", team["owner"].api_key, {"project_id": pid, "command": "true"})
    assert ran.event == "project_exec_output", ran.body
    for key in (team["owner"].api_key, team["collab"].api_key, team["viewer"].api_key, admin_key):
        status = ok(q(api, key, query))["project_status"]["status"]
        assert status["state"] == "running" and isinstance(status["project.pid"], int)
        assert status["start_ts"] <= time.time() * 1000 and status["memory"]["rss"] >= 0
    assert err(q(api, team["stranger"].api_key, query)) == NO_READ
    malformed = {"project_status": {"project_id": "x", "status": None}}
    assert err(q(api, team["stranger"].api_key, malformed)) == "invalid project_id -- x"


def test_project_status_without_project_id(
    api: ApiClient, team: dict[str, Any], make_user: MakeUser
) -> None:
    owner = team["owner"]
    other = create(api, owner, "second")
    got = ok(q(api, owner.api_key, {"project_status": [{"project_id": None, "status": None}]}))
    assert sorted(row["project_id"] for row in got["project_status"]) == sorted(
        [team["project_id"], other]
    )
    # Neither runs: the array form drops the null status.
    assert all(set(row) == {"project_id"} for row in got["project_status"])
    loner = make_user()
    assert ok(
        q(api, loner.api_key, {"project_status": [{"project_id": None, "status": None}]})
    ) == {"project_status": []}
    assert ok(q(api, team["stranger"].api_key, {"project_status": {"status": None}})) == {}


@pytest.mark.parametrize("table", ["project_info", "usage_info"])
def test_info_tables_have_no_rows(
    api: ApiClient, team: dict[str, Any], admin_key: str, table: str
) -> None:
    pid = team["project_id"]
    field = "info" if table == "project_info" else "usage"
    for key in (team["owner"].api_key, team["collab"].api_key, admin_key):
        assert ok(q(api, key, {table: {"project_id": pid, field: None}})) == {}
        assert ok(q(api, key, {table: [{"project_id": pid, field: None}]})) == {table: []}
        assert ok(q(api, key, {table: [{"project_id": None, field: None}]})) == {table: []}
    stranger = team["stranger"].api_key
    assert err(q(api, stranger, {table: {"project_id": pid, field: None}})) == NO_READ
    assert err(q(api, team["owner"].api_key, {table: {"project_id": pid, "nope": None}})) == (
        f"FATAL: user get query not allowed for {table}.nope"
    )


@pytest.mark.parametrize(
    ("table", "value"),
    [
        ("project_status", {"status": {"state": "running"}}),
        ("project_info", {"info": {"processes": {}}}),
        ("usage_info", {"path": "a.ipynb", "usage": {"mem": 1}}),
    ],
)
def test_ephemeral_sets_are_for_projects_only(
    api: ApiClient, team: dict[str, Any], admin_key: str, table: str, value: dict[str, Any]
) -> None:
    for key in (team["owner"].api_key, admin_key, team["stranger"].api_key):
        reply = q(api, key, {table: {"project_id": team["project_id"], **value}})
        assert err(reply) == PROJECT_CLIENT_ONLY
