"""The realtime-sync tables of `query` over real HTTP (spec §3.17): syncstrings,
recent_syncstrings_in_project, syncstrings_delete, patches, cursors, eval_inputs,
eval_outputs and ipywidgets, their error strings, and who may read or write them."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from calchub.db.tables import (
    cursors,
    eval_inputs,
    eval_outputs,
    file_access_log,
    ipywidgets,
    patches,
    projects,
    syncstrings,
)
from calchub.db.types import utcnow
from tests.api.queries import err, ok, q
from tests.api.sync_documents import (
    MakeUser,
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


def _syncstring(db: Database, string_id: str) -> Any:
    rows = db.execute(select(syncstrings).where(syncstrings.c.string_id == string_id))
    return rows[0] if rows else None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


# --- syncstrings ----------------------------------------------------------------------------


def test_syncstring_set_then_get(api: ApiClient, db: Database, team: Team) -> None:
    pid, owner = team.project_id, team.owner
    string_id = sha1(pid + "notes/a.txt")
    query = {
        "syncstrings": {
            "project_id": pid.upper(),
            "path": "notes/a.txt",
            # Ignored: the id is always sha1(project_id + path).
            "string_id": "f" * 40,
            "users": [owner.account_id.upper()],
            "doctype": '{"type":"string"}',
            "settings": {"spell": "en"},
            "init": {"time": "{now}", "error": ""},
            "read_only": False,
        }
    }
    assert ok(q(api, owner.api_key, query)) == {}
    row = _syncstring(db, string_id)
    assert row is not None and row.project_id == pid and row.path == "notes/a.txt"
    assert row.users == [owner.account_id]
    assert _syncstring(db, "f" * 40) is None
    # Maps merge; other fields are replaced.
    more = {"project_id": pid, "path": "notes/a.txt", "settings": {"theme": "dark"}}
    assert ok(q(api, team.collab.api_key, {"syncstrings": more | {"deleted": True}})) == {}
    got = ok(
        q(
            api,
            team.collab.api_key,
            {
                "syncstrings": {
                    "project_id": pid,
                    "path": "notes/a.txt",
                    "users": None,
                    "settings": None,
                    "snapshot_interval": None,
                    "init": None,
                    "deleted": None,
                    "doctype": None,
                    "archived": None,
                }
            },
        )
    )["syncstrings"]
    assert got["string_id"] == string_id  # computed, so also returned
    assert got["users"] == [owner.account_id]
    assert got["settings"] == {"spell": "en", "theme": "dark"}
    assert got["snapshot_interval"] == 300  # the default
    assert got["deleted"] is True and got["doctype"] == '{"type":"string"}'
    assert got["archived"] is None  # calchub never archives patches
    assert got["init"]["error"] == ""
    stamp = got["init"]["time"]
    assert stamp.endswith("Z") and len(stamp) == len("2021-11-15T02:25:12.123Z")
    # Another path of the same project is another document: nothing there yet.
    assert (
        ok(q(api, owner.api_key, {"syncstrings": {"project_id": pid, "path": "b", "users": None}}))
        == {}
    )


def test_syncstring_errors(api: ApiClient, db: Database, team: Team) -> None:
    key, pid = team.owner.api_key, team.project_id
    get = {"path": "a", "users": None}
    assert err(q(api, key, {"syncstrings": {"project_id": "abc"} | get})) == (
        "FATAL: project_id (='abc') must be a valid uuid"
    )
    assert err(q(api, key, {"syncstrings": get})) == (
        "FATAL: project_id (='undefined') must be a valid uuid"
    )
    assert err(q(api, key, {"syncstrings": {"project_id": 5, "path": "a", "deleted": True}})) == (
        "FATAL: project_id (='5') must be a valid uuid"
    )
    missing = str(uuid.uuid4())
    assert err(q(api, key, {"syncstrings": {"project_id": missing} | get})) == (
        f"FATAL: unknown project_id '{missing}'"
    )
    assert err(q(api, key, {"syncstrings": {"project_id": pid, "path": "a", "foo": None}})) == (
        "FATAL: user get query not allowed for syncstrings.foo"
    )
    assert err(q(api, key, {"syncstrings": {"project_id": pid, "path": "a", "archived": "x"}})) == (
        "FATAL: changing syncstrings.archived not allowed"
    )
    bad_users = {"project_id": pid, "path": "a", "users": ["nope"]}
    assert err(q(api, key, {"syncstrings": bad_users})) == (
        'error: invalid input syntax for type uuid: "nope"'
    )
    assert err(q(api, key, {"syncstrings": bad_users | {"users": "x"}})) == (
        'error: malformed array literal: "x"'
    )
    assert err(q(api, key, {"syncstrings": {"project_id": pid, "path": "a", "read_only": 1}})) == (
        'error: invalid input syntax for type boolean: "1"'
    )
    assert err(q(api, key, {"syncstrings": {"project_id": pid, "path": "a", "save": 5}})) == (
        "FATAL: error setting 'save' -- Error: syncstrings.save must be an object"
    )
    odd_path = {"project_id": pid, "path": {"a": 1}, "deleted": True}
    assert err(q(api, key, {"syncstrings": odd_path})).startswith(
        "error: invalid input syntax for type text"
    )
    assert (
        err(
            q(
                api,
                key,
                {"syncstrings": {"project_id": pid, "path": "a"}},
                options=[{"delete": True}],
            )
        )
        == "FATAL: delete from syncstrings not allowed"
    )
    # Nothing was written by any of these.
    assert db.execute(select(syncstrings).where(syncstrings.c.project_id == pid)) == []


def test_syncstring_paths_are_data(api: ApiClient, db: Database, team: Team) -> None:
    """Traversal-looking and odd paths only name documents: nothing touches the filesystem."""
    key, pid = team.owner.api_key, team.project_id
    for path in ("../../etc/passwd", "/abs/path", "a/../../b", "", "名前 with spaces.md"):
        assert (
            ok(q(api, key, {"syncstrings": {"project_id": pid, "path": path, "deleted": False}}))
            == {}
        )
        row = _syncstring(db, sha1(pid + path))
        assert row is not None and row.path == path
        got = ok(q(api, key, {"syncstrings": {"project_id": pid, "path": path, "deleted": None}}))
        assert got == {
            "syncstrings": {
                "project_id": pid,
                "path": path,
                "deleted": False,
                "string_id": sha1(pid + path),
            }
        }


def _wait_action_done(db: Database, project_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if project_row(db, project_id).action_state in (None, "done"):
            return
        time.sleep(0.1)
    raise AssertionError("the scheduler did not finish")


def _asked_long_ago(db: Database, project_id: str, ago: timedelta, run_state: str) -> str:
    """Make the project's last start request `ago` old (and finished); returns its time."""
    _wait_action_done(db, project_id)
    asked = (utcnow() - ago).isoformat()
    db.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(
            run_state=run_state,
            action_state="done",
            action_request={"action": "start", "time": asked},
        )
    )
    return asked


