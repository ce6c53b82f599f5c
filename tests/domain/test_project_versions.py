"""Project versions (migration 0024): every kind of write gives the project a value its row
never had, whoever writes, on the backend under test; what a connection may keep by
version (db/row_versions.py); and the migration's way down and up again."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.config import Settings
from calchub.db.engine import MIGRATIONS_DIR, create_engine, current_revision, migrate
from calchub.db.row_versions import may_keep
from calchub.db.tables import accounts, project_users, projects
from calchub.hub import Hub
from tests.domain.conftest import MakePerson, MakeProject
from tests.harness import Loop, backend, throwaway_database
from tests.scratch import scratch_folder


@pytest_asyncio.fixture(scope="module")
async def hub(domain_database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hub]:
    """The fake runtime only: nothing here runs a project."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("versions"),
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


async def _version(engine: AsyncEngine, project_id: str) -> int | None:
    async with engine.connect() as conn:
        found = select(projects.c.version).where(projects.c.project_id == project_id)
        return (await conn.execute(found)).scalar()


async def _run(engine: AsyncEngine, statement: Any, **values: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(statement, values)


async def test_every_kind_of_write_gives_a_version_never_had_before(
    hub: Hub, make_person: MakePerson, make_project: MakeProject
) -> None:
    owner, helper, leaving = [await make_person() for _ in range(3)]
    project_id = await make_project(owner, "versions")
    engine = hub.engine
    seen = {await _version(engine, project_id)}
    assert seen != {0} and seen != {None}
    this = projects.c.project_id == project_id
    member = (project_users.c.project_id == project_id) & (
        project_users.c.account_id == helper.actor.account_id
    )
    writes: list[tuple[str, Any, dict[str, Any]]] = [
        ("a column no listing shows", update(projects).where(this).values(last_activity=None), {}),
        ("the title", update(projects).where(this).values(title="new"), {}),
        ("nothing changed", update(projects).where(this).values(title="new"), {}),
        (
            "a member added",
            insert(project_users).values(
                project_id=project_id,
                account_id=helper.actor.account_id,
                group="collaborator",
                hide=False,
                added=datetime.now(UTC),
            ),
            {},
        ),
        ("a member hides it", update(project_users).where(member).values(hide=True), {}),
        ("a member's upgrades", update(project_users).where(member).values(upgrades={"x": 1}), {}),
        ("a member removed", project_users.delete().where(member), {}),
        (
            "a member added in plain SQL",
            text(
                'INSERT INTO project_users (project_id, account_id, "group", hide, added)'
                " VALUES (:p, :a, 'viewer', :f, :t)"
            ),
            {"p": project_id, "a": leaving.actor.account_id, "f": False, "t": datetime.now(UTC)},
        ),
        (
            "a member's account deleted in plain SQL",
            text("DELETE FROM accounts WHERE account_id = :a"),
            {"a": leaving.actor.account_id},
        ),
        (
            "a version written in plain SQL",
            text("UPDATE projects SET version = 1, title = 'forged' WHERE project_id = :p"),
            {"p": project_id},
        ),
        (
            "every project at once",
            text("UPDATE projects SET description = description WHERE project_id IN (:p, :p)"),
            {"p": project_id},
        ),
    ]
    for what, statement, values in writes:
        await _run(engine, statement, **values)
        version = await _version(engine, project_id)
        assert version not in seen, what
        seen.add(version)
    # A project made again under the id of one deleted, even with the old row's version
    # written: it gets a new one.
    async with engine.connect() as conn:
        row = dict((await conn.execute(select(projects).where(this))).mappings().one())
    await _run(engine, projects.delete().where(this))
    await _run(engine, insert(projects).values(row))
    assert await _version(engine, project_id) not in seen
    await _run(engine, projects.delete().where(this))


async def test_what_a_connection_reads_may_be_kept_unless_a_rollback_can_reuse_its_version(
    hub: Hub, make_person: MakePerson, make_project: MakeProject
) -> None:
    project_id = await make_project(await make_person(), "rolled back")
    this = projects.c.project_id == project_id
    async with hub.engine.connect() as conn:
        assert await may_keep(conn)
    async with hub.engine.connect() as conn:
        await conn.execute(update(projects).where(this).values(title="never"))
        taken = (await conn.execute(select(projects.c.version).where(this))).scalar()
        # SQLite's counter takes the value back on rollback; a sequence never does.
        assert await may_keep(conn) == (backend() == "postgresql")
        await conn.rollback()
        assert await may_keep(conn)
    await _run(hub.engine, update(projects).where(this).values(title="committed"))
    if backend() == "postgresql":
        assert await _version(hub.engine, project_id) != taken


def _alembic(connection: Connection, direction: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    getattr(command, direction)(config, revision)


def test_the_migration_goes_down_and_up_again(tmp_path: Path, loop: Loop) -> None:
    async def check(url: str) -> None:
        engine = create_engine(url)
        try:
            await migrate(engine, "0024")
            project_id = await _project(engine)
            async with engine.begin() as conn:
                await conn.run_sync(_alembic, "downgrade", "0023")
            assert await current_revision(engine) == "0023"
            async with engine.connect() as conn:
                names = (await conn.execute(select(projects.c.project_id))).scalars().all()
                assert names == [project_id]
                columns = await conn.run_sync(
                    lambda sync: [c["name"] for c in inspect(sync).get_columns("projects")]
                )
                assert "version" not in columns
            await migrate(engine)
            before = await _version(engine, project_id)
            await _run(engine, update(projects).values(title="after"))
            assert await _version(engine, project_id) not in (before, None)
            if backend() == "postgresql":
                before = await _version(engine, project_id)
                await _run(engine, text("TRUNCATE project_users"))
                assert await _version(engine, project_id) != before
        finally:
            await engine.dispose()

    with throwaway_database(tmp_path / "migrations.db", loop) as url:
        loop.run(check(url))


async def _project(engine: AsyncEngine) -> str:
    account_id, project_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    await _run(
        engine, insert(accounts).values(account_id=account_id, email_address="m@x", created=now)
    )
    await _run(
        engine,
        insert(projects).values(
            project_id=project_id,
            title="t",
            compute_image="default",
            created=now,
            uid=4242,
            run_state_time=now,
        ),
    )
    await _run(
        engine,
        insert(project_users).values(
            project_id=project_id, account_id=account_id, group="owner", hide=False, added=now
        ),
    )
    return project_id
