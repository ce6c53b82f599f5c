"""Projects through the domain: exec and text files, with the access rule, and the edit an
allowed call records, on both runtimes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from calchub.db.tables import projects
from calchub.errors import Failed, Invalid, LimitExceeded, NotFound, Refused
from calchub.hub import Hub
from calchub.projects import files
from calchub.projects.access import require_project
from calchub.projects.edits import ProjectEdits
from calchub.projects.execution import Command, run_command
from tests.domain.conftest import MakePerson, Person, as_admin


async def test_exec_runs_in_the_home_and_reports_output(
    hub: Hub, owner: Person, project: str
) -> None:
    out = await run_command(hub, owner.actor, project, Command("pwd", []))
    assert out.exit_code == 0
    assert out.stdout.strip().endswith(project)
    out = await run_command(
        hub, owner.actor, project, Command("echo a; echo b >&2; exit 3", [], err_on_exit=False)
    )
    assert (out.stdout, out.stderr, out.exit_code) == ("a\n", "b\n", 3)


async def test_exec_failures_keep_their_protocol_text(
    hub: Hub, owner: Person, project: str
) -> None:
    with pytest.raises(Failed) as failed:
        await run_command(hub, owner.actor, project, Command("false", []))
    assert failed.value.message.startswith(
        "Error executing command 'false' with args '' -- command 'false' (args=) exited with "
        "nonzero code 1"
    )
    with pytest.raises(Failed) as timed_out:
        await run_command(hub, owner.actor, project, Command("sleep", ["30"], timeout=1))
    assert "killed command 'sleep 30'" in timed_out.value.message
    with pytest.raises(Invalid):
        await run_command(hub, owner.actor, project, Command("smc-jupyter", []))


async def test_files_round_trip_and_errors(hub: Hub, owner: Person, project: str) -> None:
    await files.write_text(hub, owner.actor, project, "notes/a.txt", "héllo\n")
    assert await files.read_text(hub, owner.actor, project, "notes/a.txt") == "héllo\n"
    with pytest.raises(NotFound) as missing:
        await files.read_text(hub, owner.actor, project, "nope.txt")
    assert missing.value.message.startswith("ENOENT: no such file or directory, open '")
    with pytest.raises(Exception) as folder:
        await files.read_text(hub, owner.actor, project, "notes")
    assert "EISDIR" in str(folder.value)
    items = await files.read_many(hub, owner.actor, [project, project], ["notes/a.txt", "x"])
    by_path = {item["path"]: item for item in items}
    assert by_path["notes/a.txt"]["content"] == "héllo\n"
    assert by_path["x"]["error"].startswith("ENOENT")


async def test_disk_quota_refuses_a_write(hub: Hub, owner: Person, project: str) -> None:
    await hub.site.set("default_quota_disk_mb", "1")
    try:
        with pytest.raises(LimitExceeded) as over:
            await files.write_text(hub, owner.actor, project, "big.txt", "x" * 3_000_000)
    finally:
        await hub.site.set("default_quota_disk_mb", None)
    assert over.value.message.startswith("disk quota exceeded")


async def test_the_access_rule_for_every_role(
    hub: Hub, owner: Person, stranger: Person, make_person: MakePerson, project: str
) -> None:
    denied = f"User {stranger.actor.account_id} does not have read access to project {project}"
    with pytest.raises(Refused, match=denied):
        await files.read_text(hub, stranger.actor, project, "a.txt")
    with pytest.raises(Refused, match="does not have write access"):
        await run_command(hub, stranger.actor, project, Command("true", []))
    # An admin may do anything; an unknown project looks like a forbidden one.
    await files.write_text(hub, as_admin(stranger), project, "by-admin.txt", "ok")
    assert await files.read_text(hub, owner.actor, project, "by-admin.txt") == "ok"
    ghost = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(Refused, match=f"does not have read access to project {ghost}"):
        await files.read_text(hub, owner.actor, ghost, "a.txt")
    with pytest.raises(Invalid, match=r"invalid project_id -- \.\./etc"):
        await files.read_text(hub, owner.actor, "../etc", "a.txt")


LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


async def _edited(hub: Hub, project_id: str) -> datetime | None:
    async with hub.engine.connect() as conn:
        return await conn.scalar(
            select(projects.c.last_edited).where(projects.c.project_id == project_id)
        )


async def test_the_edit_does_not_wait_on_a_transaction_of_the_same_request(
    hub: Hub, owner: Person, project: str
) -> None:
    """A check made while the request holds the write lock (SQLite) or the project's row
    (PostgreSQL) in a transaction of its own: the edit's write waits for it, the check does
    not (beyond the edits' short wait), and the write lands once the transaction ends."""
    kept = hub.edits
    hub.edits = ProjectEdits(hub.engine, wait_s=0.05)
    try:
        async with hub.engine.begin() as conn:
            await conn.execute(
                update(projects)
                .where(projects.c.project_id == project)
                .values(last_edited=LONG_AGO)
            )
            found = await require_project(hub, owner.actor, project, write=False)
            assert found.project_id == project
            assert hub.edits.under_way == 1  # the write waits for this transaction
        await hub.edits.finished()
        edited = await _edited(hub, project)
        assert edited is not None and edited > LONG_AGO
    finally:
        await hub.edits.close()
        hub.edits = kept


async def test_a_deleted_project_is_not_edited(hub: Hub, owner: Person, project: str) -> None:
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(projects)
            .where(projects.c.project_id == project)
            .values(deleted=True, last_edited=LONG_AGO)
        )
    try:
        # As when the project is deleted between the check and the write.
        await hub.edits.write(project)
        await hub.edits.finished()
        assert await _edited(hub, project) == LONG_AGO
    finally:
        async with hub.engine.begin() as conn:
            await conn.execute(
                update(projects).where(projects.c.project_id == project).values(deleted=False)
            )
