"""`file_use` and `file_use_times` over real HTTP (spec §3.10, §3.11)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from calchub.db.tables import accounts, file_access_log, file_use
from calchub.db.types import utcnow
from tests.api.queries import err, ok, q
from tests.api.sync_documents import (
    Team,
    add_patch,
    add_syncstring,
    new_project,
    project_row,
    sha1,
    team,
)
from tests.harness import ApiClient, Database

__all__ = ["team"]

ADMIN_ONLY = "FATAL: user must be an admin"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _use_row(db: Database, project_id: str, path: str) -> Any:
    rows = db.execute(select(file_use).where(file_use.c.id == sha1(project_id + path)))
    return rows[0] if rows else None


def _accesses(db: Database, project_id: str, account_id: str, path: str) -> list[Any]:
    return db.execute(
        select(file_access_log.c.time).where(
            file_access_log.c.project_id == project_id,
            file_access_log.c.account_id == account_id,
            file_access_log.c.filename == path,
        )
    )


# --- file_use -------------------------------------------------------------------------------


def test_file_use_merges_users(api: ApiClient, db: Database, team: Team) -> None:
    pid, owner, collab = team.project_id, team.owner, team.collab
    edited = utcnow() - timedelta(hours=1)
    first = {
        "project_id": pid,
        "path": "a.md",
        "users": {owner.account_id: {"edit": _iso(edited)}},
        "last_edited": _iso(edited),
    }
    assert ok(q(api, owner.api_key, {"file_use": first})) == {}
    # The CoCalc test: {A:{read}} after {A:{edit}} gives {A:{edit, read}}.
    read = {"project_id": pid, "path": "a.md", "users": {owner.account_id: {"read": 1600000000000}}}
    assert ok(q(api, owner.api_key, {"file_use": read})) == {}
    seen = {"project_id": pid, "path": "a.md", "users": {collab.account_id: {"seen": "{now}"}}}
    assert ok(q(api, collab.api_key, {"file_use": seen})) == {}
    row = _use_row(db, pid, "a.md")
    assert row.project_id == pid and row.path == "a.md"
    assert row.users[owner.account_id] == {"edit": _iso(edited), "read": 1600000000000}
    # `{now}` is stored as its ISO text, as CoCalc stores dates inside JSON.
    assert row.users[collab.account_id]["seen"].endswith("Z")
    got = ok(
        q(
            api,
            collab.api_key,
            {
                "file_use": [
                    {
                        "id": None,
                        "project_id": pid,
                        "path": None,
                        "users": None,
                        "last_edited": None,
                    }
                ]
            },
        )
    )["file_use"]
    assert len(got) == 1
    entry = got[0]
    assert entry["id"] == sha1(pid + "a.md") and entry["last_edited"] == _iso(edited)
    # Dates inside users come out in the wire's form; numbers stay numbers.
    assert entry["users"][owner.account_id] == {"edit": _iso(edited), "read": 1600000000000}
    stamp = entry["users"][collab.account_id]["seen"]
    assert stamp.endswith("Z") and len(stamp) == 24
    # A client-sent id is replaced by sha1(project_id + path).
    forged = read | {"id": "0" * 40, "path": "b.md"}
    assert ok(q(api, owner.api_key, {"file_use": forged})) == {}
    assert db.execute(select(file_use).where(file_use.c.id == "0" * 40)) == []
    assert _use_row(db, pid, "b.md") is not None


def test_file_use_window_and_order(api: ApiClient, db: Database, team: Team) -> None:
    pid, key = team.project_id, team.owner.api_key
    now = utcnow()
    for path, age in (
        ("old.md", timedelta(days=30)),
        ("new.md", timedelta(hours=1)),
        ("mid.md", timedelta(days=2)),
    ):
        row = {"project_id": pid, "path": path, "last_edited": _iso(now - age)}
        assert ok(q(api, key, {"file_use": row})) == {}
    listing = {"file_use": [{"project_id": None, "path": None, "last_edited": None}]}
    got = ok(q(api, key, listing))["file_use"]
    # Only the last 21 days, newest first (the default options).
    assert [r["path"] for r in got if r["project_id"] == pid] == ["new.md", "mid.md"]
    one = ok(q(api, key, {"file_use": {"project_id": pid, "path": None}}))
    assert one == {"file_use": {"project_id": pid, "path": "new.md"}}
    assert [r["path"] for r in ok(q(api, key, listing, options=[{"limit": 1}]))["file_use"]] == [
        "new.md"
    ]


def test_recent_use_marks_the_project_active(api: ApiClient, db: Database, team: Team) -> None:
    pid, collab = team.project_id, team.collab
    db.execute(
        update(accounts).where(accounts.c.account_id == collab.account_id).values(last_active=None)
    )
    before = project_row(db, pid)
    # An old open, or someone else's recent edit, touch nothing.
    old = {collab.account_id: {"open": _iso(utcnow() - timedelta(minutes=10))}}
    other = {team.owner.account_id: {"edit": "{now}"}}
    for users in (old, other, {collab.account_id: {"read": "{now}", "seen": "{now}"}}):
        assert (
            ok(
                q(
                    api,
                    collab.api_key,
                    {"file_use": {"project_id": pid, "path": "x.py", "users": users}},
                )
            )
            == {}
        )
    assert collab.account_id not in (project_row(db, pid).last_active or {})
    assert _accesses(db, pid, collab.account_id, "x.py") == []
    # The caller's own edit within 3 minutes (ms since the epoch here) does.
    recent = {collab.account_id: {"edit": _ms(utcnow() - timedelta(seconds=20))}}
    assert (
        ok(
            q(
                api,
                collab.api_key,
                {"file_use": {"project_id": pid, "path": "x.py", "users": recent}},
            )
        )
        == {}
    )
    after = project_row(db, pid)
    assert collab.account_id in after.last_active
    assert after.last_edited > before.last_edited
    assert after.last_activity is not None
    assert len(_accesses(db, pid, collab.account_id, "x.py")) == 1
    account = db.execute(
        select(accounts.c.last_active).where(accounts.c.account_id == collab.account_id)
    )
    assert account[0].last_active is not None
    # Throttled: another chat a moment later adds no second log row.
    chat = {collab.account_id: {"chat": "{now}"}}
    assert (
        ok(q(api, collab.api_key, {"file_use": {"project_id": pid, "path": "x.py", "users": chat}}))
        == {}
    )
    assert len(_accesses(db, pid, collab.account_id, "x.py")) == 1
    # An ISO `open` counts too (another file, so the access log shows it).
    opened = {collab.account_id: {"open": _iso(utcnow())}}
    assert (
        ok(
            q(
                api,
                collab.api_key,
                {"file_use": {"project_id": pid, "path": "y.py", "users": opened}},
            )
        )
        == {}
    )
    assert len(_accesses(db, pid, collab.account_id, "y.py")) == 1


def test_file_use_errors_and_access(
    api: ApiClient, db: Database, admin_key: str, team: Team
) -> None:
    pid = team.project_id
    row = {"project_id": pid, "path": "e.md", "last_edited": "{now}"}
    assert err(q(api, team.owner.api_key, {"file_use": {"project_id": pid, "users": {}}})) == (
        "FATAL: must specify file_use.path"
    )
    assert err(q(api, team.owner.api_key, {"file_use": {"path": "e.md", "users": {}}})) == (
        "FATAL: must specify file_use.project_id"
    )
    assert err(q(api, team.owner.api_key, {"file_use": row | {"users": []}})) == (
        "FATAL: error setting 'users' -- Error: file_use.users must be an object"
    )
    assert err(q(api, team.owner.api_key, {"file_use": row | {"foo": 1}})) == (
        "FATAL: changing file_use.foo not allowed"
    )
    assert err(q(api, team.owner.api_key, {"file_use": row | {"project_id": "nope"}})) == (
        "FATAL: unknown project_id 'nope'"
    )
    assert err(q(api, team.owner.api_key, {"file_use": row}, options=[{"delete": True}])) == (
        "FATAL: delete from file_use not allowed"
    )
    # Set: writers and admins; viewers and strangers are refused.
    for role in ("owner", "collab", "admin"):
        users = {"users": {role: {"read": "{now}"}}}
        assert ok(q(api, team.key(role, admin_key), {"file_use": row | users})) == {}
    for role in ("viewer", "stranger"):
        users = {"users": {role: {"read": "{now}"}}}
        assert err(q(api, team.key(role, admin_key), {"file_use": row | users})) == ADMIN_ONLY
    assert set(_use_row(db, pid, "e.md").users) == {"owner", "collab", "admin"}
    # Get: every member (viewers included, as for projects) and admins given the id.
    get = {"file_use": [{"project_id": pid, "path": None, "users": None}]}
    for role in ("owner", "collab", "viewer", "admin"):
        got = ok(q(api, team.key(role, admin_key), get))["file_use"]
        assert [r["path"] for r in got] == ["e.md"], role
    assert err(q(api, team.stranger.api_key, get)) == (
        "FATAL: you do not have read access to this project"
    )
    everything = {"file_use": [{"project_id": None, "path": None, "users": None}]}
    assert all(
        r["project_id"] != pid for r in ok(q(api, team.stranger.api_key, everything))["file_use"]
    )


# --- file_use_times -------------------------------------------------------------------------


def test_file_use_times(api: ApiClient, db: Database, admin_key: str, team: Team) -> None:
    pid, owner, collab = team.project_id, team.owner, team.collab
    path = "paper.tex"
    base = datetime(2021, 11, 1, 12, 0, tzinfo=UTC)
    for minutes in (0, 5, 10):
        db.execute(
            insert(file_access_log).values(
                project_id=pid,
                account_id=collab.account_id,
                filename=path,
                time=base + timedelta(minutes=minutes),
            )
        )
    db.execute(
        insert(file_access_log).values(
            project_id=pid, account_id=owner.account_id, filename=path, time=base
        )
    )
    string_id = add_syncstring(db, pid, path, [owner.account_id, collab.account_id])
    for seconds, author in ((1, 0), (2, 1), (3, 0)):
        add_patch(db, string_id, base + timedelta(seconds=seconds), author, "[]")
    query = {
        "file_use_times": {
            "project_id": pid,
            "account_id": collab.account_id,
            "path": path,
            "access_times": None,
            "edit_times": None,
        }
    }
    got = ok(q(api, owner.api_key, query))["file_use_times"]
    assert got == {
        "project_id": pid,
        "account_id": collab.account_id,
        "path": path,
        # Newest first, ms since the epoch; edits of every author.
        "access_times": [_ms(base + timedelta(minutes=m)) for m in (10, 5, 0)],
        "edit_times": [_ms(base + timedelta(seconds=s)) for s in (3, 2, 1)],
    }
    # Only options[0].limit counts.
    limited = ok(q(api, owner.api_key, query, options=[{"limit": 2}]))["file_use_times"]
    assert limited["access_times"] == got["access_times"][:2]
    assert limited["edit_times"] == got["edit_times"][:2]
    only_edits = {
        "file_use_times": {k: v for k, v in query["file_use_times"].items() if k != "access_times"}
    }
    assert "access_times" not in ok(q(api, collab.api_key, only_edits))["file_use_times"]
    array = ok(q(api, admin_key, {"file_use_times": [query["file_use_times"]]}))["file_use_times"]
    assert array == [got]
    for role in ("viewer", "stranger"):
        assert err(q(api, team.key(role, team.owner.api_key), query)) == (
            "Error: user does not have read access to the given project"
        )
    nobody = {"file_use_times": query["file_use_times"] | {"project_id": str(uuid.uuid4())}}
    assert err(q(api, owner.api_key, nobody)) == (
        "Error: user does not have read access to the given project"
    )


@pytest.mark.parametrize("missing", ["project_id", "account_id", "path"])
def test_file_use_times_needs_all_three(api: ApiClient, team: Team, missing: str) -> None:
    query = {
        "project_id": team.project_id,
        "account_id": team.owner.account_id,
        "path": "p",
        "edit_times": None,
    }
    query[missing] = None
    assert err(q(api, team.owner.api_key, {"file_use_times": query})) == (
        "project_id, account_id, and path must all be specified"
    )


def test_file_use_times_bad_input(api: ApiClient, team: Team) -> None:
    key, pid = team.owner.api_key, team.project_id
    base = {
        "project_id": pid,
        "account_id": team.owner.account_id,
        "path": "p",
        "access_times": None,
    }
    assert err(q(api, key, {"file_use_times": base | {"account_id": "me"}})) == (
        'error: invalid input syntax for type uuid: "me"'
    )
    assert err(q(api, key, {"file_use_times": base | {"project_id": "abc"}})) == (
        "Error: user does not have read access to the given project"
    )
    assert err(q(api, key, {"file_use_times": base | {"other": None}})) == (
        "FATAL: user get query not allowed for file_use_times.other"
    )
    assert err(q(api, key, {"file_use_times": base}, options=[{"limit": "x"}])) == (
        "ERROR -- opts.limit = 'x' is not an integer"
    )
    assert err(q(api, key, {"file_use_times": base | {"access_times": [1]}})) == (
        "FATAL: user set queries not allowed for table 'file_use_times'"
    )
    # Paths are just names here.
    weird = base | {"path": "../../etc/passwd"}
    assert ok(q(api, key, {"file_use_times": weird}))["file_use_times"]["access_times"] == []
    other = new_project(api, team.stranger)
    assert err(q(api, key, {"file_use_times": base | {"project_id": other}})) == (
        "Error: user does not have read access to the given project"
    )