def _asked_again(db: Database, project_id: str, asked: str) -> bool:
    return project_row(db, project_id).action_request["time"] != asked


def test_syncstring_activity_starts_the_project(api: ApiClient, db: Database, team: Team) -> None:
    pid, key, path = team.project_id, team.collab.api_key, "work.py"
    assert project_row(db, pid).run_state == "opened"
    assert project_row(db, pid).action_request is None
    # Caring about the document (a new last_active) asks for a start and logs the access.
    active = {"project_id": pid, "path": path, "last_active": "{now}"}
    assert ok(q(api, key, {"syncstrings": active})) == {}
    request = project_row(db, pid).action_request
    assert request["action"] == "start"
    assert datetime.fromisoformat(request["time"]) > utcnow() - timedelta(seconds=30)
    logged = db.execute(
        select(file_access_log.c.time).where(
            file_access_log.c.project_id == pid,
            file_access_log.c.account_id == team.collab.account_id,
            file_access_log.c.filename == path,
        )
    )
    assert len(logged) == 1
    # At most once per 30 s: a start asked for 10 s ago is not asked for again.
    asked = _asked_long_ago(db, pid, timedelta(seconds=10), "opened")
    requested = {"project_id": pid, "path": path, "save": {"state": "requested"}}
    assert ok(q(api, key, {"syncstrings": requested})) == {}
    assert not _asked_again(db, pid, asked)
    # A running (or starting) project is left alone.
    for state in ("running", "starting"):
        asked = _asked_long_ago(db, pid, timedelta(minutes=5), state)
        assert ok(q(api, key, {"syncstrings": requested})) == {}
        assert not _asked_again(db, pid, asked)
    # After 30 s a save request asks again.
    asked = _asked_long_ago(db, pid, timedelta(seconds=40), "opened")
    assert ok(q(api, key, {"syncstrings": requested})) == {}
    assert _asked_again(db, pid, asked)
    assert project_row(db, pid).action_request["action"] == "start"


