"""Public paths: which paths of a project anyone may read or copy, and reading them.

A path is public by its name, and what it leads to must be too: a link in a public folder
never exposes what it points at unless that is public as well."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.actor import Actor
from calchub.db.tables import public_paths
from calchub.errors import DomainError, LimitExceeded, Refused
from calchub.hub import Hub
from calchub.projects.lifecycle import project_spec
from calchub.projects.runtime_errors import domain_error
from calchub.projects.store import get_project
from calchub.runtime import FileFailure, RuntimeFailure

MAX_PUBLIC_FILE_BYTES = 20 * 1000 * 1000


def is_public(path: str, public: Iterable[str]) -> bool:
    """CoCalc's rule: some public path is "" (the whole project), equals `path`, or is a
    folder containing it. A ".." segment could climb out of the shared folder, and an
    absolute path names something outside the project's home, so neither ever is."""
    if path.startswith("/") or ".." in path.split("/"):
        return False
    # A folder may be published as "A1" or "A1/" (CoCalc's own tests use the latter).
    folders = [p.rstrip("/") for p in public]
    return any(p == "" or path == p or path.startswith(p + "/") for p in folders)


def really_public(real_path: str | None, public: Iterable[str]) -> bool:
    """Whether the place a path leads to once links are resolved (relative to the home,
    None when outside it) is public."""
    return real_path is not None and is_public(real_path, public)


def not_public_message(project_id: str, path: str) -> str:
    return f"path '{path}' of project with id '{project_id}' is not public"


def not_public(project_id: str, path: str) -> DomainError:
    return Refused(not_public_message(project_id, path))


async def public_paths_of(engine: AsyncEngine, project_id: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.scalars(
            select(public_paths.c.path).where(
                public_paths.c.project_id == project_id.lower(),
                public_paths.c.disabled.is_(False),
            )
        )
        return list(rows)


async def require_public(engine: AsyncEngine, project_id: str, path: str) -> None:
    if not is_public(path, await public_paths_of(engine, project_id)):
        raise not_public(project_id, path)


async def public_source_check(
    engine: AsyncEngine, project_id: str, path: str
) -> Callable[[str], bool]:
    """For a copy of `path`: whether the place it really reads from may be copied. The
    public paths are those of now, which may have changed since the copy was asked for."""
    public = await public_paths_of(engine, project_id)
    requested = is_public(path, public)
    return lambda real_path: requested and is_public(real_path, public)


@contextmanager
def public_read_slot(hub: Hub, actor: Actor) -> Iterator[None]:
    """One of the few public reads a client may have under way at once on this hub, or
    LimitExceeded: a read of a stopped project takes one of the hub's few one-shot readers,
    and no client may hold them all. Anonymous clients are told apart by address (behind a
    trusted proxy, the one it forwards), others by their key's account or project."""
    if actor.account_id is not None:
        client, whom = f"account {actor.account_id}", "this account"
    elif actor.project_id is not None:
        client, whom = f"project {actor.project_id}", "this project"
    else:
        client, whom = f"ip {actor.ip}", f"the ip address {actor.ip}"
    if not hub.public_reads.try_take(client):
        raise LimitExceeded(f"Too many public reads at once from {whom}; try again shortly.")
    try:
        yield
    finally:
        hub.public_reads.give_back(client)


async def read_public_text(hub: Hub, actor: Actor, project_id: str, path: str) -> str:
    with public_read_slot(hub, actor):
        return await _read_public_text(hub, project_id, path)


async def _read_public_text(hub: Hub, project_id: str, path: str) -> str:
    public = await public_paths_of(hub.engine, project_id)
    if not is_public(path, public):
        raise not_public(project_id, path)
    async with hub.engine.connect() as conn:
        project = await get_project(conn, project_id.lower())
    if project is None:
        raise not_public(project_id, path)  # a deleted project's paths are no longer public
    try:
        # Read where it lies: a stranger's read never starts a project.
        spec = await project_spec(hub, project)
        contents = await hub.runtime.peek_file(spec, path, MAX_PUBLIC_FILE_BYTES)
    except RuntimeFailure as exc:
        if isinstance(exc, FileFailure) and exc.opened and not really_public(exc.real_path, public):
            # Even its error (its size, that it is a folder) is not for strangers.
            raise not_public(project_id, path) from None
        if isinstance(exc, FileFailure) and exc.code == "EFBIG":
            raise LimitExceeded(
                f"file '{path}' is too large; public files are read up to 20MB"
            ) from None
        raise domain_error(exc) from None
    if not really_public(contents.real_path, public):
        raise not_public(project_id, path)
    return contents.data.decode("utf-8", errors="replace")
