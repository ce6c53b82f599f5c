"""What a project's exec and file calls depend on (membership, the project's existence, the
quota's inputs kept in its row) may change on another hub, on the command line or in plain
SQL; the very next call on every hub must follow the change."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert, update

from calchub.db.tables import project_users, projects, site_licenses
from calchub.db.types import utcnow
from calchub.ids import new_id
from tests.conftest import User
from tests.harness import ApiClient, Database, Reply, Server

MB = 1024 * 1024


@pytest.fixture(scope="module")
def hubs(server: Server, second_hub: Server) -> Iterator[list[ApiClient]]:
    clients = [ApiClient(server.url), ApiClient(second_hub.url)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


@pytest.fixture
def project(hubs: list[ApiClient], make_user: Callable[..., User]) -> Iterator[tuple[str, User]]:
    owner = make_user()
    reply = hubs[0].call("create_project", owner.api_key, {"title": "changes"})
    assert reply.event == "project_created", reply.body
    project_id = str(reply["project_id"])
    try:
        yield project_id, owner
    finally:
        _v2(hubs[0], owner.api_key, "projects/stop", project_id)


def _v2(hub: ApiClient, key: str, path: str, project_id: str) -> httpx.Response:
    return hub.http.post(
        f"/api/v2/{path}", json={"project_id": project_id}, auth=httpx.BasicAuth(key, "")
    )


def _echo(hub: ApiClient, key: str, project_id: str) -> Reply:
    body = {"project_id": project_id, "command": "echo", "args": ["hi"]}
    return hub.call("project_exec", key, body)


def _write(hub: ApiClient, key: str, project_id: str, size_mb: int) -> Reply:
    body = {"project_id": project_id, "path": "big.txt", "content": "x" * (size_mb * MB)}
    return hub.call("write_text_file_to_project", key, body)


def _fits(hub: ApiClient, key: str, project_id: str) -> bool:
    """Whether 3 MB fit in the project (its default quota here is 2 MB)."""
    reply = _write(hub, key, project_id, 3)
    if reply.event == "error":
        assert str(reply["error"]).startswith("disk quota exceeded"), reply.body
        return False
    assert reply.event == "file_written_to_project", reply.body
    return True


def test_a_collaborator_removed_on_one_hub_is_refused_on_the_other(
    hubs: list[ApiClient], project: tuple[str, User], make_user: Callable[..., User]
) -> None:
    project_id, owner = project
    helper = make_user()
    body = {"project_id": project_id, "account_id": helper.account_id}
    assert hubs[0].call("add_collaborator", owner.api_key, body).event == "success"
    for hub in hubs * 2:
        assert _echo(hub, helper.api_key, project_id)["stdout"] == "hi\n"
    assert hubs[0].call("remove_collaborator", owner.api_key, body).event == "success"
    refused = _echo(hubs[1], helper.api_key, project_id)
    assert refused.event == "error"
    assert "does not have write access" in refused["error"]
    assert _echo(hubs[1], owner.api_key, project_id)["stdout"] == "hi\n"


def _listed(hub: ApiClient, key: str) -> dict[str, dict[str, Any]]:
    """The caller's projects_all, by project id, with their titles and users."""
    query = {"query": {"projects_all": [{"project_id": None, "title": None, "users": None}]}}
    reply = hub.call("query", key, query)
    assert reply.event == "query", reply.body
    return {str(row["project_id"]): row for row in reply["query"]["projects_all"]}


def test_listings_on_every_hub_follow_changes_made_on_another(
    hubs: list[ApiClient], project: tuple[str, User], make_user: Callable[..., User], db: Database
) -> None:
    """Each hub reuses the rows it listed before while their versions hold: a membership
    added or removed, or a title changed on one hub or in plain SQL, shows in the next
    listing on every hub."""
    project_id, owner = project
    helper = make_user()
    for hub in hubs:
        assert project_id in _listed(hub, owner.api_key)
        assert project_id not in _listed(hub, helper.api_key)
    body = {"project_id": project_id, "account_id": helper.account_id}
    assert hubs[0].call("add_collaborator", owner.api_key, body).event == "success"
    for hub in reversed(hubs):
        assert helper.account_id in _listed(hub, owner.api_key)[project_id]["users"]
        assert project_id in _listed(hub, helper.api_key)
    db.execute(update(projects).where(projects.c.project_id == project_id).values(title="renamed"))
    for hub in hubs:
        assert _listed(hub, helper.api_key)[project_id]["title"] == "renamed"
    assert hubs[1].call("remove_collaborator", owner.api_key, body).event == "success"
    for hub in hubs:
        assert project_id not in _listed(hub, helper.api_key)
        assert helper.account_id not in _listed(hub, owner.api_key)[project_id]["users"]


