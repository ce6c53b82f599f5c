"""Text files in projects: read (single and array form) and write."""

from __future__ import annotations

import asyncio
from typing import Any

from calchub.actor import Actor
from calchub.errors import DomainError, Invalid, LimitExceeded
from calchub.hub import Hub
from calchub.projects.access import require_project
from calchub.projects.lifecycle import ensure_running
from calchub.projects.runtime_errors import runtime_errors
from calchub.runtime import FileFailure

MAX_TEXT_FILE_BYTES = 10 * 1000 * 1000
MAX_PARALLEL_READS = 20


def _large_file(size: int) -> str:
    return (
        f"Attempt to open large file of size {round(size / 1_000_000)}MB; the maximum "
        "allowed size is 10MB. Use vim, emacs, or pico from a terminal instead."
    )


async def read_text(hub: Hub, actor: Actor, project_id: str, path: str) -> str:
    """The file as text, starting the project when needed."""
    project = await require_project(hub, actor, project_id, write=False)
    with runtime_errors():
        spec = await ensure_running(hub, project)
        try:
            data = await hub.runtime.read_file(spec, path, MAX_TEXT_FILE_BYTES)
        except FileFailure as exc:
            if exc.code == "EFBIG":
                raise LimitExceeded(_large_file(exc.size or 0)) from None
            raise
    return data.decode("utf-8", errors="replace")


async def read_many(
    hub: Hub, actor: Actor, project_ids: list[str], paths: list[str] | None
) -> list[dict[str, Any]]:
    """The array form (`paths` None: not given as an array). Permission failures answer for
    the whole request; file errors are reported per item. Items come back in completion
    order, as in CoCalc."""
    if paths is None or len(paths) != len(project_ids):
        raise Invalid("if project_id is an array, then path must be an array of the same length")
    for project_id in dict.fromkeys(project_ids):
        await require_project(hub, actor, project_id, write=False)
    semaphore = asyncio.Semaphore(MAX_PARALLEL_READS)
    results: list[dict[str, Any]] = []

    async def one(project_id: str, path: str) -> None:
        async with semaphore:
            item: dict[str, Any] = {"path": path, "project_id": project_id}
            try:
                item["content"] = await read_text(hub, actor, project_id, path)
            except DomainError as exc:
                item["error"] = exc.detail
            results.append(item)

    await asyncio.gather(*(one(p, f) for p, f in zip(project_ids, paths, strict=True)))
    return results


async def write_text(hub: Hub, actor: Actor, project_id: str, path: str, content: str) -> None:
    project = await require_project(hub, actor, project_id, write=True)
    with runtime_errors():
        spec = await ensure_running(hub, project)
        await hub.runtime.write_file(spec, path, content.encode("utf-8"))
