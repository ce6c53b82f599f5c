"""add_license_to_project and remove_license_from_project over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from calchub.db.tables import projects
from tests.api.queries import create, join, ok, q
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]


def _licenses(db: Database, project_id: str) -> Any:
    rows = db.execute(select(projects.c.site_license).where(projects.c.project_id == project_id))
    return rows[0].site_license


def _call(api: ApiClient, key: str, event: str, project_id: Any, license_id: Any) -> Any:
    return api.call(event, key, {"project_id": project_id, "license_id": license_id})


@pytest.fixture
def team(api: ApiClient, db: Database, make_user: MakeUser) -> dict[str, Any]:
    owner, collab, viewer, stranger = make_user(), make_user(), make_user(), make_user()
    project_id = create(api, owner)
    join(db, project_id, collab)
    join(db, project_id, viewer, group="viewer")
    return {
        "owner": owner,
        "collab": collab,
        "viewer": viewer,
        "stranger": stranger,
        "project_id": project_id,
    }


def test_add_and_remove_a_license(api: ApiClient, db: Database, team: dict[str, Any]) -> None:
    owner, project_id = team["owner"], team["project_id"]
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    reply = _call(api, owner.api_key, "add_license_to_project", project_id, first.upper())
    assert reply.status == 200 and reply.body == {"event": "success", "id": reply["id"]}
    assert _licenses(db, project_id) == {first: {}}
    _call(api, owner.api_key, "add_license_to_project", project_id, second)
    assert _licenses(db, project_id) == {first: {}, second: {}}
    # The license shows in the project's own map, as `query` reads it.
    got = ok(q(api, owner.api_key, {"projects": {"project_id": project_id, "site_license": None}}))
    assert got["projects"]["site_license"] == {first: {}, second: {}}

    reply = _call(api, owner.api_key, "remove_license_from_project", project_id, first)
    assert reply.event == "success"
    assert _licenses(db, project_id) == {second: {}}
    # Removing a license the project does not have is not an error.
    reply = _call(api, owner.api_key, "remove_license_from_project", project_id, first)
    assert reply.event == "success"
    _call(api, owner.api_key, "remove_license_from_project", project_id, second)
    assert _licenses(db, project_id) == {}


def test_adding_again_keeps_the_entry(api: ApiClient, db: Database, team: dict[str, Any]) -> None:
    project_id, license_id = team["project_id"], str(uuid.uuid4())
    entry = {license_id: {"memory": 1000}}
    db.execute(
        update(projects).where(projects.c.project_id == project_id).values(site_license=entry)
    )
    reply = _call(api, team["owner"].api_key, "add_license_to_project", project_id, license_id)
    assert reply.event == "success"
    assert _licenses(db, project_id) == entry


@pytest.mark.parametrize("role", ["owner", "collab"])
def test_writers_may_change_licenses(
    api: ApiClient, db: Database, team: dict[str, Any], role: str
) -> None:
    project_id, license_id = team["project_id"], str(uuid.uuid4())
    key = team[role].api_key
    assert _call(api, key, "add_license_to_project", project_id, license_id).event == "success"
    assert license_id in _licenses(db, project_id)
    assert _call(api, key, "remove_license_from_project", project_id, license_id).event == "success"
    assert license_id not in _licenses(db, project_id)


def test_admin_may_change_any_project(
    api: ApiClient, db: Database, admin_key: str, team: dict[str, Any]
) -> None:
    project_id, license_id = team["project_id"], str(uuid.uuid4())
    assert (
        _call(api, admin_key, "add_license_to_project", project_id, license_id).event == "success"
    )
    assert _licenses(db, project_id) == {license_id: {}}


@pytest.mark.parametrize("role", ["viewer", "stranger"])
@pytest.mark.parametrize("event", ["add_license_to_project", "remove_license_from_project"])
def test_others_may_not(
    api: ApiClient, db: Database, team: dict[str, Any], role: str, event: str
) -> None:
    project_id, license_id = team["project_id"], str(uuid.uuid4())
    db.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(site_license={license_id: {}})
    )
    reply = _call(api, team[role].api_key, event, project_id, str(uuid.uuid4()))
    assert reply.event == "error"
    assert reply["error"] == f"must have write access to {project_id} -- must have write access"
    reply = _call(api, team[role].api_key, event, project_id, license_id)
    assert reply["error"] == f"must have write access to {project_id} -- must have write access"
    assert _licenses(db, project_id) == {license_id: {}}


def test_unknown_or_malformed_project(api: ApiClient, user: User) -> None:
    unknown = str(uuid.uuid4())
    reply = _call(api, user.api_key, "add_license_to_project", unknown, str(uuid.uuid4()))
    assert reply["error"] == f"must have write access to {unknown} -- must have write access"
    reply = _call(api, user.api_key, "add_license_to_project", "abc", str(uuid.uuid4()))
    assert reply["error"] == (
        "must have write access to abc -- project_id must be specified and valid"
    )


@pytest.mark.parametrize("license_id", ["not-a-license", "", "x" * 1000])
def test_malformed_license_id(
    api: ApiClient, db: Database, team: dict[str, Any], license_id: str
) -> None:
    project_id = team["project_id"]
    reply = _call(api, team["owner"].api_key, "add_license_to_project", project_id, license_id)
    assert reply.event == "error" and reply["error"] == f"invalid license_id -- {license_id}"
    assert _licenses(db, project_id) is None


@pytest.mark.parametrize(
    "body",
    [
        {"project_id": str(uuid.uuid4())},
        {"license_id": str(uuid.uuid4())},
        {"project_id": str(uuid.uuid4()), "license_id": "x" * 2000},
        {"project_id": str(uuid.uuid4()), "license_id": 5},
        {"project_id": str(uuid.uuid4()), "license_id": str(uuid.uuid4()), "extra": 1},
    ],
)
def test_invalid_parameters(api: ApiClient, user: User, body: dict[str, Any]) -> None:
    for event in ("add_license_to_project", "remove_license_from_project"):
        reply = api.call(event, user.api_key, body)
        assert reply.status == 400, reply.body
        assert reply.body["error"].startswith("invalid parameters"), reply.body
