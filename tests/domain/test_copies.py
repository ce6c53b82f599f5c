"""Copies between projects through the domain, carried out by the hub's copy worker, on both
runtimes."""

from __future__ import annotations

import pytest

from calchub.errors import Failed, Refused
from calchub.files import copies
from calchub.files.copies import CopyOrder
from calchub.hub import Hub
from calchub.projects import files
from calchub.projects.execution import Command, run_command
from tests.domain.conftest import MakeProject, Person


async def test_copy_a_folder_between_projects(
    hub: Hub, owner: Person, make_project: MakeProject
) -> None:
    source, target = await make_project(owner, "from"), await make_project(owner, "to")
    await files.write_text(hub, owner.actor, source, "work/a.txt", "A")
    await files.write_text(hub, owner.actor, source, "work/deep/b.txt", "B")
    order = CopyOrder(source, "work/", target, "copied/")
    await copies.wait_for_copy(hub, await copies.copy_between_projects(hub, owner.actor, order))
    assert await files.read_text(hub, owner.actor, target, "copied/a.txt") == "A"
    assert await files.read_text(hub, owner.actor, target, "copied/deep/b.txt") == "B"
    listing = await run_command(hub, owner.actor, target, Command("ls", ["copied"]))
    assert listing.stdout.split() == ["a.txt", "deep"]
    status = await copies.list_copy_status(
        hub, owner.actor, copies.CopyQuery(src_project_id=source, pending=False)
    )
    assert [row["target_path"] for row in status] == ["copied/"]


async def test_copy_failures_and_refusals(
    hub: Hub, owner: Person, stranger: Person, make_project: MakeProject
) -> None:
    source, target = await make_project(owner, "from"), await make_project(owner, "to")
    missing = CopyOrder(source, "missing.txt", target, "x.txt")
    with pytest.raises(Failed):
        await copies.wait_for_copy(
            hub, await copies.copy_between_projects(hub, owner.actor, missing)
        )
    theirs = await make_project(stranger, "theirs")
    with pytest.raises(Refused, match="No write access to target project"):
        await copies.copy_between_projects(hub, owner.actor, CopyOrder(source, "a", theirs, "a"))
    with pytest.raises(Refused, match="No read access to source project"):
        await copies.copy_between_projects(hub, stranger.actor, CopyOrder(source, "a", theirs, "a"))
