"""Projects with synchronised documents in them, and the query calls the sync, file-use and
history tests make."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

from calchub.db.tables import patches, project_users, projects, syncstrings
from calchub.db.types import utcnow
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - CoCalc's ids


def new_project(api: ApiClient, user: User, title: str = "Sync project") -> str:
    reply = api.call("create_project", user.api_key, {"title": title, "start": False})
    assert reply.event == "project_created", reply.body
    return str(reply["project_id"])


def join(db: Database, project_id: str, user: User, group: str) -> None:
    db.execute(
        insert(project_users).values(
            project_id=project_id,
            account_id=user.account_id,
            group=group,
            hide=False,
            added=utcnow(),
        )
    )


def add_syncstring(
    db: Database, project_id: str, path: str, authors: Sequence[str] = (), **columns: Any
) -> str:
    """A syncstring row as a project would have created it; returns its string_id."""
    string_id = sha1(project_id + path)
    db.execute(
        insert(syncstrings).values(
            string_id=string_id, project_id=project_id, path=path, users=list(authors), **columns
        )
    )
    return string_id


def add_patch(
    db: Database, string_id: str, time: datetime, user_id: int, patch: str, **columns: Any
) -> None:
    db.execute(
        insert(patches).values(
            string_id=string_id, time=time, user_id=user_id, patch=patch, **columns
        )
    )


def project_row(db: Database, project_id: str) -> Any:
    return db.execute(select(projects).where(projects.c.project_id == project_id))[0]


@dataclass(frozen=True)
class Team:
    owner: User
    collab: User
    viewer: User
    stranger: User
    project_id: str

    def key(self, role: str, admin_key: str) -> str:
        return admin_key if role == "admin" else getattr(self, role).api_key


@pytest.fixture
def team(api: ApiClient, db: Database, make_user: MakeUser) -> Team:
    owner, collab, viewer, stranger = make_user(), make_user(), make_user(), make_user()
    project_id = new_project(api, owner)
    join(db, project_id, collab, "collaborator")
    join(db, project_id, viewer, "viewer")
    return Team(owner, collab, viewer, stranger, project_id)
