"""Copies between projects as callers ask for them: access, validation, waiting, status and
cancelling. The rows live in calchub.files.copying; hubs carry them out (copy_worker)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from calchub.actor import Actor
from calchub.errors import Conflict, Failed, Invalid, NotFound, Refused, TimedOut, Unavailable
from calchub.files import copy_worker, copying
from calchub.files.copying import HISTORY_PATTERN, CopyFilter, CopyJob, CopyNotFinished
from calchub.files.public import require_public
from calchub.hub import Hub
from calchub.ids import is_valid_uuid
from calchub.projects.access import may_use

# As long as CoCalc's hub waits for a copy before giving up on it.
WAIT_MAX_S = 240.0
MAX_OFFSET = 100_000
MAX_LIMIT = 1000


@dataclass(frozen=True)
class CopyOrder:
    """A copy as the caller describes it (CoCalc's copy_path_between_projects fields)."""

    src_project_id: str
    src_path: str
    target_project_id: str
    target_path: str | None = None
    overwrite_newer: bool = False
    delete_missing: bool = False
    backup: bool = False
    timeout: float | None = None
    exclude: list[str] | None = None
    exclude_history: bool = False
    # ISO 8601; None means now.
    scheduled: str | None = None


async def _require_copy_access(hub: Hub, actor: Actor, source: str, target: str) -> None:
    """CoCalc checks the target first: writing there is what a copy does."""
    if not await may_use(hub, actor, target, write=True):
        raise Refused(f"ACCESS BLOCKED -- No write access to target project -- {target}")
    if not await may_use(hub, actor, source, write=False):
        raise Refused(f"ACCESS BLOCKED -- No read access to source project -- {source}")


def _parse_scheduled(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(
            f"scheduled='{value}' is not a valid date (use ISO 8601, e.g. 2030-01-31T12:00:00Z)"
        ) from None
    # A date without a zone is taken as UTC, the zone of every time in the API.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# A copy's own timeout is clamped to a day, as exec clamps its timeout: larger values mean
# "no hurry" and must still fit the database's integer column.
MAX_COPY_TIMEOUT_S = 86_400


def _timeout(value: float | None) -> int | None:
    return max(1, round(min(value, MAX_COPY_TIMEOUT_S))) if value else None


async def wait_for_copy(hub: Hub, copy_id: str) -> None:
    """Return once the copy succeeded; raise with its error when it failed."""
    try:
        error = await copying.wait_until_finished(
            hub.engine, copy_id, WAIT_MAX_S, hub.copies_finished
        )
    except CopyNotFinished:
        raise TimedOut(
            f"copy operation '{copy_id}' did not finish within {int(WAIT_MAX_S)} seconds; "
            "query copy_path_status with its copy_path_id"
        ) from None
    if error:
        raise Failed(error)


def _require_copies(hub: Hub) -> None:
    if hub.copy_problem:
        raise Unavailable(hub.copy_problem)


async def copy_between_projects(hub: Hub, actor: Actor, order: CopyOrder) -> str:
    """Record the copy for a hub to carry out; its id."""
    _require_copies(hub)
    if not is_valid_uuid(order.src_project_id):
        raise Invalid(f"src_project_id='{order.src_project_id}' not valid")
    if not is_valid_uuid(order.target_project_id):
        raise Invalid(f"target_project_id='{order.target_project_id}' not valid")
    source, target = order.src_project_id.lower(), order.target_project_id.lower()
    await _require_copy_access(hub, actor, source, target)
    exclude = [*(order.exclude or []), *([HISTORY_PATTERN] if order.exclude_history else [])]
    job = CopyJob(
        source_project_id=source,
        source_path=order.src_path,
        target_project_id=target,
        target_path=order.src_path if order.target_path is None else order.target_path,
        overwrite_newer=order.overwrite_newer,
        delete_missing=order.delete_missing,
        backup=order.backup,
        timeout=_timeout(order.timeout),
        exclude=tuple(exclude),
        scheduled=_parse_scheduled(order.scheduled),
        account_id=actor.account_id,
    )
    copy_id = await copying.insert_copy(hub.engine, job)
    copy_worker.kick(hub)
    return copy_id


async def copy_public_path(hub: Hub, actor: Actor, order: CopyOrder) -> None:
    """Copy a public path of any project into one the caller writes to, and wait for it."""
    _require_copies(hub)
    target = order.target_project_id
    if not await may_use(hub, actor, target, write=True):
        raise Refused(f"user must have write access to target project {target}")
    await require_public(hub.engine, order.src_project_id, order.src_path)
    job = CopyJob(
        source_project_id=order.src_project_id.lower(),
        source_path=order.src_path,
        target_project_id=target.lower(),
        target_path=order.src_path if order.target_path is None else order.target_path,
        overwrite_newer=order.overwrite_newer,
        delete_missing=order.delete_missing,
        backup=order.backup,
        public=True,
        timeout=_timeout(order.timeout),
        exclude=tuple(order.exclude or ()),
        account_id=actor.account_id,
    )
    copy_id = await copying.insert_copy(hub.engine, job)
    copy_worker.kick(hub)
    await wait_for_copy(hub, copy_id)


def _range(name: str, value: int, high: int) -> int:
    if not 0 <= value <= high:
        raise Invalid(f"ILLEGAL VALUE {name}='{value}' (must be in [0, {high}])")
    return value


async def copy_status(hub: Hub, actor: Actor, copy_id: str) -> dict[str, Any]:
    row = await copying.get_copy(hub.engine, copy_id.lower())
    if row is None:
        raise NotFound(f"Can't find copy operation with ID={copy_id}")
    await _require_copy_access(hub, actor, row.source_project_id, row.target_project_id)
    return copying.op_object(row)


@dataclass(frozen=True)
class CopyQuery:
    src_project_id: str | None = None
    target_project_id: str | None = None
    src_path: str | None = None
    pending: bool = True
    failed: bool = False
    offset: int = 0
    limit: int = MAX_LIMIT


async def list_copy_status(hub: Hub, actor: Actor, query: CopyQuery) -> list[dict[str, Any]]:
    source, target = query.src_project_id, query.target_project_id
    if source is not None:
        if not is_valid_uuid(source):
            raise Invalid(f"invalid src_project_id={source}")
        if not await may_use(hub, actor, source, write=False):
            raise Refused(f"ACCESS BLOCKED -- No read access to source project -- {source}")
    if target is not None:
        if not is_valid_uuid(target):
            raise Invalid(f"invalid target_project_id={target}")
        if not await may_use(hub, actor, target, write=True):
            raise Refused(f"ACCESS BLOCKED -- No write access to target project -- {target}")
    found = CopyFilter(
        source_project_id=source.lower() if source else None,
        target_project_id=target.lower() if target else None,
        source_path=query.src_path,
        pending=query.pending and not query.failed,
        failed=query.failed,
        offset=_range("offset", query.offset, MAX_OFFSET),
        limit=_range("limit", query.limit, MAX_LIMIT),
    )
    return [copying.op_object(row) for row in await copying.list_copies(hub.engine, found)]


async def cancel_copy(hub: Hub, actor: Actor, copy_path_id: str) -> str:
    """Cancel a scheduled copy that has not started; the id as stored."""
    copy_id = copy_path_id.lower()
    gone = Conflict(f"Copy operation '{copy_path_id}' either does not exist or already finished")
    row = await copying.get_copy(hub.engine, copy_id)
    if row is None:
        raise gone
    await _require_copy_access(hub, actor, row.source_project_id, row.target_project_id)
    if not await copying.delete_scheduled(hub.engine, copy_id):
        raise gone
    return copy_id
