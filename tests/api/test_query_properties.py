"""Property test of `query` over real HTTP: whatever a stranger B sends (gets and sets over
every served table, random fields, values, forms and options, ids borrowed from A), B never
sees A's private data and never changes A's rows; the server answers 200 or 400, never 500."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import or_, select

from calchub.db.tables import (
    accounts,
    mentions,
    project_invite_tokens,
    project_log,
    project_users,
    projects,
    public_paths,
)
from calchub.userquery.registry import TABLES
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]

# Unique per run, so that no random value or echoed filter can match them by chance.
TAG = uuid.uuid4().hex[:12]
SECRET_TITLE = f"secret-title-{TAG}"
SECRET_DESCRIPTION = f"secret-description-{TAG}"
SECRET_THEME = f"secret-theme-{TAG}"
SECRET_PATH_DESCRIPTION = f"secret-withdrawn-path-{TAG}"
SECRET_FIRST_NAME = f"SecretFirst{TAG}"
PUBLIC_PATH_DESCRIPTION = f"public-path-{TAG}"
SECRET_LOG_EVENT = f"secret-log-{TAG}"
SECRET_MENTION = f"secret-mention-{TAG}"
SECRET_TOKEN = f"secret-token-{TAG}"
SECRET_ENV = f"secret-env-{TAG}"

# Fields calchub does not serve, so that the refusal paths are exercised too.
JUNK_FIELDS = [
    "password_hash",
    "email_address_before_delete",
    "uid",
    "last_started",
    "vhost",
    "run_quota",
]


@pytest.fixture
def world(api: ApiClient, db: Database, make_user: MakeUser) -> dict[str, Any]:
    owner = make_user(first_name=SECRET_FIRST_NAME)
    stranger = make_user()

    def ok(key: str, event: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = api.call(event, key, body)
        assert reply.status == 200 and reply.event not in (None, "error"), reply.body
        return dict(reply.body)

    owned = ok(
        owner.api_key,
        "create_project",
        {"title": SECRET_TITLE, "description": SECRET_DESCRIPTION, "start": False},
    )["project_id"]
    strangers = ok(stranger.api_key, "create_project", {"title": "B's own"})["project_id"]
    ok(
        owner.api_key,
        "query",
        {"query": {"accounts": {"editor_settings": {"theme": SECRET_THEME, "tab_size": 7}}}},
    )
    for path, description, disabled in (
        ("pub/", PUBLIC_PATH_DESCRIPTION, False),
        ("withdrawn/", SECRET_PATH_DESCRIPTION, True),
    ):
        ok(
            owner.api_key,
            "query",
            {
                "query": {
                    "public_paths": {
                        "project_id": owned,
                        "path": path,
                        "description": description,
                        "disabled": disabled,
                    }
                }
            },
        )
    for table, row in (
        ("project_log", {"project_id": owned, "event": {"event": SECRET_LOG_EVENT}}),
        (
            "mentions",
            {
                "project_id": owned,
                "path": "a.md",
                "target": owner.account_id,
                "description": SECRET_MENTION,
            },
        ),
        ("project_invite_tokens", {"project_id": owned, "token": SECRET_TOKEN}),
        ("projects", {"project_id": owned, "env": {"SECRET": SECRET_ENV}}),
    ):
        ok(owner.api_key, "query", {"query": {table: row}})
    return {
        "owner": owner,
        "stranger": stranger,
        "owned": owned,
        "strangers": strangers,
        "secrets": [
            owner.email,
            SECRET_TITLE,
            SECRET_DESCRIPTION,
            SECRET_THEME,
            SECRET_PATH_DESCRIPTION,
            SECRET_FIRST_NAME,
            SECRET_LOG_EVENT,
            SECRET_MENTION,
            SECRET_TOKEN,
            SECRET_ENV,
        ],
    }


# Anyone may ask to join a project (project_invite_requests), for themselves only: that
# column is checked on its own.
PROJECT_COLUMNS = [c for c in projects.c if c.name != "invite_requests"]


def invite_requests(db: Database, project_id: str) -> dict[str, Any]:
    rows = db.execute(select(projects.c.invite_requests).where(projects.c.project_id == project_id))
    return dict(rows[0].invite_requests or {})


def snapshot(db: Database, owner: User, project_id: str) -> dict[str, list[str]]:
    """Every row of the owner's account and project, as sorted text."""
    statements = {
        "accounts": select(accounts).where(accounts.c.account_id == owner.account_id),
        "projects": select(*PROJECT_COLUMNS).where(projects.c.project_id == project_id),
        "project_users": select(project_users).where(
            or_(
                project_users.c.project_id == project_id,
                project_users.c.account_id == owner.account_id,
            )
        ),
        "public_paths": select(public_paths).where(public_paths.c.project_id == project_id),
        "project_log": select(project_log).where(project_log.c.project_id == project_id),
        "mentions": select(mentions).where(mentions.c.project_id == project_id),
        "project_invite_tokens": select(project_invite_tokens).where(
            project_invite_tokens.c.project_id == project_id
        ),
    }
    return {
        name: sorted(repr(tuple(row)) for row in db.execute(statement))
        for name, statement in statements.items()
    }