def test_syncstring_quiet_sets_leave_the_project_alone(
    api: ApiClient, db: Database, team: Team
) -> None:
    pid, key, path = team.project_id, team.owner.api_key, "quiet.md"
    moment = _iso(utcnow() - timedelta(minutes=1))
    first = {"project_id": pid, "path": path, "last_active": moment}
    assert ok(q(api, key, {"syncstrings": first})) == {}
    asked = _asked_long_ago(db, pid, timedelta(minutes=5), "opened")
    # The same last_active again, a save that is not a request, other fields: no start.
    for change in (
        {"last_active": moment},
        {"save": {"state": "done", "hash": 12}},
        {"read_only": True, "snapshot_interval": 10},
    ):
        assert ok(q(api, key, {"syncstrings": {"project_id": pid, "path": path} | change})) == {}
        assert not _asked_again(db, pid, asked)
    row = _syncstring(db, sha1(pid + path))
    assert row.save == {"state": "done", "hash": 12}
    assert row.read_only is True and row.snapshot_interval == 10


# --- recent_syncstrings_in_project ------------------------------------------------------------


def test_recent_syncstrings_in_project(api: ApiClient, db: Database, team: Team) -> None:
    pid = team.project_id
    now = utcnow()
    fresh = add_syncstring(db, pid, "fresh.md", last_active=now - timedelta(minutes=5))
    add_syncstring(db, pid, "stale.md", last_active=now - timedelta(hours=3))
    add_syncstring(db, pid, "never.md")
    query = {
        "recent_syncstrings_in_project": [
            {
                "project_id": pid,
                "max_age_m": 60,
                "string_id": None,
                "path": None,
                "last_active": None,
                "deleted": None,
                "doctype": None,
            }
        ]
    }
    got = ok(q(api, team.collab.api_key, query))["recent_syncstrings_in_project"]
    # max_age_m is an input only; null fields are dropped in the array form.
    assert got == [
        {
            "project_id": pid,
            "string_id": fresh,
            "path": "fresh.md",
            "last_active": _iso(now - timedelta(minutes=5)),
        }
    ]
    row = query["recent_syncstrings_in_project"][0]
    wide = {"recent_syncstrings_in_project": [row | {"max_age_m": "600"}]}
    assert {
        r["path"] for r in ok(q(api, team.owner.api_key, wide))["recent_syncstrings_in_project"]
    } == {
        "fresh.md",
        "stale.md",
    }
    huge = {"recent_syncstrings_in_project": [row | {"max_age_m": 1e300}]}
    assert len(ok(q(api, team.owner.api_key, huge))["recent_syncstrings_in_project"]) == 2
    newest = ok(
        q(api, team.owner.api_key, wide, options=[{"order_by": "-last_active"}, {"limit": 1}])
    )
    assert [r["path"] for r in newest["recent_syncstrings_in_project"]] == ["fresh.md"]
    for bad, shown in (
        ({}, "undefined"),
        ({"max_age_m": "soon"}, "soon"),
        ({"max_age_m": -1}, "-1"),
    ):
        partial = {k: v for k, v in row.items() if k != "max_age_m"} | bad
        assert err(q(api, team.owner.api_key, {"recent_syncstrings_in_project": [partial]})) == (
            f"FATAL: max_age_m (='{shown}') must be a nonnegative number"
        )
    assert err(q(api, team.stranger.api_key, query)) == ADMIN_ONLY
    assert err(
        q(
            api,
            team.owner.api_key,
            {"recent_syncstrings_in_project": {"project_id": pid, "max_age_m": 5}},
        )
    ) == ("FATAL: user set queries not allowed for table 'recent_syncstrings_in_project'")


# --- syncstrings_delete -----------------------------------------------------------------------


