"""The edit history of a synchronised document (`get_syncdoc_history`): one entry per patch,
oldest first, with its author's name."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.access import project_role
from calchub.actor import Actor
from calchub.db.tables import accounts, patches, projects, syncstrings
from calchub.errors import Invalid, NotFound, Refused
from calchub.hub import Hub
from calchub.ids import is_valid_uuid

STRING_ID_LENGTH = 40
NAME_LENGTH = 80


def truncated(text: str, limit: int = NAME_LENGTH) -> str:
    """CoCalc's `trunc`: longer texts are cut and end with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _project_of(conn: AsyncConnection, string_id: Any) -> tuple[str, list[Any]]:
    if not isinstance(string_id, str) or len(string_id) != STRING_ID_LENGTH:
        raise Invalid("string_id must be specified and valid")
    row = (
        await conn.execute(
            select(syncstrings.c.project_id, syncstrings.c.users).where(
                syncstrings.c.string_id == string_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("no such syncdoc")
    authors = row.users if isinstance(row.users, list) else []
    return str(row.project_id), authors


async def _check_write(conn: AsyncConnection, actor: Actor, project_id: str) -> None:
    """Owners, collaborators and admins (CoCalc's _check_project_access)."""
    if not is_valid_uuid(project_id):
        raise Invalid("project_id must be specified and valid")
    if not (await project_role(conn, actor, project_id)).may_write:
        raise Refused("must have write access")


async def _author_entries(
    conn: AsyncConnection, project_id: str, authors: list[Any]
) -> list[dict[str, str]]:
    """`{account_id, user}` per index of the syncstring's `users` (the project itself when
    it edited the file); an author whose account is unknown has no `user`."""
    ids = [str(author) for author in authors if is_valid_uuid(author)]
    rows = await conn.execute(
        select(accounts.c.account_id, accounts.c.first_name, accounts.c.last_name).where(
            accounts.c.account_id.in_([author.lower() for author in ids])
        )
    )
    names = {
        row.account_id: truncated(f"{row.first_name or ''} {row.last_name or ''}".strip())
        for row in rows
    }
    title = await conn.scalar(select(projects.c.title).where(projects.c.project_id == project_id))
    entries: list[dict[str, str]] = []
    for author in authors:
        entry = {"account_id": str(author)}
        key = str(author).lower()
        if key == project_id:
            entry["user"] = f"Project: {truncated(title or '')}"
        elif key in names:
            entry["user"] = names[key]
        entries.append(entry)
    return entries


async def syncdoc_history(
    hub: Hub, actor: Actor, string_id: Any, with_patches: bool
) -> list[dict[str, Any]]:
    """Every patch of the document, oldest first: `time_utc`, `format`, the author
    (`account_id`, `user`) and either `patch_length` or the `patch` itself (and `snapshot`
    where one was taken)."""
    async with hub.engine.connect() as conn:
        try:
            return await _history(conn, actor, string_id, with_patches)
        except (Invalid, NotFound, Refused) as exc:
            raise type(exc)(
                f"unable to get syncdoc history for string_id {string_id} -- {exc}"
            ) from None


async def _history(
    conn: AsyncConnection, actor: Actor, string_id: Any, with_patches: bool
) -> list[dict[str, Any]]:
    project_id, authors = await _project_of(conn, string_id)
    await _check_write(conn, actor, project_id)
    people = await _author_entries(conn, project_id, authors)
    columns: list[Any] = [patches.c.time, patches.c.user_id, patches.c.format]
    if with_patches:
        columns += [patches.c.patch, patches.c.snapshot]
    else:
        columns.append(func.length(patches.c.patch).label("patch_length"))
    rows = await conn.execute(
        select(*columns).where(patches.c.string_id == string_id).order_by(patches.c.time)
    )
    history: list[dict[str, Any]] = []
    for row in rows:
        entry: dict[str, Any] = {"time_utc": row.time, "format": row.format}
        # user_id indexes the syncstring's users (CoCalc indexes a list that skips unknown
        # accounts, which shifts every later author).
        if row.user_id is not None and 0 <= row.user_id < len(people):
            entry.update(people[row.user_id])
        if with_patches:
            entry["patch"] = row.patch
            if row.snapshot is not None:
                entry["snapshot"] = row.snapshot
        else:
            entry["patch_length"] = row.patch_length
        history.append(entry)
    return history


async def document_history(hub: Hub, actor: Actor, project_id: Any, path: Any) -> dict[str, Any]:
    """A document's patches and its syncstring, as the current API's `sync.history` gives
    them; `{"patches": [], "info": {}}` for a document without history."""
    if not isinstance(project_id, str) or not is_valid_uuid(project_id):
        raise Invalid("project_id must be a valid uuid")
    if not isinstance(path, str):
        raise Invalid("path must be a string")
    project_id = project_id.lower()
    string_id = hashlib.sha1((project_id + path).encode("utf-8"), usedforsecurity=False)
    async with hub.engine.connect() as conn:
        if not (await project_role(conn, actor, project_id)).may_write:
            raise Refused("user must be collaborator on source project")
        info = (
            await conn.execute(
                select(syncstrings).where(syncstrings.c.string_id == string_id.hexdigest())
            )
        ).first()
        if info is None:
            return {"patches": [], "info": {}}
        rows = await conn.execute(
            select(patches.c.time, patches.c.user_id, patches.c.patch, patches.c.snapshot)
            .where(patches.c.string_id == info.string_id)
            .order_by(patches.c.time)
        )
        found = []
        for seq, row in enumerate(rows):
            mesg: dict[str, Any] = {
                "time": row.time,
                "wall": row.time,
                "patch": row.patch,
                "user_id": row.user_id,
                "parents": [],
            }
            if row.snapshot is not None:
                mesg["is_snapshot"] = True
            found.append({"seq": seq, "time": row.time, "mesg": mesg})
    keys = ("doctype", "init", "last_active", "path", "project_id", "read_only", "save")
    described = {key: getattr(info, key) for key in keys}
    described.update(string_id=info.string_id, users=info.users)
    return {"patches": found, "info": described}
