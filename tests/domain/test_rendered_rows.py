"""Listings reuse the rows the database wrote for an earlier listing while the rows'
versions are unchanged (userquery/rendered_rows.py): a trigger moves a project's version at
every change a get could show, made anywhere (another hub, plain SQL), and the next listing
on every hub shows it. On the backend under test."""

from __future__ import annotations

import copy
import json
import os
import typing
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import delete, insert, select, text, update

from calchub.access import membership_of
from calchub.api.responses import json_bytes
from calchub.config import Settings
from calchub.db.driver_reads import read_plain_rows
from calchub.db.json_ops import one_of_json
from calchub.db.tables import project_users, projects
from calchub.hub import Hub
from calchub.json_text import JsonText
from calchub.projects.store import insert_project
from calchub.userquery import rendered_rows
from calchub.userquery.engine import run_query
from calchub.userquery.json_rows import row_json
from calchub.userquery.registry import TABLES
from calchub.userquery.rendered_rows import RenderedRows
from tests.domain.conftest import MakePerson, MakeProject, Person
from tests.scratch import scratch_folder

FIELDS = ["project_id", "title", "users", "last_edited", "deleted", "state"]
# Columns no get shows: writing them leaves the version (and the reused rows) alone.
BOOKKEEPING = {"last_activity", "quota_inputs", "action_state", "row_version"}


async def _open_hub(database: str, folder: Any) -> Hub:
    """The fake runtime only: nothing here runs a project."""
    settings = Settings(
        data_dir=folder,
        database_url=database,
        runtime="fake",
        projects_root=str(scratch_folder("p")),
        runtime_root=str(scratch_folder("r")),
        install_registry=os.environ["CALCHUB_INSTALL_REGISTRY"],
    )
    return await Hub.open(settings)


@pytest_asyncio.fixture(scope="module")
async def hub(domain_database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hub]:
    opened = await _open_hub(domain_database, tmp_path_factory.mktemp("rows-a"))
    try:
        yield opened
    finally:
        await opened.close()


@pytest_asyncio.fixture(scope="module")
async def other_hub(
    domain_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hub]:
    opened = await _open_hub(domain_database, tmp_path_factory.mktemp("rows-b"))
    try:
        yield opened
    finally:
        await opened.close()


async def _listing(
    hub: Hub, person: Person, table: str = "projects_all", options: Any = None
) -> list[dict[str, Any]]:
    """The listing as a client reads it; it must have come as the database's JSON text."""
    query = {table: [dict.fromkeys(FIELDS)]}
    answer = await run_query(hub, person.actor, query, copy.deepcopy(options), None, None, True)
    assert isinstance(answer[table], JsonText)
    rows: list[dict[str, Any]] = json.loads(json_bytes(answer))[table]
    return rows


async def _general(
    hub: Hub, person: Person, table: str = "projects_all", options: Any = None
) -> list[dict[str, Any]]:
    """The same listing through the general path, which reuses nothing."""
    query = {table: [dict.fromkeys(FIELDS)]}
    answer = await run_query(hub, person.actor, query, copy.deepcopy(options), None, None)
    rows: list[dict[str, Any]] = json.loads(json_bytes(answer))[table]
    return rows


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["project_id"]: row for row in rows}


async def _sql(hub: Hub, statement: Any) -> None:
    async with hub.engine.begin() as conn:
        await conn.execute(statement)


async def _version(hub: Hub, project_id: str) -> int:
    async with hub.engine.connect() as conn:
        found = await conn.execute(
            select(projects.c.row_version).where(projects.c.project_id == project_id)
        )
        return int(found.scalar_one())


def _kept(hub: Hub, table: str = "projects_all") -> rendered_rows.Rows:
    return hub.rendered_rows.rows(table, tuple(FIELDS))


def _poison(hub: Hub, project_id: str, table: str = "projects_all") -> None:
    """Replace the kept text of a row by a marker, at the version it was kept at: if a
    listing shows the marker, it reused the kept row."""
    kept = _kept(hub, table)
    version = int(kept.keys[project_id].rpartition(":")[2])
    marker = json.dumps({"project_id": project_id, "title": "kept text"})
    hub.rendered_rows.keep(kept, project_id, version, marker)


async def _bulk_projects(hub: Hub, person: Person, count: int) -> list[str]:
    """Projects of `person` inserted as the domain inserts them, without its rate limit
    (creating this many through the domain would meet it); removed after the test."""
    async with hub.engine.begin() as conn:
        made = [
            await insert_project(
                conn,
                owner=person.actor.account_id,
                title="bulk",
                description="",
                compute_image="default",
                site_license=None,
            )
            for _ in range(count)
        ]
    _BULK.extend(made)
    return made