def test_syncstrings_delete_is_admin_only(
    api: ApiClient, db: Database, admin_key: str, team: Team
) -> None:
    pid = team.project_id
    string_id = add_syncstring(db, pid, "gone.txt", [team.owner.account_id])
    add_patch(db, string_id, utcnow(), 0, "[]")
    query = {"syncstrings_delete": {"project_id": pid, "path": "gone.txt"}}
    assert err(q(api, team.owner.api_key, query)) == ADMIN_ONLY
    assert _syncstring(db, string_id) is not None
    assert err(q(api, admin_key, {"syncstrings_delete": {"project_id": "x", "path": "a"}})) == (
        "FATAL: project_id (='x') must be a valid uuid"
    )
    assert err(q(api, admin_key, {"syncstrings_delete": {"project_id": pid, "users": []}})) == (
        "FATAL: changing syncstrings_delete.users not allowed"
    )
    # Always a delete, without {delete: true}; the patches go with it.
    assert ok(q(api, admin_key, query)) == {}
    assert _syncstring(db, string_id) is None
    assert db.execute(select(patches).where(patches.c.string_id == string_id)) == []
    assert ok(q(api, admin_key, query)) == {}  # deleting nothing is fine
    assert err(q(api, admin_key, {"syncstrings_delete": {"project_id": pid, "path": None}})) == (
        "FATAL: get queries not allowed for table 'syncstrings_delete'"
    )


# --- patches ----------------------------------------------------------------------------------


def test_patches_set_and_get(api: ApiClient, db: Database, team: Team) -> None:
    pid, owner, collab = team.project_id, team.owner, team.collab
    string_id = add_syncstring(db, pid, "doc.txt", [owner.account_id, collab.account_id])
    t1 = utcnow().replace(microsecond=123000) - timedelta(minutes=2)
    t2 = t1 + timedelta(seconds=30)
    first = {
        "string_id": string_id,
        "time": _ms(t1),
        "user_id": 0,
        "patch": '[[[[1,"hi"]],0,0,0,2]]',
    }
    assert ok(q(api, owner.api_key, {"patches": first})) == {}
    second = {
        "string_id": string_id,
        "time": _iso(t2),
        "user_id": 1,
        "patch": "[]",
        "prev": _iso(t1),
        "sent": "{now}",
        "format": 1,
    }
    assert ok(q(api, collab.api_key, {"patches": second})) == {}
    query = {
        "patches": [
            {
                "string_id": string_id,
                "time": None,
                "user_id": None,
                "patch": None,
                "prev": None,
                "format": None,
                "snapshot": None,
            }
        ]
    }
    got = ok(q(api, collab.api_key, query, options=[{"order_by": "time"}]))["patches"]
    assert got == [
        {"string_id": string_id, "time": _iso(t1), "user_id": 0, "patch": first["patch"]},
        {
            "string_id": string_id,
            "time": _iso(t2),
            "user_id": 1,
            "patch": "[]",
            "prev": _iso(t1),
            "format": 1,
        },
    ]
    newest = ok(q(api, owner.api_key, query, options=[{"order_by": "-time"}, {"limit": 1}]))
    assert [p["time"] for p in newest["patches"]] == [_iso(t2)]
    since = {"patches": [{"string_id": string_id, "time": {">": _iso(t1)}, "user_id": None}]}
    assert ok(q(api, owner.api_key, since))["patches"] == [
        {"string_id": string_id, "time": _iso(t2), "user_id": 1}
    ]
    # Writing the same patch again, or adding its snapshot, is allowed.
    assert ok(q(api, owner.api_key, {"patches": first | {"snapshot": "hi"}})) == {}
    stored = db.execute(
        select(patches).where(patches.c.string_id == string_id, patches.c.user_id == 0)
    )
    assert stored[0].snapshot == "hi" and stored[0].patch == first["patch"]


