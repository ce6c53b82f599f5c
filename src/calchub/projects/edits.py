"""A project is edited whenever someone uses it through the access check of exec, text files
and collaborators (CoCalc's get_project, which touches the project): `projects.last_edited`
moves to now, at most once every EDIT_INTERVAL_S per project on each hub process, as CoCalc
throttles it (in memory; several hubs each write at most that often).

The check is a dictionary lookup on every other call. The write is one UPDATE of one row,
made on a task of its own that the request waits for only briefly: the request never waits
on the database for longer than WRITE_WAIT_S, whatever holds the write lock (on SQLite) or
the row (on PostgreSQL), even a transaction of the same request; and a write that fails is
logged, never the request's failure (nothing the caller asked for depends on it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import bindparam, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.db.tables import projects
from calchub.db.types import UtcDateTime, utcnow
from calchub.locks import Throttle

log = logging.getLogger("calchub.projects")

EDIT_INTERVAL_S = 30.0
# Long enough for a write that only queues behind other short ones, so that whoever reads
# the project right after the call sees it edited; short enough not to matter otherwise.
WRITE_WAIT_S = 1.0

_AT = bindparam("edited_at", type_=UtcDateTime())
# Built once. A deleted project stays as its deletion left it; an edit written later on
# another hub (or by a touch) is never moved back.
_EDIT = (
    update(projects)
    .where(
        projects.c.project_id == bindparam("edited_id"),
        projects.c.deleted.is_(False),
        or_(projects.c.last_edited.is_(None), projects.c.last_edited < _AT),
    )
    .values(last_edited=_AT)
)


class ProjectEdits:
    """This hub's edits of projects: when each is due, and the writes under way."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        interval_s: float = EDIT_INTERVAL_S,
        wait_s: float = WRITE_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._wait_s = wait_s
        self._throttle = Throttle(interval_s, clock)
        # Writes under way, kept referenced until they end (or the hub closes).
        self._writing: set[asyncio.Task[None]] = set()

    def due(self, project_id: str) -> bool:
        """Whether the project's edit is to be written now (and, if so, it counts as written
        from now on: a concurrent call does not write it too)."""
        return self._throttle.claim(project_id)

    async def write(self, project_id: str) -> None:
        """Write the edit; returns once written, or after the wait (WRITE_WAIT_S unless
        told) with the write still going on. Never raises but for the caller's own
        cancellation, which leaves the write going on too."""
        task = asyncio.get_running_loop().create_task(
            self._write(project_id), name=f"edit project {project_id}"
        )
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)
        # Not cancelled when the wait ends (or the request goes away): it finishes on its own.
        await asyncio.wait({task}, timeout=self._wait_s)

    async def _write(self, project_id: str) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(_EDIT, {"edited_id": project_id, "edited_at": utcnow()})
        except Exception as exc:
            log.warning("could not record an edit of project %s: %s", project_id, exc)

    @property
    def under_way(self) -> int:
        """How many writes have not ended yet."""
        return len(self._writing)

    async def finished(self) -> None:
        """Return once the writes under way have ended."""
        await asyncio.gather(*self._writing, return_exceptions=True)

    async def close(self) -> None:
        """Stop the writes under way (an edit lost at shutdown is a few seconds of
        `last_edited`), before the engine goes."""
        for task in list(self._writing):
            task.cancel()
        await asyncio.gather(*self._writing, return_exceptions=True)