async def _add_member(hub: Hub, project_id: str, person: Person) -> None:
    """Plain SQL, as an operator or another program would write it."""
    await _sql(
        hub,
        insert(project_users).values(
            project_id=project_id,
            account_id=person.actor.account_id,
            group="collaborator",
            hide=False,
            added=datetime.now(UTC),
        ),
    )


_BULK: list[str] = []


@pytest_asyncio.fixture(autouse=True)
async def _remove_bulk_projects(hub: Hub) -> AsyncIterator[None]:
    yield
    if _BULK:
        await _sql(hub, delete(projects).where(projects.c.project_id.in_(_BULK)))
        _BULK.clear()


@pytest_asyncio.fixture
async def person(make_person: MakePerson) -> Person:
    return await make_person()


async def test_every_column_a_get_shows_moves_the_version_and_bookkeeping_does_not(
    hub: Hub, person: Person, make_project: MakeProject
) -> None:
    project_id = await make_project(person, "columns")
    for column in projects.c:
        before = await _version(hub, project_id)
        # Setting a column to its own value is a change for a trigger on that column.
        await _sql(
            hub,
            text(
                f'UPDATE projects SET "{column.name}" = "{column.name}" WHERE project_id = :p'
            ).bindparams(p=project_id),
        )
        after = await _version(hub, project_id)
        if column.name in BOOKKEEPING:
            assert after == before, column.name
        else:
            assert after > before, column.name


async def test_membership_changes_move_the_version(
    hub: Hub, person: Person, make_person: MakePerson, make_project: MakeProject
) -> None:
    project_id = await make_project(person, "members")
    helper = await make_person()
    mine = project_users.c.project_id == project_id
    theirs = mine & (project_users.c.account_id == helper.actor.account_id)
    before = await _version(hub, project_id)
    await _add_member(hub, project_id, helper)
    assert await _version(hub, project_id) > before
    changes = [
        update(project_users).where(theirs).values(hide=True),
        update(project_users).where(theirs).values(upgrades={"cores": 1}),
        delete(project_users).where(theirs),
    ]
    for change in changes:
        before = await _version(hub, project_id)
        await _sql(hub, change)
        assert await _version(hub, project_id) > before, change


async def _rename(hub: Hub, project_id: str, title: str) -> None:
    """Plain SQL, as an operator or another program would write it."""
    await _sql(hub, update(projects).where(projects.c.project_id == project_id).values(title=title))


async def test_a_listing_reuses_a_kept_row_until_its_version_moves(
    hub: Hub, person: Person, make_project: MakeProject
) -> None:
    first = await make_project(person, "first")
    second = await make_project(person, "second")
    listed = _by_id(await _listing(hub, person))
    assert listed[first]["title"] == "first" and listed[second]["title"] == "second"
    _poison(hub, first)
    # Another row changes, so the listing as a whole is new: the first row is reused.
    await _rename(hub, second, "second, renamed")
    again = _by_id(await _listing(hub, person))
    assert again[first] == {"project_id": first, "title": "kept text"}
    assert again[second]["title"] == "second, renamed"
    await _rename(hub, first, "new")
    again = _by_id(await _listing(hub, person))
    assert again[first]["title"] == "new"
    assert again == _by_id(await _general(hub, person))


async def test_a_listing_of_the_same_rows_at_the_same_versions_is_sent_again_whole(
    hub: Hub, person: Person, make_project: MakeProject
) -> None:
    first = await make_project(person, "whole")
    second = await make_project(person, "whole too")
    listed = await _listing(hub, person)
    _poison(hub, first)
    # Nothing changed: the listing kept whole, which was made before the poisoning.
    assert await _listing(hub, person) == listed
    await _rename(hub, second, "changed")
    changed = _by_id(await _listing(hub, person))
    assert changed[first]["title"] == "kept text" and changed[second]["title"] == "changed"
    # An ordered listing is not kept whole: each row is looked up.
    options = [{"order_by": "title"}]
    ordered = _by_id(await _listing(hub, person, "projects_all", options))
    assert ordered[first]["title"] == "kept text"


async def test_idle_bookkeeping_keeps_the_kept_row(
    hub: Hub, person: Person, make_project: MakeProject
) -> None:
    project_id = await make_project(person, "idle")
    other = await make_project(person, "other")
    await _listing(hub, person)
    _poison(hub, project_id)
    later = datetime.now(UTC) + timedelta(minutes=5)
    await _sql(
        hub,
        update(projects).where(projects.c.project_id == project_id).values(last_activity=later),
    )
    await _rename(hub, other, "other, renamed")
    assert _by_id(await _listing(hub, person))[project_id]["title"] == "kept text"