def test_patch_rules(api: ApiClient, db: Database, team: Team) -> None:
    key, pid = team.owner.api_key, team.project_id
    string_id = add_syncstring(db, pid, "rules.txt", [team.owner.account_id])
    t = utcnow().replace(microsecond=0) - timedelta(minutes=1)
    patch = {"string_id": string_id, "time": _iso(t), "user_id": 0, "patch": "[1]"}
    assert ok(q(api, key, {"patches": patch})) == {}
    assert err(q(api, key, {"patches": patch | {"user_id": 3}})) == (
        "you may not change the author of a patch from 0 to 3"
    )
    assert err(q(api, key, {"patches": patch | {"patch": "[2]"}})) == "you may not change a patch"
    # More than 3 minutes ahead is a wrong clock, as ms or as ISO text; 2 minutes is fine.
    ahead = utcnow() + timedelta(minutes=10)
    assert err(q(api, key, {"patches": patch | {"time": _ms(ahead)}})) == "clock"
    assert err(q(api, key, {"patches": patch | {"time": _iso(ahead)}})) == "clock"
    soon = patch | {"time": _ms(utcnow() + timedelta(minutes=2)), "patch": "[3]"}
    assert ok(q(api, key, {"patches": soon})) == {}
    assert err(q(api, key, {"patches": patch | {"time": "yesterday"}})) == (
        'error: invalid input syntax for type timestamp: "yesterday"'
    )
    assert err(q(api, key, {"patches": patch | {"time": 1e20}})) == (
        'error: invalid input syntax for type timestamp: "1e+20"'
    )
    assert err(q(api, key, {"patches": patch | {"user_id": "me"}})) == (
        'error: invalid input syntax for type integer: "me"'
    )
    assert err(q(api, key, {"patches": patch | {"user_id": 2**40}})) == (
        f'error: value "{2**40}" is out of range for type integer'
    )
    assert err(q(api, key, {"patches": {k: v for k, v in patch.items() if k != "time"}})) == (
        "FATAL: query must specify (primary) key 'time'"
    )
    assert err(q(api, key, {"patches": patch | {"author": 1}})) == (
        "FATAL: changing patches.author not allowed"
    )
    assert err(q(api, key, {"patches": patch}, options=[{"delete": True}])) == (
        "FATAL: delete from patches not allowed"
    )
    stored = db.execute(
        select(patches.c.user_id, patches.c.patch).where(patches.c.string_id == string_id)
    )
    assert sorted((r.user_id, r.patch) for r in stored) == [(0, "[1]"), (0, "[3]")]


@pytest.mark.parametrize(
    ("string_id", "message"),
    [
        ("abc", "FATAL: string_id (='abc') must be a string of length 40"),
        ("a" * 41, f"FATAL: string_id (='{'a' * 41}') must be a string of length 40"),
        (12, "FATAL: string_id (='12') must be a string of length 40"),
        ({"!=": "x"}, "FATAL: string_id (='[object Object]') must be a string of length 40"),
        ("0" * 40, "FATAL: no such syncstring"),
    ],
)
def test_string_id_errors(api: ApiClient, team: Team, string_id: Any, message: str) -> None:
    key = team.owner.api_key
    for table in ("patches", "cursors", "eval_inputs", "eval_outputs", "ipywidgets"):
        assert (
            err(
                q(
                    api,
                    key,
                    {table: [{"string_id": string_id, "time": None}]}
                    if table != "ipywidgets"
                    else {table: [{"string_id": string_id, "data": None}]},
                )
            )
            == message
        )
    assert (
        err(q(api, key, {"patches": {"string_id": string_id, "time": 1, "patch": "x"}})) == message
    )


def test_string_id_missing(api: ApiClient, team: Team) -> None:
    key = team.owner.api_key
    assert err(q(api, key, {"patches": [{"time": None}]})) == (
        "FATAL: string_id (='undefined') must be a string of length 40"
    )
    assert err(q(api, key, {"cursors": [{"string_id": None, "locs": None}]})) == (
        "FATAL: string_id (='null') must be a string of length 40"
    )


# --- cursors, eval_inputs, eval_outputs, ipywidgets -------------------------------------------


def test_cursors(api: ApiClient, db: Database, team: Team) -> None:
    string_id = add_syncstring(db, team.project_id, "c.txt", [team.owner.account_id])
    key = team.collab.api_key
    cursor = {"string_id": string_id, "user_id": 1, "locs": [{"x": 1, "y": 2}], "time": "{now}"}
    assert ok(q(api, key, {"cursors": cursor})) == {}
    # locs is an array: replaced, not merged.
    assert (
        ok(q(api, key, {"cursors": cursor | {"locs": [{"x": 5, "y": 0}, {"x": 0, "y": 9}]}})) == {}
    )
    got = ok(
        q(
            api,
            team.owner.api_key,
            {"cursors": [{"string_id": string_id, "user_id": None, "locs": None, "time": None}]},
        )
    )
    [row] = got["cursors"]
    assert row["user_id"] == 1 and row["locs"] == [{"x": 5, "y": 0}, {"x": 0, "y": 9}]
    assert row["time"].endswith("Z")
    assert err(q(api, key, {"cursors": cursor | {"user_id": -1}})) == (
        'error: new row for relation "cursors" violates check constraint "cursors_user_id_check"'
    )
    assert err(q(api, key, {"cursors": cursor | {"locs": {"x": 1}}})) == (
        'error: malformed array literal: "[object Object]"'
    )
    assert err(q(api, key, {"cursors": cursor | {"time": "later"}})) == (
        'error: invalid input syntax for type timestamp: "later"'
    )
    stored = db.execute(select(cursors).where(cursors.c.string_id == string_id))
    assert [(r.user_id, r.locs) for r in stored] == [(1, [{"x": 5, "y": 0}, {"x": 0, "y": 9}])]


