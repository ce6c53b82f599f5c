"""`query` over real HTTP for the account tables (accounts' remaining fields,
account_profiles, collaborators, collaborators_one_project) and the tables over projects
(names, env, admin settings, status, projects_admin, projects_owner,
project_invite_requests, public_projects, public_paths_by_id, all_public_paths)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from calchub.db.tables import accounts, project_users, projects, public_paths
from calchub.db.types import utcnow
from calchub.userquery.tables.accounts import TERMINAL
from calchub.userquery.tables.projects import PROJECT_SETTINGS
from tests.api.project_files import publish
from tests.api.queries import create, err, join, ok, q
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]


@pytest.fixture
def team(api: ApiClient, db: Database, make_user: MakeUser) -> dict[str, Any]:
    owner, collab, stranger = make_user(), make_user(), make_user()
    project_id = create(api, owner)
    join(db, project_id, collab)
    return {"owner": owner, "collab": collab, "stranger": stranger, "project_id": project_id}


def _handle() -> str:
    return "u" + uuid.uuid4().hex[:12]


# --- accounts ---------------------------------------------------------------------------------


def test_accounts_remaining_fields_have_their_defaults(api: ApiClient, user: User) -> None:
    fields = [
        "name",
        "terminal",
        "autosave",
        "evaluate_key",
        "font_size",
        "profile",
        "ssh_keys",
        "lti_id",
        "email_address_problem",
        "stripe_customer",
        "coupon_history",
    ]
    row = ok(q(api, user.api_key, {"accounts": dict.fromkeys(fields)}))["accounts"]
    assert row == {
        "name": None,
        "terminal": TERMINAL,
        "autosave": 45,
        "evaluate_key": "Shift-Enter",
        "font_size": 14,
        "profile": {},
        "ssh_keys": {},
        "lti_id": None,
        "email_address_problem": None,
        "stripe_customer": None,
        "coupon_history": None,
    }


def test_accounts_set_scalar_and_map_fields(api: ApiClient, db: Database, user: User) -> None:
    key = user.api_key
    change = {
        "terminal": {"font_size": 18},
        "autosave": 10,
        "evaluate_key": "Enter",
        "font_size": 16,
        "profile": {"color": "#aa0000"},
        "ssh_keys": {"ab:cd": {"title": "laptop", "value": "ssh-ed25519 AAAA"}},
    }
    assert ok(q(api, key, {"accounts": change})) == {}
    row = ok(q(api, key, {"accounts": dict.fromkeys(change)}))["accounts"]
    assert row["terminal"] == {**TERMINAL, "font_size": 18}
    assert row["autosave"] == 10 and row["evaluate_key"] == "Enter" and row["font_size"] == 16
    assert row["profile"] == {"color": "#aa0000"}
    # Maps merge: a second key leaves the first in place.
    assert ok(q(api, key, {"accounts": {"profile": {"image": "data:x"}}})) == {}
    stored = db.execute(select(accounts.c.profile).where(accounts.c.account_id == user.account_id))
    assert stored[0].profile == {"color": "#aa0000", "image": "data:x"}
    assert err(q(api, key, {"accounts": {"autosave": "soon"}})) == (
        'error: invalid input syntax for type integer: "soon"'
    )
    assert err(q(api, key, {"accounts": {"terminal": "big"}})) == (
        "FATAL: error setting 'terminal' -- Error: accounts.terminal must be an object"
    )


def test_accounts_name_rules(api: ApiClient, make_user: MakeUser) -> None:
    first, second = make_user(), make_user()
    handle = _handle()
    assert ok(q(api, first.api_key, {"accounts": {"name": handle}})) == {}
    assert ok(q(api, first.api_key, {"accounts": {"name": None}}))["accounts"]["name"] == handle
    # Setting your own name again is fine; another account may not take it in any case.
    assert ok(q(api, first.api_key, {"accounts": {"name": handle}})) == {}
    assert err(q(api, second.api_key, {"accounts": {"name": handle.upper()}})) == (
        "name is already taken by another organization or account"
    )
    cases = {
        "x" * 40: "Error: name must have at most 39 characters",
        str(uuid.uuid4()): "Error: name must not be a v4 UUID",
        "a--b": "Error: name must not contain consecutive hyphens",
        "-ab": "Error: name must contain only a-z,A-Z,0-9, or -, and not start with hyphen.",
        "a b": "Error: name must contain only a-z,A-Z,0-9, or -, and not start with hyphen.",
        "../x": "Error: name must contain only a-z,A-Z,0-9, or -, and not start with hyphen.",
        "Admin": 'Error: name "Admin" is reserved -- not available',
    }
    for name, message in cases.items():
        assert err(q(api, second.api_key, {"accounts": {"name": name}})) == message
    assert ok(q(api, second.api_key, {"accounts": {"name": None}}))["accounts"]["name"] is None


def test_accounts_unsettable_fields(api: ApiClient, user: User) -> None:
    for name, value in (
        ("email_address", "x@example.com"),
        ("groups", ["admin"]),
        ("passports", {}),
        ("created", "2020-01-01T00:00:00Z"),
        ("stripe_customer", {}),
    ):
        assert err(q(api, user.api_key, {"accounts": {name: value}})) == (
            f"FATAL: changing accounts.{name} not allowed"
        )


def test_account_profiles_are_public(api: ApiClient, make_user: MakeUser) -> None:
    alice, bob = make_user(), make_user()
    assert ok(q(api, alice.api_key, {"accounts": {"profile": {"color": "#00ff00"}}})) == {}
    got = ok(
        q(api, bob.api_key, {"account_profiles": {"account_id": alice.account_id, "profile": None}})
    )
    assert got == {
        "account_profiles": {"account_id": alice.account_id, "profile": {"color": "#00ff00"}}
    }
    # Nothing else of the account is readable there, and nothing is settable.
    assert (
        err(
            q(
                api,
                bob.api_key,
                {"account_profiles": {"account_id": alice.account_id, "email_address": None}},
            )
        )
        == "FATAL: user get query not allowed for account_profiles.email_address"
    )
    assert (
        err(
            q(
                api,
                bob.api_key,
                {"account_profiles": {"account_id": alice.account_id, "profile": {}}},
            )
        )
        == "FATAL: user set queries not allowed for table 'account_profiles'"
    )
    # The default limit is one row.
    rows = ok(q(api, bob.api_key, {"account_profiles": [{"account_id": None, "profile": None}]}))
    assert len(rows["account_profiles"]) == 1


# --- collaborators ----------------------------------------------------------------------------


def test_collaborators_are_the_accounts_sharing_a_project(
    api: ApiClient, team: dict[str, Any], make_user: MakeUser
) -> None:
    owner, collab, stranger = team["owner"], team["collab"], team["stranger"]
    query = {"collaborators": [{"account_id": None, "first_name": None, "last_name": None}]}
    rows = ok(q(api, owner.api_key, query))["collaborators"]
    assert {row["account_id"] for row in rows} == {owner.account_id, collab.account_id}
    names = {row["account_id"]: row["first_name"] for row in rows}
    assert names[collab.account_id] == collab.first_name
    assert ok(q(api, stranger.api_key, query)) == {"collaborators": []}
    # A filter cannot reach past the scope.
    reach = {"collaborators": [{"account_id": stranger.account_id, "first_name": None}]}
    assert ok(q(api, owner.api_key, reach)) == {"collaborators": []}
    assert err(q(api, owner.api_key, {"collaborators": [{"email_address": None}]})) == (
        "FATAL: user get query not allowed for collaborators.email_address"
    )
    assert (
        err(
            q(
                api,
                owner.api_key,
                {"collaborators": {"account_id": collab.account_id, "first_name": "x"}},
            )
        )
        == "FATAL: user set queries not allowed for table 'collaborators'"
    )


def test_collaborators_one_project(
    api: ApiClient, team: dict[str, Any], admin_key: str, db: Database, make_user: MakeUser
) -> None:
    owner, collab, stranger, pid = (team[k] for k in ("owner", "collab", "stranger", "project_id"))
    other = create(api, owner, "other project")
    join(db, other, stranger)
    query = {
        "collaborators_one_project": [{"project_id": pid, "account_id": None, "last_name": None}]
    }
    for key in (owner.api_key, collab.api_key, admin_key):
        rows = ok(q(api, key, query))["collaborators_one_project"]
        assert {row["account_id"] for row in rows} == {owner.account_id, collab.account_id}
        assert all("project_id" not in row for row in rows)
    assert err(q(api, stranger.api_key, query)) == (
        "FATAL: you do not have read access to this project"
    )
    assert (
        err(q(api, owner.api_key, {"collaborators_one_project": [{"account_id": None}]}))
        == "FATAL: must specify project_id"
    )
    assert (
        err(
            q(
                api,
                owner.api_key,
                {"collaborators_one_project": [{"project_id": "abc", "account_id": None}]},
            )
        )
        == "invalid project_id -- abc"
    )


# --- projects: name, env, settings, status ----------------------------------------------------


def test_project_name_rules(api: ApiClient, team: dict[str, Any]) -> None:
    owner, collab, pid = team["owner"], team["collab"], team["project_id"]
    name = "course-" + uuid.uuid4().hex[:8]
    assert ok(q(api, owner.api_key, {"projects": {"project_id": pid, "name": name}})) == {}
    got = ok(q(api, collab.api_key, {"projects_all": {"project_id": pid, "name": None}}))
    assert got["projects_all"]["name"] == name
    # Unchanged name: no check at all, even for a collaborator.
    assert ok(q(api, collab.api_key, {"projects": {"project_id": pid, "name": name}})) == {}
    assert err(q(api, collab.api_key, {"projects": {"project_id": pid, "name": name + "x"}})) == (
        "Only the owner of the project can currently change the project name."
    )
    second = create(api, owner, "second")
    assert err(
        q(api, owner.api_key, {"projects": {"project_id": second, "name": name.upper()}})
    ) == (
        f"There is already a project with the same owner as this project and "
        f"name='{name.upper()}'.   Names are not case sensitive."
    )
    assert err(q(api, owner.api_key, {"projects": {"project_id": second, "name": "a b"}})) == (
        "Error: name must contain only a-z,A-Z,0-9, . or -, and not start with hyphen or have "
        "spaces."
    )
    assert err(q(api, owner.api_key, {"projects": {"project_id": second, "name": "x" * 101}})) == (
        "Error: name must have at most 100 characters"
    )


def test_project_env_site_license_and_invite_requests(api: ApiClient, team: dict[str, Any]) -> None:
    owner, collab, pid = team["owner"], team["collab"], team["project_id"]
    license_id = str(uuid.uuid4())
    change = {
        "project_id": pid,
        "env": {"LANG": "C.UTF-8"},
        "site_license": {license_id: {}},
        "invite_requests": {owner.account_id: {"message": "hi"}},
    }
    assert ok(q(api, owner.api_key, {"projects": change})) == {}
    assert ok(q(api, collab.api_key, {"projects": {"project_id": pid, "env": {"TZ": "UTC"}}})) == {}
    got = ok(
        q(
            api,
            owner.api_key,
            {
                "projects_all": {
                    "project_id": pid,
                    "env": None,
                    "site_license": None,
                    "invite_requests": None,
                }
            },
        )
    )["projects_all"]
    assert got["env"] == {"LANG": "C.UTF-8", "TZ": "UTC"}
    assert got["site_license"] == {license_id: {}}
    assert got["invite_requests"] == {owner.account_id: {"message": "hi"}}


def test_project_settings_only_for_admins(
    api: ApiClient, team: dict[str, Any], admin_key: str
) -> None:
    owner, pid = team["owner"], team["project_id"]
    change = {"projects": {"project_id": pid, "settings": {"memory": 2000}}}
    assert err(q(api, owner.api_key, change)) == "FATAL: changing projects.settings not allowed"
    assert ok(q(api, admin_key, change)) == {}
    got = ok(q(api, owner.api_key, {"projects_all": {"project_id": pid, "settings": None}}))
    assert got["projects_all"]["settings"] == {**PROJECT_SETTINGS, "memory": 2000}


def test_project_status_and_host(api: ApiClient, team: dict[str, Any]) -> None:
    owner, pid = team["owner"], team["project_id"]
    query = {"projects_all": {"project_id": pid, "status": None, "host": None, "state": None}}
    got = ok(q(api, owner.api_key, query))["projects_all"]
    assert got["status"] is None and got["host"] is None and got["state"]["state"] == "opened"
    ran = api.call("project_exec", owner.api_key, {"project_id": pid, "command": "true"})
    assert ran.event == "project_exec_output", ran.body
    got = ok(q(api, owner.api_key, query))["projects_all"]
    assert got["state"]["state"] == "running"
    assert got["status"]["state"] == "running"
    assert isinstance(got["status"]["project.pid"], int)
    assert got["status"]["start_ts"] <= time.time() * 1000
    assert got["status"]["memory"]["rss"] >= 0
    assert err(q(api, owner.api_key, {"projects": {"project_id": pid, "status": {}}})) == (
        "FATAL: changing projects.status not allowed"
    )


# --- tables over projects ---------------------------------------------------------------------


def test_projects_admin(api: ApiClient, team: dict[str, Any], admin_key: str) -> None:
    owner, pid = team["owner"], team["project_id"]
    got = ok(
        q(api, admin_key, {"projects_admin": {"project_id": pid, "title": None, "users": None}})
    )
    assert got["projects_admin"]["title"] == "Query project"
    assert got["projects_admin"]["users"] == {owner.account_id: {"group": "owner"}} | {
        team["collab"].account_id: {"group": "collaborator"}
    }
    for key in (owner.api_key, team["stranger"].api_key):
        assert err(q(api, key, {"projects_admin": {"project_id": pid, "title": None}})) == (
            "FATAL: user must be an admin"
        )
    assert err(q(api, admin_key, {"projects_admin": {"title": None}})) == (
        "FATAL: must specify project_id"
    )
    assert err(q(api, admin_key, {"projects_admin": {"project_id": pid, "title": "x"}})) == (
        "FATAL: user set queries not allowed for table 'projects_admin'"
    )


def test_projects_owner_sets_course(api: ApiClient, team: dict[str, Any], admin_key: str) -> None:
    owner, collab, stranger, pid = (team[k] for k in ("owner", "collab", "stranger", "project_id"))
    course = {"project_id": str(uuid.uuid4()), "path": "course.course"}
    assert (
        ok(q(api, owner.api_key, {"projects_owner": {"project_id": pid, "course": course}})) == {}
    )
    got = ok(q(api, collab.api_key, {"projects_all": {"project_id": pid, "course": None}}))
    assert got["projects_all"]["course"] == course
    for key in (collab.api_key, stranger.api_key):
        assert (
            err(q(api, key, {"projects_owner": {"project_id": pid, "course": {"path": "x"}}}))
            == "FATAL: user must be an admin"
        )
    assert (
        ok(q(api, admin_key, {"projects_owner": {"project_id": pid, "course": {"path": "y"}}}))
        == {}
    )
    assert err(q(api, owner.api_key, {"projects_owner": {"project_id": pid, "course": None}})) == (
        "FATAL: get queries not allowed for table 'projects_owner'"
    )
    missing = str(uuid.uuid4())
    assert (
        err(q(api, owner.api_key, {"projects_owner": {"project_id": missing, "course": {"a": 1}}}))
        == f"FATAL: unknown project_id '{missing}'"
    )


def test_project_invite_requests(api: ApiClient, db: Database, team: dict[str, Any]) -> None:
    owner, stranger, pid = team["owner"], team["stranger"], team["project_id"]
    mine = {stranger.account_id: {"message": "may I join?", "timestamp": "2026-01-01T00:00:00Z"}}
    assert (
        ok(
            q(
                api,
                stranger.api_key,
                {"project_invite_requests": {"project_id": pid, "invite_requests": mine}},
            )
        )
        == {}
    )
    got = ok(q(api, owner.api_key, {"projects_all": {"project_id": pid, "invite_requests": None}}))
    assert got["projects_all"]["invite_requests"] == mine
    # Only one's own entry, and only for a project that exists.
    forged = {owner.account_id: {"message": "x"}}
    assert err(
        q(
            api,
            stranger.api_key,
            {"project_invite_requests": {"project_id": pid, "invite_requests": forged}},
        )
    ) == (
        "FATAL: error setting 'invite_requests' -- Error: you may only request an invitation for "
        "yourself"
    )
    missing = str(uuid.uuid4())
    assert (
        err(
            q(
                api,
                stranger.api_key,
                {"project_invite_requests": {"project_id": missing, "invite_requests": mine}},
            )
        )
        == f"FATAL: unknown project_id '{missing}'"
    )
    assert not db.execute(select(projects.c.project_id).where(projects.c.project_id == missing))
    # Nothing but the requests can be changed through this table.
    assert (
        err(
            q(
                api,
                stranger.api_key,
                {"project_invite_requests": {"project_id": pid, "title": "mine"}},
            )
        )
        == "FATAL: changing project_invite_requests.title not allowed"
    )


def test_public_projects(api: ApiClient, db: Database, team: dict[str, Any]) -> None:
    owner, stranger, pid = team["owner"], team["stranger"], team["project_id"]
    query = {"public_projects": {"project_id": pid, "title": None, "name": None}}
    assert err(q(api, stranger.api_key, query)) == "project does not have any public paths"
    publish(db, pid, "withdrawn", disabled=True)
    assert err(q(api, stranger.api_key, query)) == "project does not have any public paths"
    publish(db, pid, "handout")
    # A NULL name comes back as true, as CoCalc's schema makes it.
    assert ok(q(api, stranger.api_key, query)) == {
        "public_projects": {"project_id": pid, "title": "Query project", "name": True}
    }
    assert err(
        q(api, stranger.api_key, {"public_projects": {"project_id": pid, "users": None}})
    ) == ("FATAL: user get query not allowed for public_projects.users")
    assert err(q(api, owner.api_key, {"public_projects": {"project_id": pid, "title": "x"}})) == (
        "FATAL: user set queries not allowed for table 'public_projects'"
    )


def test_public_paths_by_id(api: ApiClient, db: Database, team: dict[str, Any]) -> None:
    owner, stranger, pid = team["owner"], team["stranger"], team["project_id"]
    publish(db, pid, "shown")
    publish(db, pid, "withdrawn", disabled=True)
    shown = hashlib.sha1((pid + "shown").encode()).hexdigest()  # noqa: S324 - CoCalc's id
    withdrawn = hashlib.sha1((pid + "withdrawn").encode()).hexdigest()  # noqa: S324
    got = ok(q(api, stranger.api_key, {"public_paths_by_id": {"id": shown, "path": None}}))
    assert got == {"public_paths_by_id": {"id": shown, "path": "shown"}}
    assert (
        ok(q(api, stranger.api_key, {"public_paths_by_id": {"id": withdrawn, "path": None}})) == {}
    )
    got = ok(q(api, owner.api_key, {"public_paths_by_id": {"id": withdrawn, "disabled": None}}))
    assert got["public_paths_by_id"]["disabled"] is True
    assert err(q(api, stranger.api_key, {"public_paths_by_id": {"id": "abc", "path": None}})) == (
        "id must be a sha1 hash"
    )
    assert err(q(api, stranger.api_key, {"public_paths_by_id": {"path": None}})) == (
        "id must be a sha1 hash"
    )
    assert err(q(api, stranger.api_key, {"public_paths_by_id": {"id": shown, "token": None}})) == (
        "FATAL: user get query not allowed for public_paths_by_id.token"
    )


def test_all_public_paths(api: ApiClient, db: Database, team: dict[str, Any]) -> None:
    owner, collab, stranger, pid = (team[k] for k in ("owner", "collab", "stranger", "project_id"))
    publish(db, pid, "old")
    publish(db, pid, "new")
    db.execute(
        update(projects)
        .where(projects.c.project_id == pid)
        .values(last_active={owner.account_id: "2026-11-01T00:00:00Z"})
    )
    for path, age in (("new", 0), ("old", 3600)):
        db.execute(
            update(public_paths)
            .where(public_paths.c.project_id == pid, public_paths.c.path == path)
            .values(last_edited=utcnow() - timedelta(seconds=age))
        )
    rows = ok(q(api, owner.api_key, {"all_public_paths": [{"id": None}]}))["all_public_paths"]
    assert [row["path"] for row in rows] == ["new", "old"]
    assert all(row["project_id"] == pid and "name" not in row for row in rows)
    # A member who was never active in the project, and a stranger, see none of them.
    assert ok(q(api, collab.api_key, {"all_public_paths": [{"id": None}]})) == {
        "all_public_paths": []
    }
    assert ok(q(api, stranger.api_key, {"all_public_paths": [{"id": None}]})) == {
        "all_public_paths": []
    }
    assert err(q(api, owner.api_key, {"all_public_paths": [{"id": "x"}]})) == (
        "FATAL: user set queries not allowed for table 'all_public_paths'"
    )


def test_projects_all_users_maps_of_many_projects(
    api: ApiClient, db: Database, make_user: MakeUser
) -> None:
    """More projects than one statement lists by id: each map still holds exactly its
    project's readers, hidden flags and upgrades included."""
    owner, collab, viewer, invited = make_user(), make_user(), make_user(), make_user()
    count = 60
    ids = [str(uuid.uuid4()) for _ in range(count)]
    now = utcnow()
    base = 900_000_000 + uuid.uuid4().int % 1_000_000 * 100
    expected: dict[str, dict[str, Any]] = {}
    try:
        for n, project_id in enumerate(ids):
            db.execute(
                insert(projects).values(
                    project_id=project_id,
                    title=f"Many {n}",
                    description="",
                    compute_image="default",
                    created=now,
                    last_edited=now,
                    uid=base + n,
                    run_state="opened",
                    run_state_time=now,
                )
            )
            join(db, project_id, owner, "owner")
            expected[project_id] = {owner.account_id: {"group": "owner"}}
            if n % 3 == 0:
                join(db, project_id, collab)
                expected[project_id][collab.account_id] = {"group": "collaborator"}
            if n % 5 == 0:
                join(db, project_id, viewer, "viewer")
                db.execute(
                    update(project_users)
                    .where(
                        project_users.c.project_id == project_id,
                        project_users.c.account_id == viewer.account_id,
                    )
                    .values(hide=True, upgrades={"cores": 1})
                )
                expected[project_id][viewer.account_id] = {
                    "group": "viewer",
                    "hide": True,
                    "upgrades": {"cores": 1},
                }
            if n % 7 == 0:
                join(db, project_id, invited, "invited_collaborator")
        listing = {"projects_all": [{"project_id": None, "users": None}]}
        rows = ok(q(api, owner.api_key, listing))["projects_all"]
        assert {row["project_id"]: row["users"] for row in rows} == expected
        shared = ok(q(api, collab.api_key, listing))["projects_all"]
        assert {row["project_id"]: row["users"] for row in shared} == {
            pid: users for pid, users in expected.items() if collab.account_id in users
        }
    finally:
        db.execute(delete(projects).where(projects.c.project_id.in_(ids)))
