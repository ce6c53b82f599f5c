"""Folder listings of projects: started on demand, then ordered and paged as CoCalc does."""

from __future__ import annotations

from calchub.hub import Hub
from calchub.projects.lifecycle import ensure_running
from calchub.projects.store import ProjectRow
from calchub.runtime import DirectoryEntry, DirectoryListing


async def list_folder(hub: Hub, project: ProjectRow, path: str, hidden: bool) -> DirectoryListing:
    """Starts the project when it is not running. Raises RuntimeFailure."""
    spec = await ensure_running(hub, project)
    return await hub.runtime.list_directory(spec, path, hidden)


def ordered(entries: list[DirectoryEntry], newest_first: bool) -> list[DirectoryEntry]:
    """By name, or newest first with equal times by name."""
    if newest_first:
        return sorted(entries, key=lambda entry: (-entry.mtime, entry.name))
    return sorted(entries, key=lambda entry: entry.name)


def page(
    entries: list[DirectoryEntry], start: int, limit: int
) -> tuple[list[DirectoryEntry], bool]:
    """Entries from `start`, at most `limit` of them (-1: all), and whether more follow."""
    rest = entries[start:]
    if 0 <= limit < len(rest):
        return rest[:limit], True
    return rest, False