def test_eval_inputs_and_outputs(api: ApiClient, db: Database, team: Team) -> None:
    string_id = add_syncstring(db, team.project_id, "s.sagews", [team.owner.account_id])
    key = team.owner.api_key
    at = _iso(utcnow().replace(microsecond=0))
    request = {
        "string_id": string_id,
        "time": at,
        "user_id": 0,
        "input": {"program": "sage", "input": {"code": "2+2"}},
    }
    assert ok(q(api, key, {"eval_inputs": request})) == {}
    # Maps merge.
    assert (
        ok(q(api, key, {"eval_inputs": request | {"input": {"input": {"preparse": True}}}})) == {}
    )
    got = ok(
        q(
            api,
            team.collab.api_key,
            {"eval_inputs": {"string_id": string_id, "time": at, "user_id": 0, "input": None}},
        )
    )
    assert got["eval_inputs"]["input"] == {
        "program": "sage",
        "input": {"code": "2+2", "preparse": True},
    }
    for number, output in enumerate(({"stdout": "4"}, {"done": True})):
        reply = q(
            api,
            key,
            {
                "eval_outputs": {
                    "string_id": string_id,
                    "time": at,
                    "number": number,
                    "output": output,
                }
            },
        )
        assert ok(reply) == {}
    got = ok(
        q(
            api,
            team.collab.api_key,
            {
                "eval_outputs": [
                    {"string_id": string_id, "time": at, "number": None, "output": None}
                ]
            },
            options=[{"order_by": "number"}],
        )
    )
    assert [(r["number"], r["output"]) for r in got["eval_outputs"]] == [
        (0, {"stdout": "4"}),
        (1, {"done": True}),
    ]
    assert err(
        q(
            api,
            key,
            {"eval_outputs": {"string_id": string_id, "time": at, "number": -2, "output": {}}},
        )
    ) == (
        'error: new row for relation "eval_outputs" violates check constraint '
        '"eval_outputs_number_check"'
    )
    assert err(q(api, key, {"eval_inputs": request | {"user_id": -1}})) == (
        'error: new row for relation "eval_inputs" violates check constraint '
        '"eval_inputs_user_id_check"'
    )
    assert err(q(api, key, {"eval_inputs": request | {"input": "2+2"}})) == (
        "FATAL: error setting 'input' -- Error: eval_inputs.input must be an object"
    )
    assert len(db.execute(select(eval_inputs).where(eval_inputs.c.string_id == string_id))) == 1
    assert len(db.execute(select(eval_outputs).where(eval_outputs.c.string_id == string_id))) == 2


def test_ipywidgets(api: ApiClient, db: Database, team: Team) -> None:
    string_id = add_syncstring(db, team.project_id, "n.ipynb", [team.owner.account_id])
    key = team.collab.api_key
    widget = {
        "string_id": string_id,
        "model_id": "m1",
        "type": "state",
        "data": {"value": 1, "min": 0},
    }
    assert ok(q(api, key, {"ipywidgets": widget})) == {}
    assert (
        ok(
            q(
                api,
                key,
                {"ipywidgets": widget | {"data": {"value": 7, "min": None}}},
                options=[{"set": True}],
            )
        )
        == {}
    )
    got = ok(
        q(
            api,
            team.owner.api_key,
            {
                "ipywidgets": [
                    {"string_id": string_id, "model_id": None, "type": None, "data": None}
                ]
            },
        )
    )
    assert got["ipywidgets"] == [
        {"string_id": string_id, "model_id": "m1", "type": "state", "data": {"value": 7}}
    ]
    assert err(q(api, key, {"ipywidgets": widget | {"model_id": "m" * 201}})) == (
        "error: value too long for type character varying(200)"
    )
    assert err(q(api, key, {"ipywidgets": {k: v for k, v in widget.items() if k != "type"}})) == (
        "FATAL: query must specify (primary) key 'type'"
    )
    stored = db.execute(select(ipywidgets).where(ipywidgets.c.string_id == string_id))
    assert [(r.model_id, r.type, r.data) for r in stored] == [("m1", "state", {"value": 7})]