def test_a_project_deleted_on_one_hub_is_refused_on_the_other(
    hubs: list[ApiClient], project: tuple[str, User]
) -> None:
    project_id, owner = project
    for hub in hubs * 2:
        assert _echo(hub, owner.api_key, project_id)["stdout"] == "hi\n"
    assert _v2(hubs[0], owner.api_key, "projects/delete", project_id).status_code == 200
    for hub in reversed(hubs):
        refused = _echo(hub, owner.api_key, project_id)
        assert refused.event == "error"
        assert "does not have write access" in refused["error"]


@pytest.fixture
def small_disks(server: Server, hubs: list[ApiClient], project: tuple[str, User]) -> Iterator[None]:
    """The project runs (its sandbox started with the default quota, which limits the size
    of a file), then the site's default disk quota drops to 2 MB: each write checks the
    quota as it is now."""
    project_id, owner = project
    assert _echo(hubs[0], owner.api_key, project_id)["stdout"] == "hi\n"
    server.cli("admin", "setting", "default_quota_disk_mb", "2")
    try:
        yield
    finally:
        server.cli("admin", "setting", "default_quota_disk_mb", "--reset")


@pytest.mark.usefixtures("small_disks")
def test_a_members_upgrade_changed_anywhere_reaches_the_next_call_on_every_hub(
    hubs: list[ApiClient], project: tuple[str, User], db: Database
) -> None:
    project_id, owner = project
    member = (project_users.c.project_id == project_id) & (
        project_users.c.account_id == owner.account_id
    )
    for hub in hubs * 2:  # each hub has used (and kept) the quota's inputs
        assert not _fits(hub, owner.api_key, project_id)
    db.execute(update(project_users).where(member).values(upgrades={"disk_quota": 20}))
    assert [_fits(hub, owner.api_key, project_id) for hub in reversed(hubs)] == [True, True]
    db.execute(update(project_users).where(member).values(upgrades=None))
    assert [_fits(hub, owner.api_key, project_id) for hub in hubs] == [False, False]


@pytest.mark.usefixtures("small_disks")
def test_a_license_applied_changed_or_removed_reaches_the_next_call_on_every_hub(
    hubs: list[ApiClient], project: tuple[str, User], db: Database
) -> None:
    project_id, owner = project
    license_id = new_id()
    db.execute(
        insert(site_licenses).values(
            id=license_id, activates=utcnow() - timedelta(days=1), quota={"disk": 0.02}
        )
    )
    where = projects.c.project_id == project_id
    try:
        for hub in hubs * 2:
            assert not _fits(hub, owner.api_key, project_id)
        db.execute(update(projects).where(where).values(site_license={license_id: {}}))
        assert [_fits(hub, owner.api_key, project_id) for hub in hubs * 2] == [True] * 4
        db.execute(
            update(site_licenses)
            .where(site_licenses.c.id == license_id)
            .values(expires=utcnow() - timedelta(seconds=1))
        )
        assert [_fits(hub, owner.api_key, project_id) for hub in reversed(hubs)] == [
            False,
            False,
        ]
        db.execute(
            update(site_licenses).where(site_licenses.c.id == license_id).values(expires=None)
        )
        assert [_fits(hub, owner.api_key, project_id) for hub in hubs] == [True, True]
        db.execute(delete(site_licenses).where(site_licenses.c.id == license_id))
        assert [_fits(hub, owner.api_key, project_id) for hub in reversed(hubs)] == [
            False,
            False,
        ]
    finally:
        db.execute(update(projects).where(where).values(site_license=None))
        db.execute(delete(site_licenses).where(site_licenses.c.id == license_id))
