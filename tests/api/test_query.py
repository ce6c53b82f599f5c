"""The `query` endpoint over real HTTP: the spec's examples for accounts, projects,
projects_all and public_paths, the engine's error strings, and who may read or change what."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from calchub.db.tables import accounts, project_users, projects, public_paths
from calchub.db.types import utcnow
from calchub.userquery import users_map
from calchub.userquery.tables.accounts import EDITOR_SETTINGS, OTHER_SETTINGS
from tests.api.queries import create as _create
from tests.api.queries import err as _err
from tests.api.queries import join as _join
from tests.api.queries import ok as _ok
from tests.api.queries import q as _q
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]


@pytest.fixture
def team(api: ApiClient, db: Database, make_user: MakeUser) -> dict[str, Any]:
    owner, collab, stranger = make_user(), make_user(), make_user()
    project_id = _create(api, owner)
    _join(db, project_id, collab)
    return {"owner": owner, "collab": collab, "stranger": stranger, "project_id": project_id}


# --- envelope and engine errors -------------------------------------------------------------


def test_envelope_echoes_options_and_id(api: ApiClient, user: User) -> None:
    reply = api.call(
        "query",
        user.api_key,
        {"id": "abc", "query": {"accounts": {"first_name": None}}, "options": [{"limit": 1}]},
    )
    assert reply.body == {
        "event": "query",
        "id": "abc",
        "query": {"accounts": {"first_name": user.first_name}},
        "multi_response": False,
        "options": [{"limit": 1}],
    }


def test_multi_response_refused(api: ApiClient, user: User) -> None:
    reply = _q(api, user.api_key, {"accounts": {"first_name": None}}, multi_response=True)
    assert reply.status == 400
    assert reply.body == {"error": "multi_response queries aren't supported"}


@pytest.mark.parametrize(
    ("query", "options", "message"),
    [
        ({}, None, "FATAL: invalid user_query of 'undefined' -- query must be an object"),
        ({"a": {"x": None}, "b": {}}, None, "FATAL: must specify exactly one key in the query"),
        ({"accounts": [{}, {}]}, None, "FATAL: array of length > 1 not yet implemented"),
        (
            {"accounts": []},
            None,
            "FATAL: invalid user_query of 'accounts' -- query must be an object",
        ),
        (
            {"accounts": {"first_name": None}},
            {"limit": 1},
            'FATAL: options (={"limit":1}) must be an array',
        ),
        (
            {"nonexistent_table": {"x": None}},
            None,
            "FATAL: get queries not allowed for table 'nonexistent_table'",
        ),
        ({"stats": {"x": None}}, None, "FATAL: get queries not allowed for table 'stats'"),
        ({"nonexistent_table": {"x": 1}}, None, "FATAL: table 'nonexistent_table' does not exist"),
        (
            {"accounts": {"password_hash": None}},
            None,
            "FATAL: user get query not allowed for accounts.password_hash",
        ),
        ({"projects_all": [{"project_id": None}]}, [{"offset": 10}], "unknown option 'offset'"),
        ({"projects_all": [{"project_id": None}]}, [{"slice": 1}], "slice not implemented"),
        (
            {"projects_all": [{"project_id": None}]},
            [{"limit": "x"}],
            "ERROR -- opts.limit = 'x' is not an integer",
        ),
        (
            {"projects_all": [{"project_id": None}]},
            [{"order_by": "x'"}],
            "ERROR -- detected ' apostrophe in order_by='x''",
        ),
        (
            {"projects_all": [{"project_id": None}]},
            [{"order_by": "uid"}],
            "ERROR -- invalid order_by='uid'",
        ),
        (
            {"accounts": {"first_name": None}},
            [{"account_id": str(uuid.uuid4())}],
            "user must be admin to sudo",
        ),
    ],
)
def test_engine_errors(api: ApiClient, user: User, query: Any, options: Any, message: str) -> None:
    extra = {} if options is None else {"options": options}
    assert _err(_q(api, user.api_key, query, **extra)) == message


def test_list_of_queries(api: ApiClient, user: User) -> None:
    got = _ok(
        _q(
            api,
            user.api_key,
            [{"accounts": {"last_name": "Renamed"}}, {"accounts": [{"last_name": None}]}],
        )
    )
    assert got == [{}, {"accounts": [{"last_name": "Renamed"}]}]
    # The first error aborts the rest; earlier sets stay done.
    reply = _q(api, user.api_key, [{"accounts": {"last_name": "Again"}}, {"nope": {"x": None}}])
    assert _err(reply) == "FATAL: get queries not allowed for table 'nope'"
    assert _ok(_q(api, user.api_key, {"accounts": {"last_name": None}})) == {
        "accounts": {"last_name": "Again"}
    }


def test_changefeed_checks(api: ApiClient, user: User) -> None:
    key = user.api_key
    assert _err(_q(api, key, {"accounts": {"first_name": "x"}}, changes=True)) == (
        "FATAL: changefeeds only for read queries"
    )
    assert _err(_q(api, key, {"accounts": {"first_name": None}}, changes=True)) == (
        "FATAL: changefeeds only implemented for multi-document queries"
    )
    assert _err(_q(api, key, {"accounts": [{"first_name": None}]}, changes=True)) == (
        "FATAL: changefeed MUST include primary key (='account_id') in query"
    )
    two = [{"accounts": [{"account_id": None}]}, {"accounts": [{"account_id": None}]}]
    assert _err(_q(api, key, two, changes=True)) == (
        "FATAL: changefeeds only implemented for single table"
    )
    reply = api.call(
        "query", key, {"id": "x", "query": {"accounts": [{"account_id": None}]}, "changes": True}
    )
    assert _err(reply) == "FATAL: changes.id must be a uuid"
    reply = _q(api, key, {"accounts": [{"account_id": None}]}, changes=True)
    assert reply.body["changes"] is True
    assert _ok(reply) == {"accounts": [{"account_id": user.account_id}]}


# --- accounts -------------------------------------------------------------------------------


def test_accounts_own_row_and_defaults(api: ApiClient, user: User) -> None:
    got = _ok(
        _q(
            api,
            user.api_key,
            {
                "accounts": {
                    "account_id": "{account_id}",
                    "email_address": None,
                    "editor_settings": None,
                    "other_settings": None,
                    "passports": None,
                    "groups": None,
                }
            },
        )
    )
    row = got["accounts"]
    assert row["email_address"] == user.email and row["account_id"] == user.account_id
    assert row["editor_settings"] == EDITOR_SETTINGS
    assert row["other_settings"] == OTHER_SETTINGS
    assert row["other_settings"]["show_global_info2"] is None
    assert row["passports"] == {} and row["groups"] == []
    # The id may be omitted.
    assert _ok(_q(api, user.api_key, {"accounts": {"email_address": None}})) == {
        "accounts": {"email_address": user.email}
    }


def test_accounts_editor_settings_merge(api: ApiClient, user: User) -> None:
    key = user.api_key
    assert (
        _ok(
            _q(
                api,
                key,
                {"accounts": {"editor_settings": {"jupyter_classic": True, "theme": "solarized"}}},
            )
        )
        == {}
    )
    row = _ok(_q(api, key, {"accounts": {"editor_settings": None}}))["accounts"]
    assert row["editor_settings"] == {
        **EDITOR_SETTINGS,
        "jupyter_classic": True,
        "theme": "solarized",
    }
    # Deleting a key needs {set:true}; the default fills it back in.
    reply = _q(
        api, key, {"accounts": {"editor_settings": {"theme": None}}}, options=[{"set": True}]
    )
    assert _ok(reply) == {}
    row = _ok(_q(api, key, {"accounts": {"editor_settings": None}}))["accounts"]
    assert row["editor_settings"]["theme"] == "default"
    assert row["editor_settings"]["jupyter_classic"] is True
    # Whole-value filter, not a sub-select.
    assert _ok(_q(api, key, {"accounts": {"editor_settings": {"theme": None}}})) == {}
    assert _err(_q(api, key, {"accounts": {"editor_settings": 5}})) == (
        "FATAL: error setting 'editor_settings' -- "
        "Error: accounts.editor_settings must be an object"
    )


def test_accounts_set_rules(api: ApiClient, db: Database, make_user: MakeUser) -> None:
    me, other = make_user(), make_user()
    assert _err(_q(api, me.api_key, {"accounts": {"email_address": "x@example.com"}})) == (
        "FATAL: changing accounts.email_address not allowed"
    )
    assert _err(_q(api, me.api_key, {"accounts": {"groups": ["admin"]}})) == (
        "FATAL: changing accounts.groups not allowed"
    )
    # account_id is always the caller's own: another id is overwritten, not used.
    reply = _q(
        api, me.api_key, {"accounts": {"account_id": other.account_id, "first_name": "x" * 300}}
    )
    assert _ok(reply) == {}
    names = {row.account_id: row.first_name for row in db.execute(select(accounts))}
    assert names[me.account_id] == "x" * 254
    assert names[other.account_id] == other.first_name
    assert (
        _ok(_q(api, me.api_key, {"accounts": {"account_id": other.account_id, "first_name": None}}))
        == {}
    )
    assert _err(_q(api, me.api_key, {"accounts": {"unlisted": "yes"}})) == (
        'error: invalid input syntax for type boolean: "yes"'
    )


def test_accounts_admin_sees_only_own_row_but_can_sudo(
    api: ApiClient, admin_key: str, user: User
) -> None:
    query = {"accounts": {"account_id": user.account_id, "first_name": None}}
    assert _ok(_q(api, admin_key, query)) == {}
    got = _ok(_q(api, admin_key, query, options=[{"account_id": user.account_id}]))
    assert got == {"accounts": {"account_id": user.account_id, "first_name": user.first_name}}


# --- projects -------------------------------------------------------------------------------


def test_projects_title_description(api: ApiClient, team: dict[str, Any]) -> None:
    key, pid = team["owner"].api_key, team["project_id"]
    got = _ok(_q(api, key, {"projects": {"project_id": pid, "title": None, "description": None}}))
    assert got == {"projects": {"project_id": pid, "title": "Query project", "description": ""}}
    assert (
        _ok(
            _q(
                api,
                key,
                {"projects": {"project_id": pid, "title": "The Best", "description": "Reports"}},
            )
        )
        == {}
    )
    got = _ok(_q(api, key, {"projects_all": [{"project_id": None, "title": None}]}))
    assert {"project_id": pid, "title": "The Best"} in got["projects_all"]


def test_projects_users_state_and_defaults(api: ApiClient, team: dict[str, Any]) -> None:
    owner, collab, pid = team["owner"], team["collab"], team["project_id"]
    got = _ok(
        _q(
            api,
            collab.api_key,
            {
                "projects": {
                    "project_id": pid,
                    "users": None,
                    "state": None,
                    "settings": None,
                    "compute_image": None,
                    "last_edited": None,
                }
            },
        )
    )
    row = got["projects"]
    assert row["users"] == {
        owner.account_id: {"group": "owner"},
        collab.account_id: {"group": "collaborator"},
    }
    assert row["state"]["state"] == "opened" and row["state"]["time"].endswith("Z")
    assert row["settings"]["disk_quota"] == 3000
    assert row["compute_image"]
    assert row["last_edited"].endswith("Z")


def test_projects_hide_own_entry(api: ApiClient, team: dict[str, Any]) -> None:
    owner, collab, pid = team["owner"], team["collab"], team["project_id"]
    hide = {"projects": {"project_id": pid, "users": {"{account_id}": {"hide": True}}}}
    assert _ok(_q(api, collab.api_key, hide)) == {}
    users = _ok(_q(api, owner.api_key, {"projects": {"project_id": pid, "users": None}}))
    assert users["projects"]["users"][collab.account_id] == {"group": "collaborator", "hide": True}
    unhide = {"projects": {"project_id": pid, "users": {collab.account_id: {"hide": False}}}}
    assert _ok(_q(api, collab.api_key, unhide)) == {}
    message = _err(
        _q(
            api,
            owner.api_key,
            hide | {"projects": {"project_id": pid, "users": {collab.account_id: {"hide": True}}}},
        )
    )
    assert message == f"FATAL: error setting 'users' -- Error: {users_map.OTHERS}"
    promote = {"projects": {"project_id": pid, "users": {collab.account_id: {"group": "owner"}}}}
    assert _err(_q(api, owner.api_key, promote)) == (
        f"FATAL: error setting 'users' -- Error: {users_map.MEMBERSHIP}"
    )
    add = {"projects": {"project_id": pid, "users": {team["stranger"].account_id: {}}}}
    assert _err(_q(api, owner.api_key, add)) == (
        f"FATAL: error setting 'users' -- Error: {users_map.MEMBERSHIP}"
    )
    upgrade = {
        "projects": {"project_id": pid, "users": {owner.account_id: {"upgrades": {"cores": 4}}}}
    }
    assert _err(_q(api, owner.api_key, upgrade)) == (
        "FATAL: error setting 'users' -- Error: "
        "not enough upgrades available: asked for 4 more of 'cores', but 0 available"
    )


def test_projects_admin_sets_upgrades(
    api: ApiClient, admin_key: str, db: Database, team: dict[str, Any]
) -> None:
    pid, collab = team["project_id"], team["collab"]
    upgrade = {
        "projects": {
            "project_id": pid,
            "users": {collab.account_id: {"upgrades": {"cpu_shares": 1024}}},
        }
    }
    assert _ok(_q(api, admin_key, upgrade)) == {}
    rows = db.execute(
        select(project_users.c.upgrades).where(
            project_users.c.project_id == pid, project_users.c.account_id == collab.account_id
        )
    )
    assert rows[0].upgrades == {"cpu_shares": 1024}
    users = _ok(_q(api, collab.api_key, {"projects": {"project_id": pid, "users": None}}))
    assert users["projects"]["users"][collab.account_id]["upgrades"] == {"cpu_shares": 1024}
    # Repeating another member's upgrades verbatim is fine (only changes are checked).
    same = {
        "projects": {
            "project_id": pid,
            "users": {collab.account_id: {"upgrades": {"cpu_shares": 1024}}},
        }
    }
    assert _ok(_q(api, team["owner"].api_key, same)) == {}
    more = {
        "projects": {
            "project_id": pid,
            "users": {collab.account_id: {"upgrades": {"cpu_shares": 1}}},
        }
    }
    assert _err(_q(api, team["owner"].api_key, more)) == (
        f"FATAL: user '{team['owner'].account_id}' tried to change user "
        f"'{collab.account_id}' allocation toward a project"
    )


def test_projects_action_request(api: ApiClient, db: Database, team: dict[str, Any]) -> None:
    pid = team["project_id"]
    stop = {"projects": {"project_id": pid, "action_request": {"action": "stop"}}}
    assert _ok(_q(api, team["collab"].api_key, stop)) == {}
    row = db.execute(select(projects.c.action_request).where(projects.c.project_id == pid))[0]
    assert row.action_request["action"] == "stop"
    # The scheduler rewrites action_request when it finishes: let it finish first.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = db.execute(select(projects.c.action_state).where(projects.c.project_id == pid))
        if state[0].action_state == "done":
            break
        time.sleep(0.1)
    bogus = {"projects": {"project_id": pid, "action_request": {"action": "fly"}}}
    assert _ok(_q(api, team["owner"].api_key, bogus)) == {}
    got = _ok(
        _q(api, team["owner"].api_key, {"projects": {"project_id": pid, "action_request": None}})
    )
    assert got["projects"]["action_request"]["err"] == "unknown action 'fly'"
    assert _err(_q(api, team["stranger"].api_key, stop)) == "FATAL: user must be an admin"


def test_projects_set_errors(api: ApiClient, team: dict[str, Any]) -> None:
    key, pid = team["owner"].api_key, team["project_id"]
    assert _err(_q(api, key, {"projects": {"project_id": pid, "state": {"state": "running"}}})) == (
        "FATAL: changing projects.state not allowed"
    )
    assert (
        _err(_q(api, key, {"projects": {"title": "x"}}))
        == "FATAL: must specify projects.project_id"
    )
    missing = str(uuid.uuid4())
    assert _err(_q(api, key, {"projects": {"project_id": missing, "title": "x"}})) == (
        f"FATAL: unknown project_id '{missing}'"
    )
    assert _err(_q(api, key, {"projects": {"project_id": "abc", "title": "x"}})) == (
        "FATAL: unknown project_id 'abc'"
    )
    assert _err(_q(api, key, {"projects": {"project_id": pid, "last_started": None}})) == (
        "FATAL: user get query not allowed for projects.last_started"
    )
    assert (
        _err(
            _q(
                api,
                key,
                {"projects": {"project_id": pid, "title": "x"}},
                options=[{"delete": True}],
            )
        )
        == "FATAL: delete from projects not allowed"
    )
    assert _err(_q(api, key, {"projects": {"project_id": "abc", "title": None}})) == (
        "invalid project_id -- abc"
    )
    # Only project_id: nothing to do, answered before any check.
    assert _ok(_q(api, team["stranger"].api_key, {"projects": [{"project_id": pid}]})) == {}


def test_projects_window_and_options(api: ApiClient, db: Database, make_user: MakeUser) -> None:
    owner = make_user()
    old, new = _create(api, owner, "old"), _create(api, owner, "new")
    db.execute(
        update(projects)
        .where(projects.c.project_id == old)
        .values(last_edited=utcnow() - timedelta(days=30))
    )
    key = owner.api_key
    assert _ok(_q(api, key, {"projects": {"project_id": old, "title": None}})) == {}
    got = _ok(_q(api, key, {"projects": [{"project_id": None, "title": None}]}))
    assert got == {"projects": [{"project_id": new, "title": "new"}]}
    got = _ok(
        _q(
            api,
            key,
            {"projects_all": [{"project_id": None, "title": None}]},
            options=[{"order_by": "last_edited"}],
        )
    )
    assert [row["title"] for row in got["projects_all"]] == ["old", "new"]
    got = _ok(
        _q(
            api,
            key,
            {"projects_all": [{"project_id": None}]},
            options=[{"order_by": "-last_edited", "limit": 1}],
        )
    )
    assert got == {"projects_all": [{"project_id": new}]}
    since = (utcnow() - timedelta(days=1)).isoformat()
    got = _ok(
        _q(
            api,
            key,
            {"projects_all": [{"project_id": None, "last_edited": {">=": since, "<=": "{now}"}}]},
        )
    )
    assert [row["project_id"] for row in got["projects_all"]] == [new]
    got = _ok(_q(api, key, {"projects_all": [{"title": "old", "project_id": None}]}))
    assert got == {"projects_all": [{"title": "old", "project_id": old}]}
    assert _err(
        _q(api, key, {"projects_all": [{"project_id": None, "title": {"<": "z", "LIKE": "x"}}]})
    ) == ("FATAL: invalid comparison operator 'LIKE' for projects_all.title")


@pytest.mark.parametrize("table", ["projects", "projects_all"])
def test_projects_permission_matrix(
    api: ApiClient, admin_key: str, team: dict[str, Any], table: str
) -> None:
    pid = team["project_id"]
    read = {table: {"project_id": pid, "title": None}}
    listing = {table: [{"project_id": None}]}
    for who in ("owner", "collab"):
        key = team[who].api_key
        assert _ok(_q(api, key, read))[table]["project_id"] == pid
        assert {"project_id": pid} in _ok(_q(api, key, listing))[table]
        assert _ok(_q(api, key, {table: {"project_id": pid, "title": f"by {who}"}})) == {}
        assert _ok(_q(api, key, read))[table]["title"] == f"by {who}"
    stranger = team["stranger"].api_key
    assert _err(_q(api, stranger, read)) == "FATAL: you do not have read access to this project"
    assert _ok(_q(api, stranger, listing)) == {table: []}
    assert _err(_q(api, stranger, {table: {"project_id": pid, "title": "mine"}})) == (
        "FATAL: user must be an admin"
    )
    hide = {table: {"project_id": pid, "users": {"{account_id}": {"hide": True}}}}
    assert _err(_q(api, stranger, hide)) == "FATAL: user must be an admin"
    assert _ok(_q(api, admin_key, read))[table]["title"] == "by collab"
    # Admins see a given project, not every project in the list form.
    assert {"project_id": pid} not in _ok(_q(api, admin_key, listing))[table]
    assert _ok(_q(api, admin_key, {table: {"project_id": pid, "title": "by admin"}})) == {}
    assert _ok(_q(api, team["owner"].api_key, read))[table]["title"] == "by admin"


# --- public_paths ---------------------------------------------------------------------------


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def test_public_paths_publish_and_read(api: ApiClient, db: Database, team: dict[str, Any]) -> None:
    key, pid = team["owner"].api_key, team["project_id"]
    publish = {
        "public_paths": {
            "project_id": pid,
            "path": "A1/doc1.txt",
            "description": "Handout #1",
            "id": "ignored",
        }
    }
    assert _ok(_q(api, key, publish)) == {}
    assert (
        _ok(
            _q(
                api,
                key,
                {"public_paths": {"project_id": pid, "path": "A1/", "description": "Folder"}},
            )
        )
        == {}
    )
    got = _ok(
        _q(
            api,
            key,
            {
                "public_paths": [
                    {
                        "project_id": pid,
                        "path": None,
                        "id": None,
                        "description": None,
                        "compute_image": None,
                        "name": None,
                    }
                ]
            },
            options=[{"order_by": "path"}],
        )
    )
    assert got == {
        "public_paths": [
            {
                "project_id": pid,
                "path": "A1/",
                "id": _sha1(pid + "A1/"),
                "description": "Folder",
                "compute_image": "default",
            },
            {
                "project_id": pid,
                "path": "A1/doc1.txt",
                "id": _sha1(pid + "A1/doc1.txt"),
                "description": "Handout #1",
                "compute_image": "default",
            },
        ]
    }
    # Object form keeps null-valued keys.
    one = _ok(_q(api, key, {"public_paths": {"project_id": pid, "path": "A1/", "name": None}}))
    assert one == {"public_paths": {"project_id": pid, "path": "A1/", "name": None}}
    # Updating merges into the same row.
    assert (
        _ok(_q(api, key, {"public_paths": {"project_id": pid, "path": "A1/", "disabled": True}}))
        == {}
    )
    rows = db.execute(select(public_paths).where(public_paths.c.project_id == pid))
    assert {(row.path, row.disabled, row.description) for row in rows} == {
        ("A1/", True, "Folder"),
        ("A1/doc1.txt", False, "Handout #1"),
    }


def test_public_paths_errors(api: ApiClient, team: dict[str, Any]) -> None:
    key, pid = team["owner"].api_key, team["project_id"]
    assert _err(_q(api, key, {"public_paths": [{"path": None}]})) == (
        "FATAL: must specify project_id"
    )
    assert _err(_q(api, key, {"public_paths": {"path": "x"}})) == (
        "FATAL: error setting 'id' -- Error: project_id and path must be strings"
    )
    assert _err(_q(api, key, {"public_paths": {"project_id": pid, "path": "a", "vhost": "h"}})) == (
        "FATAL: changing public_paths.vhost not allowed"
    )
    assert _err(_q(api, key, {"public_paths": [{"project_id": pid, "token": None}]})) == (
        "FATAL: user get query not allowed for public_paths.token"
    )
    assert (
        _ok(_q(api, key, {"public_paths": {"project_id": pid, "path": "a", "name": "Notes"}})) == {}
    )
    assert _err(
        _q(api, key, {"public_paths": {"project_id": pid, "path": "b", "name": "notes"}})
    ) == (
        "There is already a public path in this project with the same name.  "
        "Names are not case sensitive."
    )
    assert _err(
        _q(api, key, {"public_paths": {"project_id": pid, "path": "d", "name": "Share"}})
    ) == ('Error: name "Share" is reserved -- not available')
    assert _err(
        _q(api, key, {"public_paths": {"project_id": pid, "path": "c", "name": "a b"}})
    ) == (
        "Error: name must contain only a-z,A-Z,0-9, . or -, and not start with hyphen or have "
        "spaces."
    )


def test_public_paths_permission_matrix(
    api: ApiClient, admin_key: str, team: dict[str, Any]
) -> None:
    pid = team["project_id"]
    owner = team["owner"].api_key
    _ok(_q(api, owner, {"public_paths": {"project_id": pid, "path": "open.txt"}}))
    _ok(_q(api, owner, {"public_paths": {"project_id": pid, "path": "gone.txt", "disabled": True}}))
    listing = {"public_paths": [{"project_id": pid, "path": None}]}

    def paths(key: str) -> set[str]:
        return {row["path"] for row in _ok(_q(api, key, listing))["public_paths"]}

    assert paths(owner) == paths(team["collab"].api_key) == {"open.txt", "gone.txt"}
    assert paths(admin_key) == {"open.txt", "gone.txt"}
    # Anyone may read a project's published paths, but not withdrawn ones.
    assert paths(team["stranger"].api_key) == {"open.txt"}
    for who, key in (("collab", team["collab"].api_key), ("admin", admin_key)):
        assert _ok(_q(api, key, {"public_paths": {"project_id": pid, "path": f"{who}.txt"}})) == {}
    stranger = team["stranger"].api_key
    for path in ("open.txt", "new.txt"):
        assert _err(
            _q(api, stranger, {"public_paths": {"project_id": pid, "path": path, "disabled": True}})
        ) == ("FATAL: user must be an admin")
    assert paths(owner) == {"open.txt", "gone.txt", "collab.txt", "admin.txt"}