# --- who may read and write -------------------------------------------------------------------

ROLES = ("owner", "collab", "viewer", "stranger", "admin")
ALLOWED = {"owner", "collab", "admin"}


def _operations(table: str, pid: str, string_id: str, n: int) -> tuple[Any, Any, Any]:
    """A get of the shared document, a set that writes something new (numbered `n`), and a
    select that finds what the set wrote."""
    at = _iso(datetime(2021, 1, 1, tzinfo=UTC) + timedelta(seconds=n))
    if table == "syncstrings":
        return (
            {"syncstrings": {"project_id": pid, "path": "m.txt", "users": None}},
            {"syncstrings": {"project_id": pid, "path": "m.txt", "settings": {f"k{n}": n}}},
            select(syncstrings.c.settings).where(syncstrings.c.string_id == string_id),
        )
    if table == "recent_syncstrings_in_project":
        get = {table: [{"project_id": pid, "max_age_m": 60, "string_id": None}]}
        return get, None, None
    if table == "patches":
        return (
            {"patches": [{"string_id": string_id, "time": None, "patch": None}]},
            {"patches": {"string_id": string_id, "time": at, "user_id": 0, "patch": f"[{n}]"}},
            select(patches.c.patch).where(patches.c.string_id == string_id),
        )
    if table == "cursors":
        return (
            {"cursors": [{"string_id": string_id, "user_id": None, "locs": None}]},
            {"cursors": {"string_id": string_id, "user_id": n, "locs": [{"x": n}]}},
            select(cursors.c.user_id).where(cursors.c.string_id == string_id),
        )
    if table == "eval_inputs":
        return (
            {"eval_inputs": [{"string_id": string_id, "time": None, "input": None}]},
            {"eval_inputs": {"string_id": string_id, "time": at, "user_id": 0, "input": {"n": n}}},
            select(eval_inputs.c.input).where(eval_inputs.c.string_id == string_id),
        )
    if table == "eval_outputs":
        return (
            {"eval_outputs": [{"string_id": string_id, "number": None, "output": None}]},
            {"eval_outputs": {"string_id": string_id, "time": at, "number": n, "output": {"n": n}}},
            select(eval_outputs.c.output).where(eval_outputs.c.string_id == string_id),
        )
    assert table == "ipywidgets"
    return (
        {"ipywidgets": [{"string_id": string_id, "model_id": None, "data": None}]},
        {
            "ipywidgets": {
                "string_id": string_id,
                "model_id": f"m{n}",
                "type": "state",
                "data": {"n": n},
            }
        },
        select(ipywidgets.c.data).where(ipywidgets.c.string_id == string_id),
    )


@pytest.mark.parametrize(
    "table",
    [
        "syncstrings",
        "recent_syncstrings_in_project",
        "patches",
        "cursors",
        "eval_inputs",
        "eval_outputs",
        "ipywidgets",
    ],
)
def test_permission_matrix(
    api: ApiClient, db: Database, admin_key: str, team: Team, table: str
) -> None:
    """Owners, collaborators and admins read and write; viewers and strangers get
    "FATAL: user must be an admin" and change nothing."""
    pid = team.project_id
    string_id = add_syncstring(db, pid, "m.txt", [team.owner.account_id], last_active=utcnow())
    at = datetime(2020, 1, 1, tzinfo=UTC)
    add_patch(db, string_id, at, 0, "[0]")
    db.execute(cursors.insert().values(string_id=string_id, user_id=0, locs=[{"x": 0}]))
    db.execute(eval_inputs.insert().values(string_id=string_id, time=at, user_id=0, input={"n": 0}))
    db.execute(
        eval_outputs.insert().values(string_id=string_id, time=at, number=0, output={"n": 0})
    )
    db.execute(
        ipywidgets.insert().values(string_id=string_id, model_id="m0", type="state", data={"n": 0})
    )
    for n, role in enumerate(ROLES, start=1):
        key = team.key(role, admin_key)
        get, put, written = _operations(table, pid, string_id, n)
        before = db.execute(written) if written is not None else []
        if role in ALLOWED:
            result = ok(q(api, key, get))[table]
            rows = result if isinstance(result, list) else [result]
            # The shared document's rows (the first one, and what earlier roles wrote).
            assert rows and all(row["string_id"] == string_id for row in rows), (role, result)
            if put is not None:
                assert ok(q(api, key, put)) == {}, role
                after = db.execute(written)
                assert after != before and len(after) >= len(before), role
        else:
            assert err(q(api, key, get)) == ADMIN_ONLY, role
            if put is not None:
                assert err(q(api, key, put)) == ADMIN_ONLY, role
                assert db.execute(written) == before, role