def scalars(ids: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(ids),
        st.sampled_from(["{account_id}", "{now}", "{project_id}", "", "x'; --", "2021-01-01"]),
        st.text(max_size=8),
        st.integers(min_value=-3, max_value=10**6),
        st.booleans(),
    )


def values(ids: list[str]) -> st.SearchStrategy[Any]:
    plain = scalars(ids)
    return st.one_of(
        plain,
        st.dictionaries(
            st.sampled_from([*ids, "{account_id}", "theme", "hide"]), plain, max_size=2
        ),
        st.builds(
            lambda op, v: {op: v},
            st.sampled_from(["=", "!=", ">=", "<", "like", "<>"]),
            plain,
        ),
        st.lists(plain, max_size=2),
        st.just({"{account_id}": {"hide": True}}),
        st.builds(lambda a: {a: {"group": "owner"}}, st.sampled_from(ids)),
    )


@st.composite
def table_query(draw: st.DrawFn, ids: list[str]) -> dict[str, Any]:
    table = draw(st.sampled_from(sorted(TABLES)))
    fields = [*TABLES[table].get_fields, *TABLES[table].set_fields]
    # Unserved fields only now and then, so that most queries get past the field checks.
    if draw(st.sampled_from([True, False, False, False, False])):
        fields += JUNK_FIELDS
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=5, unique=True))
    # The id fields are drawn more often, to aim queries at A's rows.
    keys = [k for k in ("project_id", *TABLES[table].primary_key) if k in fields]
    id_field = draw(st.sampled_from(keys)) if keys else "project_id"
    if draw(st.booleans()):
        chosen = [id_field, *[f for f in chosen if f != id_field]]
    row = {}
    for name in chosen:
        if name == id_field and draw(st.booleans()):
            row[name] = draw(st.sampled_from(ids))
        else:
            row[name] = draw(st.one_of(st.none(), values(ids)))
    return {table: [row] if draw(st.booleans()) else row}


@st.composite
def options(draw: st.DrawFn, ids: list[str]) -> Any:
    columns = sorted({f for spec in TABLES.values() for f in spec.get_fields})
    option = st.one_of(
        st.builds(lambda n: {"limit": n}, st.one_of(st.integers(-2, 300), st.just("5"))),
        st.builds(
            lambda desc, col: {"order_by": ("-" if desc else "") + col},
            st.booleans(),
            st.sampled_from([*columns, "password_hash", "x'y"]),
        ),
        st.builds(lambda flag: {"set": flag}, st.booleans()),
        # Attempted sudo into A's (or a junk) account.
        st.builds(lambda a: {"account_id": a}, st.sampled_from(ids)),
        st.just({"delete": True}),
    )
    # Mostly well-formed option lists; a bare object now and then.
    shape = draw(st.sampled_from(["list"] * 6 + ["none"] * 3 + ["object"]))
    if shape == "object":
        return {"limit": 1}
    return None if shape == "none" else draw(st.lists(option, max_size=3))


def test_stranger_never_reads_or_changes_owners_data(
    api: ApiClient, db: Database, world: dict[str, Any]
) -> None:
    owner, stranger = world["owner"], world["stranger"]
    ids = [
        owner.account_id,
        world["owned"],
        hashlib.sha1((world["owned"] + "pub/").encode()).hexdigest(),  # noqa: S324 - CoCalc's id
        stranger.account_id,
        world["strangers"],
        str(uuid.uuid4()),
        "not-a-uuid",
    ]
    before = snapshot(db, owner, world["owned"])
    assert before["public_paths"] and before["project_users"]

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        query=st.one_of(
            table_query(ids),
            table_query(ids),
            table_query(ids),
            st.lists(table_query(ids), min_size=2, max_size=2),
        ),
        opts=options(ids),
    )
    def check(query: Any, opts: Any) -> None:
        body: dict[str, Any] = {"query": query}
        if opts is not None:
            body["options"] = opts
        reply = api.call("query", stranger.api_key, body)
        assert reply.status in (200, 400), (body, reply.status, reply.body)
        assert isinstance(reply.body, dict), (body, reply.body)
        text = json.dumps(reply.body)
        for secret in world["secrets"]:
            assert secret not in text, (body, reply.body)
        assert snapshot(db, owner, world["owned"]) == before, body
        assert set(invite_requests(db, world["owned"])) <= {stranger.account_id}, body

    check()
