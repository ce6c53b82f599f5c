"""Text files in projects: read (single and array form) and write."""

from __future__ import annotations

import asyncio
from typing import Any

from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.projects.access import require_project
from calchub.projects.lifecycle import ensure_running
from calchub.runtime import FileFailure, RuntimeFailure

MAX_TEXT_FILE_BYTES = 10 * 1000 * 1000
MAX_PARALLEL_READS = 20


def _large_file(size: int) -> str:
    return (
        f"Attempt to open large file of size {round(size / 1_000_000)}MB; the maximum "
        "allowed size is 10MB. Use vim, emacs, or pico from a terminal instead."
    )


async def read_text(call: Call, project_id: str, path: str) -> str:
    """The file as text, or raise HandlerError with CoCalc's message."""
    project = await require_project(call, project_id, write=False)
    spec = await ensure_running(call.hub, project)
    try:
        data = await call.hub.runtime.read_file(spec, path, MAX_TEXT_FILE_BYTES)
    except FileFailure as exc:
        if exc.code == "EFBIG":
            raise HandlerError(_large_file(getattr(exc, "size", 0))) from None
        raise HandlerError(str(exc)) from None
    except RuntimeFailure as exc:
        raise HandlerError(str(exc)) from None
    return data.decode("utf-8", errors="replace")


async def read_many(call: Call, project_ids: list[str], paths: list[str]) -> list[dict[str, Any]]:
    """The array form. Permission failures answer for the whole request; file errors are
    reported per item. Items come back in completion order, as in CoCalc."""
    for project_id in dict.fromkeys(project_ids):
        await require_project(call, project_id, write=False)
    semaphore = asyncio.Semaphore(MAX_PARALLEL_READS)
    results: list[dict[str, Any]] = []

    async def one(project_id: str, path: str) -> None:
        async with semaphore:
            item: dict[str, Any] = {"path": path, "project_id": project_id}
            try:
                item["content"] = await read_text(call, project_id, path)
            except HandlerError as exc:
                item["error"] = exc.error
            results.append(item)

    await asyncio.gather(*(one(p, f) for p, f in zip(project_ids, paths, strict=True)))
    return results


async def write_text(call: Call, project_id: str, path: str, content: str) -> None:
    project = await require_project(call, project_id, write=True)
    spec = await ensure_running(call.hub, project)
    try:
        await call.hub.runtime.write_file(spec, path, content.encode("utf-8"))
    except RuntimeFailure as exc:
        raise HandlerError(str(exc)) from None
