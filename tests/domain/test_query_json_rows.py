"""Project listings the database writes as JSON text (userquery/json_rows.py) answer exactly
what the general path answers: the same rows, keys in the same order, the same values, for
many field combinations, options and kinds of membership, on the backend under test."""

from __future__ import annotations

import copy
import json
import os
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import insert, null, select, update

from calchub.api.responses import json_bytes
from calchub.config import Settings
from calchub.db import driver_reads, json_sql
from calchub.db.driver_reads import read_text
from calchub.db.tables import project_users, projects
from calchub.hub import Hub
from calchub.json_text import JsonText
from calchub.userquery.engine import run_query
from tests.domain.conftest import MakePerson, MakeProject, Person
from tests.scratch import scratch_folder

# What the database can write; settings (a default that fills in) and status (the
# runtime's) stay with the general path.
WRITTEN = [
    "project_id",
    "name",
    "title",
    "description",
    "users",
    "invite",
    "invite_requests",
    "deleted",
    "host",
    "site_license",
    "state",
    "last_edited",
    "last_active",
    "action_request",
    "course",
    "compute_image",
    "created",
    "env",
]


@pytest_asyncio.fixture(scope="module")
async def hub(domain_database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hub]:
    """The fake runtime only: nothing here runs a project."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("json-rows"),
        database_url=domain_database,
        runtime="fake",
        projects_root=str(scratch_folder("p")),
        runtime_root=str(scratch_folder("r")),
        install_registry=os.environ["CALCHUB_INSTALL_REGISTRY"],
    )
    hub = await Hub.open(settings)
    try:
        yield hub
    finally:
        await hub.close()


async def _member(
    hub: Hub, project_id: str, person: Person, group: str, hide: bool = False, upgrades: Any = None
) -> None:
    async with hub.engine.begin() as conn:
        await conn.execute(
            insert(project_users).values(
                project_id=project_id,
                account_id=person.actor.account_id,
                group=group,
                hide=hide,
                upgrades=upgrades,
                added=datetime.now(UTC),
            )
        )


async def _change(hub: Hub, project_id: str, **values: Any) -> None:
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(projects).where(projects.c.project_id == project_id).values(**values)
        )


@pytest_asyncio.fixture
async def team(hub: Hub, make_person: MakePerson, make_project: MakeProject) -> dict[str, Any]:
    """Projects of every kind `me` can see, and one it cannot."""
    me, other, viewer, invited = [await make_person() for _ in range(4)]
    mine = await make_project(me, "Plain 'quoted' \"title\"")
    shared = await make_project(other, "Théorème ✓ \n\t\\ \u0001 end")
    deleted = await make_project(me, "Deleted")
    hidden = await make_project(me, "Hidden by me")
    named = await make_project(me, "Named")
    hers = await make_project(other, "Not mine")
    await _member(hub, mine, other, "collaborator", hide=True, upgrades={"cores": 1, "memory": 512})
    await _member(hub, mine, viewer, "viewer", upgrades={})
    await _member(hub, mine, invited, "invited_collaborator")
    await _member(hub, shared, me, "collaborator", upgrades=null())
    await _member(hub, shared, viewer, "viewer", upgrades=None)  # JSON's null
    await _change(hub, deleted, deleted=True, last_edited=None, description="")
    await _change(
        hub,
        named,
        name="my-project",
        description="with a description",
        run_state_error="it failed",
        course={"project_id": named, "type": "student", "paid": "2024-01-02T03:04:05.678Z"},
        env={"A": "1", "B": [1, 2.5, None, True]},
        last_active={me.actor.account_id: "2024-05-06T07:08:09.999Z"},
        site_license={},
        invite_requests=None,
        action_request={"action": "test", "time": "2024-01-01T00:00:00.000Z"},
        last_edited=datetime(2024, 2, 3, 4, 5, 6, 999999, tzinfo=UTC),
        created=datetime(2023, 1, 1, tzinfo=UTC),
    )
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(project_users)
            .where(
                project_users.c.project_id == hidden,
                project_users.c.account_id == me.actor.account_id,
            )
            .values(hide=True, upgrades={"network": 1})
        )
    return {
        "me": me,
        "other": other,
        "visible": {mine, shared, deleted, hidden, named},
        "hers": hers,
        "named": named,
    }


async def _both(hub: Hub, person: Person, query: Any, options: Any = None) -> tuple[Any, Any, bool]:
    """The answer with the database's JSON allowed and without, as a client reads each; and
    whether the first came as JSON text."""
    fast = await run_query(
        hub, person.actor, copy.deepcopy(query), copy.deepcopy(options), None, None, True
    )
    general = await run_query(
        hub, person.actor, copy.deepcopy(query), copy.deepcopy(options), None, None
    )
    written = any(isinstance(value, JsonText) for value in fast.values())
    return json.loads(json_bytes(fast)), json.loads(json_bytes(general)), written


def _same(fast: list[Any], general: list[Any], ordered: bool) -> None:
    if not ordered:
        fast = sorted(fast, key=lambda row: json.dumps(row, sort_keys=True))
        general = sorted(general, key=lambda row: json.dumps(row, sort_keys=True))
    assert [list(row) for row in fast] == [list(row) for row in general]
    assert fast == general


def _combinations() -> list[list[str]]:
    rng = random.Random(7)
    picks = [["project_id", name] for name in WRITTEN[1:]]
    picks += [WRITTEN, list(reversed(WRITTEN)), ["users"], ["title", "users", "last_edited"]]
    picks += [rng.sample(WRITTEN, rng.randint(1, len(WRITTEN))) for _ in range(20)]
    return picks


@pytest.mark.parametrize("table", ["projects_all", "projects"])
async def test_every_field_combination_answers_as_the_general_path(
    hub: Hub, team: dict[str, Any], table: str
) -> None:
    for names in _combinations():
        query = {table: [dict.fromkeys(names)]}
        fast, general, written = await _both(hub, team["me"], query)
        assert written, names
        # projects_all has no order; `projects` orders by last_edited, which may tie.
        _same(fast[table], general[table], ordered=False)
        if "project_id" in names and table == "projects_all":
            assert {row["project_id"] for row in fast[table]} == team["visible"]


async def test_collaborators_see_the_same_as_the_general_path(
    hub: Hub, team: dict[str, Any]
) -> None:
    fast, general, written = await _both(
        hub, team["other"], {"projects_all": [dict.fromkeys(WRITTEN)]}
    )
    assert written
    _same(fast["projects_all"], general["projects_all"], ordered=False)
    mine = [row for row in fast["projects_all"] if row["project_id"] not in {team["hers"]}]
    assert any(row["users"][team["other"].actor.account_id].get("hide") for row in mine)


@pytest.mark.parametrize(
    "options",
    [
        [{"order_by": "title"}],
        [{"order_by": "-title"}],
        [{"order_by": "-last_edited"}],
        [{"order_by": "last_edited"}],
        [{"order_by": "title", "limit": 2}],
        [{"order_by": "-created", "limit": 3}],
        [{"limit": 0}],
        [{"limit": "2"}, {"order_by": "name"}],
    ],
)
async def test_options_answer_as_the_general_path(
    hub: Hub, team: dict[str, Any], options: list[dict[str, Any]]
) -> None:
    for table in ("projects_all", "projects"):
        query = {table: [dict.fromkeys(["project_id", "title", "users", "last_edited", "name"])]}
        fast, general, written = await _both(hub, team["me"], query, options)
        assert written
        _same(fast[table], general[table], ordered=True)


@pytest.mark.parametrize(
    "filters",
    [
        {"deleted": True},
        {"deleted": False},
        {"title": "Named"},
        {"last_edited": {">=": "2024-01-01T00:00:00Z"}},
        {"name": "my-project"},
    ],
)
async def test_filters_in_sql_answer_as_the_general_path(
    hub: Hub, team: dict[str, Any], filters: dict[str, Any]
) -> None:
    query = {"projects_all": [{**dict.fromkeys(["project_id", "title", "users"]), **filters}]}
    fast, general, written = await _both(hub, team["me"], query)
    assert written
    _same(fast["projects_all"], general["projects_all"], ordered=False)
    assert fast["projects_all"]


@pytest.mark.parametrize(
    "query",
    [
        {"projects_all": [{"project_id": None, "settings": None}]},
        {"projects_all": [{"project_id": None, "status": None}]},
        {"projects_all": [{"project_id": None, "course": {"type": "student"}}]},
        {"projects_all": {"project_id": None, "title": None}},
    ],
)
async def test_what_the_database_cannot_write_takes_the_general_path(
    hub: Hub, team: dict[str, Any], query: dict[str, Any]
) -> None:
    fast, general, written = await _both(hub, team["me"], query)
    assert not written
    assert fast == general


async def test_one_project_by_id_and_an_admin_listing_answer_alike(
    hub: Hub, team: dict[str, Any], make_person: MakePerson
) -> None:
    named = team["named"]
    query = {"projects_all": [{"project_id": named, **dict.fromkeys(WRITTEN[1:])}]}
    fast, general, written = await _both(hub, team["me"], query)
    assert written and len(fast["projects_all"]) == 1
    _same(fast["projects_all"], general["projects_all"], ordered=True)
    admin = await make_person(admin=True)
    query = {"projects_admin": [{"project_id": named, **dict.fromkeys(WRITTEN[1:])}]}
    fast, general, written = await _both(hub, admin, query)
    assert written
    _same(fast["projects_admin"], general["projects_admin"], ordered=True)


async def test_a_removed_membership_is_seen_on_the_next_listing(
    hub: Hub, team: dict[str, Any]
) -> None:
    query = {"projects_all": [{"project_id": None, "users": None}]}
    before, _, _ = await _both(hub, team["other"], query)
    assert team["named"] not in {row["project_id"] for row in before["projects_all"]}
    mine = next(iter(team["visible"] - {team["named"]}))
    async with hub.engine.begin() as conn:
        await conn.execute(
            project_users.delete().where(
                project_users.c.project_id.in_(team["visible"]),
                project_users.c.account_id == team["other"].actor.account_id,
            )
        )
    after, general, _ = await _both(hub, team["other"], query)
    assert mine not in {row["project_id"] for row in after["projects_all"]}
    assert after == general


async def test_prebuilt_reads_take_each_statements_own_values(
    hub: Hub, team: dict[str, Any]
) -> None:
    """driver_reads compiles a shape once and runs it on the driver: each run must answer
    for its own parameter values (text, boolean, time), as SQLAlchemy's execution does."""
    dialect = hub.engine.dialect
    ids = projects.c.project_id

    def listing(*where: Any) -> Any:
        return select(json_sql.joined(ids, dialect.name)).where(*where)

    statements = [
        listing(projects.c.title == "Named"),
        listing(projects.c.title == "Deleted"),
        listing(projects.c.title == "no such title"),
        listing(projects.c.deleted.is_(True), ids.in_(team["visible"])),
        listing(projects.c.deleted == False, ids.in_(team["visible"])),  # noqa: E712
        listing(projects.c.last_edited >= datetime(2024, 1, 1, tzinfo=UTC), ids == team["named"]),
        listing(projects.c.last_edited >= datetime(2024, 3, 1, tzinfo=UTC), ids == team["named"]),
    ]
    async with hub.engine.connect() as conn:
        for statement in statements * 2:
            expected = (await conn.execute(statement)).scalar()
            assert await read_text(conn, statement) == expected
    # The text, boolean and time shapes run on the driver; a list expanded at execution
    # (`in_` of values) goes through SQLAlchemy.
    assert driver_reads._prepared(statements[0], dialect) is not None
    assert driver_reads._prepared(statements[5], dialect) is not None
    assert driver_reads._prepared(statements[3], dialect) is None
    # Other tests' teams have projects of the same titles.
    answers = [set((await _read(hub, s) or "").split(",")) - {""} for s in statements[:3]]
    assert team["named"] in answers[0] and team["named"] not in answers[1] and not answers[2]


async def _read(hub: Hub, statement: Any) -> str | None:
    async with hub.engine.connect() as conn:
        return await read_text(conn, statement)
