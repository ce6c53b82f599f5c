"""`query` over real HTTP for rows that belong to one project: project_invite_tokens (and
redeeming them with add_collaborator), project_log / project_log_all and mentions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from calchub.db.tables import project_invite_tokens, project_log, project_users
from calchub.db.types import utcnow
from tests.api.queries import create, err, make_team, ok, q
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]


@pytest.fixture
def team(api: ApiClient, db: Database, make_user: MakeUser) -> dict[str, Any]:
    return make_team(api, db, make_user)


def _iso(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat().replace("+00:00", "Z")


# --- project_invite_tokens --------------------------------------------------------------------


def test_invite_tokens_set_get_and_redeem(
    api: ApiClient, db: Database, team: dict[str, Any], admin_key: str
) -> None:
    owner, collab, viewer, stranger, pid = (
        team[k] for k in ("owner", "collab", "viewer", "stranger", "project_id")
    )
    token = uuid.uuid4().hex
    row = {"project_id": pid, "token": token, "expires": _iso(timedelta(days=1)), "usage_limit": 1}
    assert ok(q(api, collab.api_key, {"project_invite_tokens": row})) == {}
    query = {
        "project_invite_tokens": [
            {"project_id": pid, "token": None, "counter": None, "usage_limit": None}
        ]
    }
    for key in (owner.api_key, collab.api_key, admin_key):
        assert ok(q(api, key, query)) == {
            "project_invite_tokens": [
                {"project_id": pid, "token": token, "counter": 0, "usage_limit": 1}
            ]
        }
    # Readers who cannot write never see the tokens that let people in as collaborators.
    for key in (viewer.api_key, stranger.api_key):
        assert err(q(api, key, query)) == "FATAL: you do not have read access to this project"
        assert ok(q(api, key, {"project_invite_tokens": [{"token": None}]})) == {
            "project_invite_tokens": []
        }
        assert err(q(api, key, {"project_invite_tokens": {**row, "usage_limit": 9}})) == (
            "FATAL: user must be an admin"
        )
    # The token works with add_collaborator, once.
    reply = api.call(
        "add_collaborator",
        stranger.api_key,
        {"account_id": stranger.account_id, "token_id": token},
    )
    assert reply.event == "success", reply.body
    group = db.execute(
        select(project_users.c.group).where(
            project_users.c.project_id == pid, project_users.c.account_id == stranger.account_id
        )
    )
    assert group[0].group == "collaborator"
    counter = db.execute(
        select(project_invite_tokens.c.counter).where(project_invite_tokens.c.token == token)
    )
    assert counter[0].counter == 1


def test_invite_token_errors(api: ApiClient, team: dict[str, Any]) -> None:
    owner, pid = team["owner"], team["project_id"]
    token = uuid.uuid4().hex
    assert (
        ok(q(api, owner.api_key, {"project_invite_tokens": {"project_id": pid, "token": token}}))
        == {}
    )
    assert (
        err(
            q(
                api,
                owner.api_key,
                {"project_invite_tokens": {"project_id": pid, "token": token, "counter": 0}},
            )
        )
        == "FATAL: changing project_invite_tokens.counter not allowed"
    )
    # A token of one project never moves to another (CoCalc moved it).
    other = create(api, owner, "other")
    assert (
        err(q(api, owner.api_key, {"project_invite_tokens": {"project_id": other, "token": token}}))
        == "FATAL: project_invite_tokens.token belongs to another project"
    )
    assert (
        err(q(api, owner.api_key, {"project_invite_tokens": {"project_id": pid, "usage_limit": 3}}))
        == "FATAL: query must specify (primary) key 'token'"
    )
    assert (
        err(q(api, owner.api_key, {"project_invite_tokens": {"project_id": pid, "token": " "}}))
        == "FATAL: error setting 'token' -- Error: token must be a non-empty string"
    )
    assert (
        err(
            q(
                api,
                owner.api_key,
                {"project_invite_tokens": {"project_id": pid, "token": token, "expires": "soon"}},
            )
        )
        == 'error: invalid input syntax for type timestamp: "soon"'
    )
    assert (
        err(
            q(
                api,
                owner.api_key,
                {"project_invite_tokens": {"project_id": pid, "token": token}},
                options=[{"delete": True}],
            )
        )
        == "FATAL: delete from project_invite_tokens not allowed"
    )


def test_invite_tokens_newest_first(api: ApiClient, team: dict[str, Any]) -> None:
    owner, pid = team["owner"], team["project_id"]
    tokens = [uuid.uuid4().hex for _ in range(3)]
    for age, token in enumerate(tokens):
        created = _iso(-timedelta(hours=age))
        row = {"project_id": pid, "token": token, "created": created}
        assert ok(q(api, owner.api_key, {"project_invite_tokens": row})) == {}
    got = ok(q(api, owner.api_key, {"project_invite_tokens": [{"project_id": pid, "token": None}]}))
    assert [row["token"] for row in got["project_invite_tokens"]] == tokens


# --- project_log ------------------------------------------------------------------------------


def test_project_log_append_read_and_access(
    api: ApiClient, db: Database, team: dict[str, Any], admin_key: str
) -> None:
    owner, collab, viewer, stranger, pid = (
        team[k] for k in ("owner", "collab", "viewer", "stranger", "project_id")
    )
    entry = {"project_id": pid, "event": {"event": "open", "filename": "a.txt"}}
    # account_id is always the caller, whatever is sent.
    forged = {**entry, "account_id": owner.account_id}
    assert ok(q(api, collab.api_key, {"project_log": forged})) == {}
    rows = db.execute(select(project_log).where(project_log.c.project_id == pid))
    assert len(rows) == 1 and rows[0].account_id == collab.account_id
    assert rows[0].time is not None and rows[0].event == entry["event"]
    read = {"project_log": [{"project_id": pid, "id": None, "account_id": None, "event": None}]}
    for key in (owner.api_key, collab.api_key, viewer.api_key, admin_key):
        got = ok(q(api, key, read))["project_log"]
        assert got == [
            {
                "project_id": pid,
                "id": rows[0].id,
                "account_id": collab.account_id,
                "event": entry["event"],
            }
        ]
    assert err(q(api, stranger.api_key, read)) == (
        "FATAL: you do not have read access to this project"
    )
    assert ok(q(api, stranger.api_key, {"project_log": [{"id": None, "event": None}]})) == {
        "project_log": []
    }
    assert err(q(api, stranger.api_key, {"project_log": entry})) == "FATAL: user must be an admin"
    assert err(q(api, viewer.api_key, {"project_log": entry})) == "FATAL: user must be an admin"


def test_project_log_entries_merge_and_belong_to_their_author(
    api: ApiClient, db: Database, team: dict[str, Any]
) -> None:
    owner, collab, pid = team["owner"], team["collab"], team["project_id"]
    log_id = str(uuid.uuid4())
    first = {"id": log_id, "project_id": pid, "event": {"event": "start", "step": 1}}
    assert ok(q(api, owner.api_key, {"project_log": first})) == {}
    more = {"id": log_id, "project_id": pid, "event": {"step": 2, "done": True}}
    assert ok(q(api, owner.api_key, {"project_log": more})) == {}
    stored = db.execute(select(project_log.c.event).where(project_log.c.id == log_id))
    assert stored[0].event == {"event": "start", "step": 2, "done": True}
    assert err(q(api, collab.api_key, {"project_log": {**more, "event": {"x": 1}}})) == (
        "FATAL: project_log.id belongs to another account's entry"
    )
    other = create(api, owner, "other")
    assert err(q(api, owner.api_key, {"project_log": {**more, "project_id": other}})) == (
        "FATAL: project_log.id belongs to another project"
    )
    assert err(q(api, owner.api_key, {"project_log": {**more, "event": "text"}})) == (
        "FATAL: error setting 'event' -- Error: project_log.event must be an object"
    )


def test_project_log_order_window_and_limit(api: ApiClient, team: dict[str, Any]) -> None:
    owner, pid = team["owner"], team["project_id"]
    ages = {
        "recent": timedelta(minutes=5),
        "older": timedelta(days=3),
        "ancient": timedelta(days=90),
    }
    for name, age in ages.items():
        entry = {"project_id": pid, "time": _iso(-age), "event": {"event": name}}
        assert ok(q(api, owner.api_key, {"project_log": entry})) == {}
    read = [{"project_id": pid, "event": None, "time": None}]
    recent = ok(q(api, owner.api_key, {"project_log": read}))["project_log"]
    assert [row["event"]["event"] for row in recent] == ["recent", "older"]
    every = ok(q(api, owner.api_key, {"project_log_all": read}))["project_log_all"]
    assert [row["event"]["event"] for row in every] == ["recent", "older", "ancient"]
    assert all(row["time"].endswith("Z") for row in every)
    oldest_first = ok(
        q(
            api,
            owner.api_key,
            {"project_log_all": read},
            options=[{"order_by": "time"}, {"limit": 1}],
        )
    )["project_log_all"]
    assert [row["event"]["event"] for row in oldest_first] == ["ancient"]
    since = {"project_id": pid, "event": None, "time": {">=": _iso(-timedelta(days=1))}}
    assert len(ok(q(api, owner.api_key, {"project_log_all": [since]}))["project_log_all"]) == 1


# --- mentions ---------------------------------------------------------------------------------


def test_mentions(api: ApiClient, team: dict[str, Any], admin_key: str) -> None:
    owner, collab, stranger, pid = (team[k] for k in ("owner", "collab", "stranger", "project_id"))
    mention = {
        "project_id": pid,
        "path": "notes.md",
        "target": collab.account_id,
        "source": stranger.account_id,
        "priority": 2,
        "description": "please look",
    }
    assert ok(q(api, owner.api_key, {"mentions": mention})) == {}
    read = {
        "mentions": [
            {"project_id": pid, "path": None, "source": None, "target": None, "time": None}
        ]
    }
    for key in (owner.api_key, collab.api_key, admin_key):
        rows = ok(q(api, key, read))["mentions"]
        assert len(rows) == 1
        # The source is whoever made the mention.
        assert rows[0]["source"] == owner.account_id and rows[0]["target"] == collab.account_id
    assert (
        err(q(api, stranger.api_key, read)) == "FATAL: you do not have read access to this project"
    )
    assert err(q(api, stranger.api_key, {"mentions": mention})) == "FATAL: user must be an admin"
    # Marking it read merges into users; the row is found by its whole key.
    when = rows[0]["time"]
    seen = {
        "project_id": pid,
        "path": "notes.md",
        "target": collab.account_id,
        "time": when,
        "users": {collab.account_id: {"read": True}},
    }
    assert ok(q(api, collab.api_key, {"mentions": seen})) == {}
    got = ok(q(api, owner.api_key, {"mentions": [{"project_id": pid, "users": None}]}))
    assert got == {"mentions": [{"project_id": pid, "users": {collab.account_id: {"read": True}}}]}
    # Older than 14 days: no longer listed.
    old = {**mention, "path": "old.md", "time": _iso(-timedelta(days=20))}
    assert ok(q(api, owner.api_key, {"mentions": old})) == {}
    paths = [row["path"] for row in ok(q(api, owner.api_key, read))["mentions"]]
    assert paths == ["notes.md"]
    assert err(q(api, owner.api_key, {"mentions": {**mention, "error": "x"}})) == (
        "FATAL: changing mentions.error not allowed"
    )