async def test_changes_made_on_another_hub_show_on_the_next_listing(
    hub: Hub,
    other_hub: Hub,
    person: Person,
    make_person: MakePerson,
    make_project: MakeProject,
) -> None:
    shared = await make_project(person, "shared")
    kept = await make_project(person, "kept")
    helper = await make_person()
    for each in (hub, other_hub):
        await _listing(each, person)
        await _listing(each, helper)
    # Membership added on the other hub: the helper sees the project on this one.
    await _add_member(other_hub, shared, helper)
    seen = _by_id(await _listing(hub, helper))
    assert set(seen) == {shared}
    assert helper.actor.account_id in seen[shared]["users"]
    owner_view = _by_id(await _listing(hub, person))
    assert owner_view[shared]["users"] == seen[shared]["users"]
    # The helper hides it, then the project is renamed and deleted, each on the other hub.
    theirs = (project_users.c.project_id == shared) & (
        project_users.c.account_id == helper.actor.account_id
    )
    await _sql(other_hub, update(project_users).where(theirs).values(hide=True))
    assert _by_id(await _listing(hub, person))[shared]["users"][helper.actor.account_id] == {
        "group": "collaborator",
        "hide": True,
    }
    await _sql(
        other_hub,
        update(projects)
        .where(projects.c.project_id == shared)
        .values(title="renamed", deleted=True),
    )
    row = _by_id(await _listing(hub, helper))[shared]
    assert (row["title"], row["deleted"]) == ("renamed", True)
    # Removed on the other hub: gone from the helper's listing here, kept for the owner.
    await _sql(other_hub, delete(project_users).where(theirs))
    assert await _listing(hub, helper) == []
    assert set(_by_id(await _listing(hub, person))) >= {shared, kept}
    for each in (hub, other_hub):
        for who in (person, helper):
            assert _by_id(await _listing(each, who)) == _by_id(await _general(each, who))


async def test_many_changed_rows_keep_the_order_and_the_limit(hub: Hub, person: Person) -> None:
    """More changed rows than are written again by id: the whole listing is written again,
    in the asked order and no further than the limit."""
    count = rendered_rows.FEW_MISSING + 6
    made = await _bulk_projects(hub, person, count)
    options = [{"order_by": "-last_edited"}, {"limit": count - 3}]
    await _listing(hub, person, "projects", options)
    start = datetime.now(UTC) - timedelta(days=1)
    for n, project_id in enumerate(made):
        # Each a new last_edited, in the reverse of the order the listing gave.
        await _sql(
            hub,
            update(projects)
            .where(projects.c.project_id == project_id)
            .values(last_edited=start + timedelta(seconds=n), title=f"changed {n}"),
        )
    for _ in range(2):  # written again, then reused
        listed = await _listing(hub, person, "projects", options)
        assert listed == await _general(hub, person, "projects", options)
        assert [row["title"] for row in listed] == [
            f"changed {n}" for n in reversed(range(3, count))
        ]


async def test_a_few_changed_rows_are_written_again_by_id(hub: Hub, person: Person) -> None:
    made = await _bulk_projects(hub, person, 5)
    await _listing(hub, person)
    for project_id in made[1:]:
        _poison(hub, project_id)
    await _rename(hub, made[0], "one")
    listed = _by_id(await _listing(hub, person))
    assert listed[made[0]]["title"] == "one"
    assert all(listed[project_id]["title"] == "kept text" for project_id in made[1:])


async def test_a_membership_listing_keeps_its_statements_but_reads_the_rows_each_time(
    hub: Hub, person: Person, make_person: MakePerson, make_project: MakeProject
) -> None:
    """The statements of a listing of the caller's projects are kept by caller, fields and
    options (RenderedRows.plan); which rows it gives is still read at every listing."""
    mine = await make_project(person, "mine")
    stranger = await make_person()
    theirs = await make_project(stranger, "theirs")
    orders = [None, [{"order_by": "title"}], [{"order_by": "-last_edited"}, {"limit": 1}]]
    for _ in range(2):  # the first builds the plans, the second uses them
        for options in orders:
            for who, own, other in ((person, mine, theirs), (stranger, theirs, mine)):
                listed = await _listing(hub, who, options=options)
                assert listed == await _general(hub, who, options=options)
                assert other not in _by_id(listed)
                if options is None:
                    assert own in _by_id(listed)
    # A kept plan holds no rows: the stranger joins and leaves the project, and each of
    # their next listings shows it.
    await _add_member(hub, mine, stranger)
    assert set(_by_id(await _listing(hub, stranger))) == {mine, theirs}
    await _sql(
        hub,
        delete(project_users).where(
            (project_users.c.project_id == mine)
            & (project_users.c.account_id == stranger.actor.account_id)
        ),
    )
    assert set(_by_id(await _listing(hub, stranger))) == {theirs}


