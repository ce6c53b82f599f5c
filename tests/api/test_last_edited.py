"""`projects.last_edited` over real HTTP: a call that passes the get_project check (exec, the
text files, the collaborator calls; on v1, REST v2 and the bridges) marks its project edited
now, at most once every 30 s per project on each hub; a refused caller marks nothing.

Each test sets the stored value far in the past first: a call that writes moves it to now, a
call that does not leaves it where the test put it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from calchub import site
from calchub.accounts import key_cache
from calchub.db.tables import counters, projects
from calchub.db.types import utcnow
from tests.api import bridge
from tests.api.project_files import add_member
from tests.api.test_v2 import ok, v2
from tests.conftest import User
from tests.harness import ApiClient, Database, Server

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)

MakeProject = Callable[[User], str]


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    return make_user()


@pytest.fixture
def make_project(api: ApiClient, server: Server, db: Database) -> Iterator[MakeProject]:
    """Projects edited long ago (as far as the database says), stopped after the test."""
    made: list[tuple[str, User]] = []

    def make(owner: User) -> str:
        reply = api.call("create_project", owner.api_key, {"title": "edits"})
        assert reply.event == "project_created", reply.body
        project_id = str(reply["project_id"])
        made.append((project_id, owner))
        _set_edited(db, project_id, LONG_AGO)
        return project_id

    yield make
    for project_id, owner in made:
        v2(server, owner.api_key, "projects/stop", {"project_id": project_id})


def _set_edited(db: Database, project_id: str, when: datetime) -> None:
    db.execute(update(projects).where(projects.c.project_id == project_id).values(last_edited=when))


def _edited(db: Database, project_id: str) -> datetime:
    found = db.execute(select(projects.c.last_edited).where(projects.c.project_id == project_id))
    edited: datetime = found[0][0]
    return edited


def _echo(api: ApiClient, key: str, project_id: str) -> Any:
    return api.call("project_exec", key, {"project_id": project_id, "command": "echo"})


def _assert_edited_during(db: Database, project_id: str, began: datetime) -> None:
    edited = _edited(db, project_id)
    assert began <= edited <= utcnow(), (began, edited)


def test_exec_marks_the_project_edited_once_per_interval(
    api: ApiClient, db: Database, owner: User, make_project: MakeProject
) -> None:
    project_id = make_project(owner)
    quota_version = _quota_version(db, project_id)
    epochs = _change_counters(db)
    assert len(epochs) == 2

    began = utcnow()
    assert _echo(api, owner.api_key, project_id).event == "project_exec_output"
    _assert_edited_during(db, project_id, began)

    # Within 30 s of that write, this hub writes no other for the project: what the test
    # puts back stays.
    _set_edited(db, project_id, LONG_AGO)
    for _ in range(3):
        assert _echo(api, owner.api_key, project_id).event == "project_exec_output"
    reply = api.call("write_text_file_to_project", owner.api_key, _file(project_id, "x"))
    assert reply.event == "file_written_to_project", reply.body
    assert _edited(db, project_id) == LONG_AGO

    # Editing moves nothing that guards what hubs keep in memory: the project's quota
    # inputs stay current, API keys and site settings stay cached.
    assert _quota_version(db, project_id) == quota_version
    assert _change_counters(db) == epochs


def _quota_version(db: Database, project_id: str) -> int:
    found = db.execute(select(projects.c.quota_version).where(projects.c.project_id == project_id))
    return int(found[0][0])


def _change_counters(db: Database) -> list[Any]:
    """The counters that guard what hubs keep in memory (not the scheduler's due times)."""
    names = (key_cache.COUNTER, site.COUNTER)
    return db.execute(select(counters).where(counters.c.name.in_(names)).order_by(counters.c.name))


def _file(project_id: str, content: str) -> dict[str, Any]:
    return {"project_id": project_id, "path": "edited.txt", "content": content}


def test_reads_and_writes_mark_the_project_edited(
    api: ApiClient,
    db: Database,
    owner: User,
    make_user: Callable[..., User],
    make_project: MakeProject,
) -> None:
    written = make_project(owner)
    began = utcnow()
    reply = api.call("write_text_file_to_project", owner.api_key, _file(written, "hello"))
    assert reply.event == "file_written_to_project", reply.body
    _assert_edited_during(db, written, began)

    # Read access is enough: a viewer's read marks the project too.
    read = make_project(owner)
    viewer = make_user()
    add_member(db, read, viewer.account_id, "viewer")
    began = utcnow()
    body = {"project_id": read, "path": "edited.txt"}
    reply = api.call("read_text_file_from_project", viewer.api_key, body)
    # The file is not there: the check passed all the same.
    assert reply.event == "error" and "ENOENT" in reply["error"], reply.body
    _assert_edited_during(db, read, began)


def test_collaborator_calls_mark_the_project_edited(
    api: ApiClient,
    db: Database,
    owner: User,
    make_user: Callable[..., User],
    make_project: MakeProject,
) -> None:
    project_id = make_project(owner)
    other = make_user()
    began = utcnow()
    body = {"project_id": project_id, "account_id": other.account_id}
    assert api.call("remove_collaborator", owner.api_key, body).event == "success"
    _assert_edited_during(db, project_id, began)


def test_refused_callers_mark_nothing(
    api: ApiClient,
    db: Database,
    owner: User,
    make_user: Callable[..., User],
    make_project: MakeProject,
) -> None:
    project_id = make_project(owner)
    stranger, viewer = make_user(), make_user()
    add_member(db, project_id, viewer.account_id, "viewer")
    assert "does not have write access" in _echo(api, stranger.api_key, project_id)["error"]
    assert "does not have write access" in _echo(api, viewer.api_key, project_id)["error"]
    reply = api.call("write_text_file_to_project", viewer.api_key, _file(project_id, "no"))
    assert "does not have write access" in reply["error"]
    body = {"project_id": project_id, "path": "edited.txt"}
    reply = api.call("read_text_file_from_project", stranger.api_key, body)
    assert "does not have read access" in reply["error"]
    body = {"project_id": project_id, "account_id": viewer.account_id}
    reply = api.call("remove_collaborator", stranger.api_key, body)
    assert "does not have write access" in reply["error"]
    assert _edited(db, project_id) == LONG_AGO

    # Nor did they hold back the owner's edit.
    began = utcnow()
    assert _echo(api, owner.api_key, project_id).event == "project_exec_output"
    _assert_edited_during(db, project_id, began)


def test_the_current_api_marks_the_project_edited_too(
    server: Server, db: Database, owner: User, make_project: MakeProject
) -> None:
    """REST v2 exec and write-text-file, and the hub bridge's removeCollaborator, make the
    same check (the project bridge marks its project used before every call anyway)."""
    executed, written, removed = (make_project(owner) for _ in range(3))
    began = utcnow()
    answer = ok(server, owner.api_key, "exec", {"project_id": executed, "command": "true"})
    assert answer["exit_code"] == 0
    ok(server, owner.api_key, "projects/write-text-file", _file(written, "v2"))
    opts = {"opts": {"project_id": removed, "account_id": owner.account_id}}
    # Removing an owner changes nothing, but the check passed.
    assert bridge.hub(server, owner.api_key, "projects.removeCollaborator", opts) is None
    for project_id in (executed, written, removed):
        _assert_edited_during(db, project_id, began)


def test_each_hub_writes_on_its_own(
    api: ApiClient,
    second_hub: Server,
    db: Database,
    owner: User,
    make_project: MakeProject,
) -> None:
    """The 30 s are counted per hub process, as CoCalc counts them: another hub sharing the
    database writes its own edit."""
    project_id = make_project(owner)
    assert _echo(api, owner.api_key, project_id).event == "project_exec_output"
    _set_edited(db, project_id, LONG_AGO)
    assert _echo(api, owner.api_key, project_id).event == "project_exec_output"
    assert _edited(db, project_id) == LONG_AGO
    other = ApiClient(second_hub.url)
    try:
        began = utcnow()
        assert _echo(other, owner.api_key, project_id).event == "project_exec_output"
        _assert_edited_during(db, project_id, began)
    finally:
        other.close()
