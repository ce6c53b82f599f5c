"""Per-table set hooks: computed ids, name checks and the projects' users/action_request."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.accounts.store import is_valid_uuid
from calchub.db.tables import project_users, public_paths
from calchub.projects.scheduler import ACTIONS
from calchub.userquery import users_map
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, setting
from calchub.userquery.merge import deep_merge

_PUBLIC_NAME = re.compile(r"^[a-zA-Z0-9.][a-zA-Z0-9.-]{0,99}$")


def public_path_id(query: dict[str, Any]) -> str:
    project_id, path = query.get("project_id"), query.get("path")
    if not isinstance(project_id, str) or not isinstance(path, str):
        raise setting("id", "project_id and path must be strings")
    return hashlib.sha1((project_id + path).encode("utf-8"), usedforsecurity=False).hexdigest()


async def check_public_path_name(conn: AsyncConnection, query: dict[str, Any]) -> None:
    name = query.get("name")
    if not name:
        return
    if not isinstance(name, str) or is_valid_uuid(name) or not _PUBLIC_NAME.match(name):
        raise QueryError(
            "Error: name must contain only a-z,A-Z,0-9, . or -, and not start with hyphen "
            "or have spaces."
        )
    # Unique within the project (CoCalc checks across all projects: a bug).
    clash = await conn.execute(
        select(public_paths.c.id).where(
            public_paths.c.project_id == query["project_id"],
            public_paths.c.path != query.get("path"),
            func.lower(public_paths.c.name) == name.lower(),
        )
    )
    if clash.first() is not None:
        raise QueryError(
            "There is already a public path in this project with the same name.  "
            "Names are not case sensitive."
        )


async def apply_users(conn: AsyncConnection, caller: Caller, project_id: str, value: Any) -> None:
    entries = users_map.validate(value)
    rows = await conn.execute(select(project_users).where(project_users.c.project_id == project_id))
    members = {
        row.account_id: users_map.Member(row.group, bool(row.hide), dict(row.upgrades or {}))
        for row in rows
    }
    for account_id, member in users_map.changes(
        entries, members, caller.account_id, caller.is_admin
    ).items():
        await conn.execute(
            update(project_users)
            .where(
                project_users.c.project_id == project_id,
                project_users.c.account_id == account_id,
            )
            .values(hide=member.hide, upgrades=member.upgrades or None)
        )


def action_request(stored: Any, value: Any, now: str) -> tuple[str | None, dict[str, Any]]:
    """The scheduler action to request (if any) and the action_request to store otherwise."""
    if not isinstance(value, dict):
        raise setting("action_request", "action_request must be an object")
    action = value.get("action")
    if action in ACTIONS:
        return str(action), {}
    merged = deep_merge(stored, value)
    if action != "test":
        merged.update(finished=now, err=f"unknown action '{action}'")
    return None, merged
