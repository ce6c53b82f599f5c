"""Handlers for copying between projects, copy status and cancelling, and public reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from calchub.accounts.store import is_valid_uuid
from calchub.api import messages as m
from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.api.registry import handles
from calchub.files import copy_worker, copying
from calchub.files.copying import HISTORY_PATTERN, CopyFilter, CopyJob, CopyNotFinished
from calchub.files.public import read_public_text, require_public
from calchub.projects.access import require_project

# As long as CoCalc's hub waits for a copy before giving up on it.
WAIT_MAX_S = 240.0
NOTE = "Query copy_path_status with the copy_path_id to learn if the copy operation was successful."
MAX_OFFSET = 100_000
MAX_LIMIT = 1000


async def _may(call: Call, project_id: str, *, write: bool) -> bool:
    try:
        await require_project(call, project_id, write=write)
    except HandlerError:
        return False
    return True


async def _require_copy_access(call: Call, source: str, target: str) -> None:
    """CoCalc checks the target first: writing there is what a copy does."""
    if not await _may(call, target, write=True):
        raise HandlerError(f"ACCESS BLOCKED -- No write access to target project -- {target}")
    if not await _may(call, source, write=False):
        raise HandlerError(f"ACCESS BLOCKED -- No read access to source project -- {source}")


def _parse_scheduled(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise HandlerError(
            f"scheduled='{value}' is not a valid date (use ISO 8601, e.g. 2030-01-31T12:00:00Z)"
        ) from None
    # A date without a zone is taken as UTC, the zone of every time in the API.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _timeout(value: float | None) -> int | None:
    return max(1, round(value)) if value else None


async def _wait(call: Call, copy_id: str) -> dict[str, Any]:
    try:
        error = await copying.wait_until_finished(call.hub.engine, copy_id, WAIT_MAX_S)
    except CopyNotFinished:
        raise HandlerError(
            f"copy operation '{copy_id}' did not finish within {int(WAIT_MAX_S)} seconds; "
            "query copy_path_status with its copy_path_id"
        ) from None
    if error:
        raise HandlerError(error)
    return {"event": "success"}


@handles("copy_path_between_projects")
async def copy_path_between_projects(call: Call, msg: m.CopyPathBetweenProjects) -> dict[str, Any]:
    if not is_valid_uuid(msg.src_project_id):
        raise HandlerError(f"src_project_id='{msg.src_project_id}' not valid")
    if not is_valid_uuid(msg.target_project_id):
        raise HandlerError(f"target_project_id='{msg.target_project_id}' not valid")
    source, target = msg.src_project_id.lower(), msg.target_project_id.lower()
    await _require_copy_access(call, source, target)
    scheduled = _parse_scheduled(msg.scheduled)
    exclude = [*(msg.exclude or []), *([HISTORY_PATTERN] if msg.exclude_history else [])]
    job = CopyJob(
        source_project_id=source,
        source_path=msg.src_path,
        target_project_id=target,
        target_path=msg.src_path if msg.target_path is None else msg.target_path,
        overwrite_newer=msg.overwrite_newer,
        delete_missing=msg.delete_missing,
        backup=msg.backup,
        timeout=_timeout(msg.timeout),
        exclude=tuple(exclude),
        scheduled=scheduled,
        account_id=call.caller,
    )
    copy_id = await copying.insert_copy(call.hub.engine, job)
    copy_worker.kick(call.hub)
    if msg.wait_until_done and scheduled is None:
        return await _wait(call, copy_id)
    return {"event": "copy_path_between_projects_response", "copy_path_id": copy_id, "note": NOTE}


@handles("copy_public_path_between_projects")
async def copy_public_path_between_projects(
    call: Call, msg: m.CopyPublicPathBetweenProjects
) -> dict[str, Any]:
    target = msg.target_project_id
    if not is_valid_uuid(target) or not await _may(call, target.lower(), write=True):
        raise HandlerError(f"user must have write access to target project {target}")
    await require_public(call.hub.engine, msg.src_project_id, msg.src_path)
    job = CopyJob(
        source_project_id=msg.src_project_id.lower(),
        source_path=msg.src_path,
        target_project_id=target.lower(),
        target_path=msg.src_path if msg.target_path is None else msg.target_path,
        overwrite_newer=msg.overwrite_newer,
        delete_missing=msg.delete_missing,
        backup=msg.backup,
        public=True,
        timeout=_timeout(msg.timeout),
        exclude=tuple(msg.exclude or ()),
        account_id=call.caller,
    )
    copy_id = await copying.insert_copy(call.hub.engine, job)
    copy_worker.kick(call.hub)
    return await _wait(call, copy_id)


def _range(name: str, value: int, high: int) -> int:
    if not 0 <= value <= high:
        raise HandlerError(f"ILLEGAL VALUE {name}='{value}' (must be in [0, {high}])")
    return value


async def _status_one(call: Call, copy_id: str) -> dict[str, Any]:
    row = await copying.get_copy(call.hub.engine, copy_id.lower())
    if row is None:
        raise HandlerError(f"Can't find copy operation with ID={copy_id}")
    await _require_copy_access(call, row.source_project_id, row.target_project_id)
    return copying.op_object(row)


async def _status_list(call: Call, msg: m.CopyPathStatus) -> list[dict[str, Any]]:
    source, target = msg.src_project_id, msg.target_project_id
    if source is not None:
        if not is_valid_uuid(source):
            raise HandlerError(f"invalid src_project_id={source}")
        if not await _may(call, source.lower(), write=False):
            raise HandlerError(f"ACCESS BLOCKED -- No read access to source project -- {source}")
    if target is not None:
        if not is_valid_uuid(target):
            raise HandlerError(f"invalid target_project_id={target}")
        if not await _may(call, target.lower(), write=True):
            raise HandlerError(f"ACCESS BLOCKED -- No write access to target project -- {target}")
    query = CopyFilter(
        source_project_id=source.lower() if source else None,
        target_project_id=target.lower() if target else None,
        source_path=msg.src_path,
        pending=msg.pending and not msg.failed,
        failed=msg.failed,
        offset=_range("offset", msg.offset or 0, MAX_OFFSET),
        limit=_range("limit", msg.limit, MAX_LIMIT),
    )
    return [copying.op_object(row) for row in await copying.list_copies(call.hub.engine, query)]


@handles("copy_path_status")
async def copy_path_status(call: Call, msg: m.CopyPathStatus) -> dict[str, Any]:
    if msg.src_project_id is None and msg.target_project_id is None:
        if msg.copy_path_id is None:
            raise HandlerError(
                "'copy_path_id' (UUID) of a copy operation or "
                "'src_project_id/target_project_id' must be defined"
            )
        data: Any = await _status_one(call, msg.copy_path_id)
    else:
        data = await _status_list(call, msg)
    return {"event": "copy_path_status_response", "data": data}


@handles("copy_path_delete")
async def copy_path_delete(call: Call, msg: m.CopyPathDelete) -> dict[str, Any]:
    if not msg.copy_path_id:
        raise HandlerError("ERROR: copy_path_id missing")
    copy_id = msg.copy_path_id.lower()
    gone = HandlerError(
        f"Copy operation '{msg.copy_path_id}' either does not exist or already finished"
    )
    row = await copying.get_copy(call.hub.engine, copy_id)
    if row is None:
        raise gone
    await _require_copy_access(call, row.source_project_id, row.target_project_id)
    if not await copying.delete_scheduled(call.hub.engine, copy_id):
        raise gone
    return {"event": "copy_path_status_response", "data": f"copy_path_id = '{copy_id}' deleted"}


@handles("public_get_text_file")
async def public_get_text_file(call: Call, msg: m.PublicGetTextFile) -> dict[str, Any]:
    text = await read_public_text(call.hub, msg.project_id, msg.path)
    return {"event": "public_text_file_contents", "data": text}