@pytest.mark.parametrize("limit", [None, 4])
async def test_the_joined_ids_and_versions_pair_each_row_with_its_version(
    hub: Hub, person: Person, limit: int | None
) -> None:
    """Without an order the ids and the versions come as two joined texts (within a limit,
    from a subquery): the n-th version must be the n-th row's."""
    made = await _bulk_projects(hub, person, 6)
    for n, project_id in enumerate(made):
        for _ in range(n):  # a different version for each
            await _rename(hub, project_id, f"renamed {n}")
    spec = TABLES["projects_all"]
    dialect = hub.engine.dialect
    row = row_json(spec, FIELDS, dialect)
    assert row is not None
    where = membership_of(projects.c.project_id, person.actor.account_id)
    plan = rendered_rows.plan_listing(spec, tuple(FIELDS), row, where, None, limit, dialect.name)
    async with hub.engine.connect() as conn:
        ids, versions = (await read_plain_rows(conn, plan.keys))[0]
    pairs = list(zip(ids.split(","), versions.split(","), strict=True))
    assert len(pairs) == (limit or len(made))
    assert len(set(ids.split(","))) == len(pairs)
    for project_id, version in pairs:
        assert int(version) == await _version(hub, project_id)
    listed = await _listing(hub, person, options=None if limit is None else [{"limit": limit}])
    everything = _by_id(await _general(hub, person))
    assert all(row == everything[row["project_id"]] for row in listed)


def test_kept_plans_stay_within_their_bound() -> None:
    store = RenderedRows()
    plans = [typing.cast(rendered_rows.ListingPlan, object()) for _ in range(3)]
    store.keep_plan("first", plans[0])
    for n in range(rendered_rows.MAX_PLANS):
        store.keep_plan(n, plans[1])
    assert store.plan("first") is None
    assert store.plan(rendered_rows.MAX_PLANS - 1) is plans[1]
    store.keep_plan("last", plans[2])
    assert store.plan("last") is plans[2] and store.plan(0) is None


def test_the_kept_texts_stay_within_their_bound() -> None:
    store = RenderedRows(max_bytes=10_000)
    rows = store.rows("projects_all", ("title",))
    for n in range(200):
        store.keep(rows, f"id-{n}", 1, "x" * 100)
    assert 0 < store.size <= 10_000
    assert len(rows.texts) == len(rows.keys) < 200
    assert "id-199" in rows.keys and "id-0" not in rows.keys
    # A newer version replaces the older text; its bytes are counted once.
    size = store.size
    store.keep(rows, "id-199", 2, "y" * 100)
    assert store.size == size
    assert rows.texts["id-199:2"] == "y" * 100 and "id-199:1" not in rows.texts


def test_whole_listings_stay_within_their_bound() -> None:
    store = RenderedRows(max_listing_bytes=1_000)
    for n in range(5):
        store.keep_listing("projects_all", ("title",), f"keys-{n}", b"x" * 200)
    assert store.listing("projects_all", ("title",), "keys-0") is None
    assert store.listing("projects_all", ("title",), "keys-4") == b"x" * 200
    assert store.listing("projects_all", ("other",), "keys-4") is None
    store.keep_listing("projects_all", ("title",), "too big", b"x" * 1_000)
    assert store.listing("projects_all", ("title",), "too big") is None


def test_field_lists_beyond_the_bound_start_afresh() -> None:
    store = RenderedRows()
    first = store.rows("projects_all", ("f0",))
    store.keep(first, "id", 1, "{}")
    for n in range(1, rendered_rows.MAX_FIELD_LISTS + 1):
        store.rows("projects_all", (f"f{n}",))
    assert store.rows("projects_all", ("f0",)) is not first
    assert store.size == 0


async def test_one_of_json_finds_exactly_the_given_ids(hub: Hub, person: Person) -> None:
    """The condition the rows written again by id are found with: one text parameter, a
    JSON array of ids, whatever their number (db/json_ops.py)."""
    made = await _bulk_projects(hub, person, 4)
    ids = projects.c.project_id
    asked = [made[0], made[2], "not-an-id", 'it\'s "quoted" ✓']

    async def found(values: list[str]) -> set[str]:
        condition = one_of_json(ids, json.dumps(values), hub.engine.dialect.name)
        async with hub.engine.connect() as conn:
            return {row[0] for row in await read_plain_rows(conn, select(ids).where(condition))}

    assert await found(asked) == {made[0], made[2]}
    assert await found([]) == set()
    assert await found(made) == set(made)
