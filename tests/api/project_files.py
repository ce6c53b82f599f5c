"""Helpers for tests that put files into projects and look at them over the API."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

from sqlalchemy import insert, select

from calchub.db.tables import copy_paths, project_users, public_paths
from calchub.db.types import utcnow
from tests.harness import ApiClient, Database


def create_project(api: ApiClient, key: str) -> str:
    reply = api.call("create_project", key, {"title": "files"})
    assert reply.event == "project_created", reply.body
    return str(reply["project_id"])


def write(api: ApiClient, key: str, project_id: str, path: str, content: str) -> None:
    reply = api.call(
        "write_text_file_to_project",
        key,
        {"project_id": project_id, "path": path, "content": content},
    )
    assert reply.event == "file_written_to_project", reply.body


def read(api: ApiClient, key: str, project_id: str, path: str) -> str | None:
    """The file's text, or None when it cannot be read."""
    reply = api.call("read_text_file_from_project", key, {"project_id": project_id, "path": path})
    return reply["content"] if reply.event == "text_file_read_from_project" else None


def sh(api: ApiClient, key: str, project_id: str, command: str, timeout: float = 10) -> str:
    body = {"project_id": project_id, "command": command, "bash": True, "timeout": timeout}
    reply = api.call("project_exec", key, body)
    assert reply.event == "project_exec_output", reply.body
    return str(reply["stdout"])


def add_member(db: Database, project_id: str, account_id: str, group: str) -> None:
    db.execute(
        insert(project_users).values(
            project_id=project_id, account_id=account_id, group=group, hide=False, added=utcnow()
        )
    )


def publish(db: Database, project_id: str, path: str, *, disabled: bool = False) -> None:
    db.execute(
        insert(public_paths).values(
            id=hashlib.sha1((project_id + path).encode()).hexdigest(),  # noqa: S324 - CoCalc's id
            project_id=project_id,
            path=path,
            disabled=disabled,
            unlisted=False,
            created=utcnow(),
        )
    )


def copy_row(db: Database, copy_id: str) -> Any:
    return db.execute(select(copy_paths).where(copy_paths.c.id == copy_id))[0]


def wait_finished(db: Database, copy_id: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = copy_row(db, copy_id)
        if row.finished is not None:
            return row
        time.sleep(0.2)
    raise AssertionError(f"copy {copy_id} did not finish")


def new_id() -> str:
    return str(uuid.uuid4())