def test_strangers_never_reach_another_projects_sync_data(
    api: ApiClient, db: Database, make_user: MakeUser, team: Team
) -> None:
    victim, stranger = team.project_id, team.stranger
    secret = add_syncstring(db, victim, "secret.txt", [team.owner.account_id], last_active=utcnow())
    add_patch(db, secret, utcnow() - timedelta(minutes=1), 0, '"the secret"', snapshot="secret")
    own = new_project(api, stranger)
    key = stranger.api_key
    refused_reads = [
        {"syncstrings": {"project_id": victim, "path": "secret.txt", "users": None}},
        {"syncstrings": [{"project_id": {"!=": own}, "path": None, "users": None}]},
        {"syncstrings": [{"path": "secret.txt", "string_id": secret, "users": None}]},
        {"recent_syncstrings_in_project": [{"project_id": victim, "max_age_m": 1e9, "path": None}]},
        {"patches": [{"string_id": secret, "patch": None, "snapshot": None}]},
        {"patches": [{"string_id": {">": ""}, "patch": None}]},
        {"patches": [{"string_id": [secret], "patch": None}]},
        {"cursors": [{"string_id": secret, "locs": None}]},
        {"eval_inputs": [{"string_id": secret, "input": None}]},
        {"eval_outputs": [{"string_id": secret, "output": None}]},
        {"ipywidgets": [{"string_id": secret, "data": None}]},
    ]
    for query in refused_reads:
        assert err(q(api, key, query)).startswith("FATAL:"), query
        assert err(q(api, key, [{"accounts": {"account_id": None}}, query])).startswith("FATAL:")
    # Forcing a get, or sudo, changes nothing.
    forced = {"patches": [{"string_id": secret, "patch": "x"}]}
    assert err(q(api, key, forced, options=[{"set": False}])) == ADMIN_ONLY
    assert (
        err(
            q(
                api,
                key,
                {"patches": [{"string_id": secret, "patch": None}]},
                options=[{"account_id": team.owner.account_id}],
            )
        )
        == "user must be admin to sudo"
    )
    # A client-sent string_id never wins over sha1(project_id + path): the stranger's own
    # project has no such document.
    mine = {
        "syncstrings": [
            {"project_id": own, "path": "secret.txt", "string_id": secret, "users": None}
        ]
    }
    assert ok(q(api, key, mine)) == {"syncstrings": []}
    # Writes are refused and leave the victim's rows as they were.
    refused_writes = [
        {"syncstrings": {"project_id": victim, "path": "secret.txt", "deleted": True}},
        {"syncstrings": {"project_id": victim, "path": "new.txt", "deleted": True}},
        {"patches": {"string_id": secret, "time": "{now}", "user_id": 0, "patch": "[]"}},
        {"cursors": {"string_id": secret, "user_id": 5, "locs": []}},
        {"eval_inputs": {"string_id": secret, "time": "{now}", "user_id": 0, "input": {}}},
        {"eval_outputs": {"string_id": secret, "time": "{now}", "number": 0, "output": {}}},
        {"ipywidgets": {"string_id": secret, "model_id": "x", "type": "state", "data": {}}},
        {"syncstrings_delete": {"project_id": victim, "path": "secret.txt"}},
    ]
    for query in refused_writes:
        assert err(q(api, key, query)) == ADMIN_ONLY, query
    assert _syncstring(db, secret).deleted is None
    assert _syncstring(db, sha1(victim + "new.txt")) is None
    assert len(db.execute(select(patches).where(patches.c.string_id == secret))) == 1
    for table in (cursors, eval_inputs, eval_outputs, ipywidgets):
        assert db.execute(select(table).where(table.c.string_id == secret)) == []
    # The stranger's own project works as usual.
    assert (
        ok(q(api, key, {"syncstrings": {"project_id": own, "path": "secret.txt", "deleted": True}}))
        == {}
    )
    assert _syncstring(db, sha1(own + "secret.txt")).project_id == own
