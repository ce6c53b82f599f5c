"""Listing a folder of a project's public paths, for anyone.

A folder inside a public path is listed whole. A folder on the way to one (the home when
only `pub/` is public, say) is listed too, but shows only the entries that are public or
lead to a public path, so that clients can find them; their names are no secret, as the
public paths themselves are readable by anyone. The rule is applied to where the folder
really is, with links resolved, so a link inside a public folder never exposes another one.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from calchub.actor import Actor
from calchub.errors import Invalid, Refused
from calchub.files.listing import ordered, page
from calchub.files.public import is_public, public_paths_of, public_read_slot
from calchub.hub import Hub
from calchub.projects.lifecycle import project_spec
from calchub.projects.runtime_errors import runtime_errors
from calchub.projects.store import get_project
from calchub.runtime import MAX_LISTING_ENTRIES, DirectoryEntry

# CoCalc's error for a listing that is not public; its clients look for this exact text.
NOT_PUBLIC = "not_public"


@dataclass(frozen=True)
class ListingRequest:
    project_id: str
    path: str
    hidden: bool
    newest_first: bool
    start: int
    limit: int


def leads_to_public(path: str, public: Iterable[str]) -> bool:
    """Whether `path` is a folder above some public path."""
    if path.startswith("/") or ".." in path.split("/"):
        return False
    folder = path.rstrip("/")
    return any(p and (folder == "" or p.startswith(folder + "/")) for p in _folders(public))


def shown_entries(folder: str, public: list[str]) -> Callable[[str], bool] | None:
    """Which names of `folder` (relative to the home, links resolved) a public listing
    shows, or None when it may not be listed at all."""
    if is_public(folder, public):
        return lambda _name: True
    if not leads_to_public(folder, public):
        return None
    prefix = folder.rstrip("/") + "/" if folder.rstrip("/") else ""
    return lambda name: is_public(prefix + name, public) or leads_to_public(prefix + name, public)


def _canonical(path: str) -> str | None:
    """`path` without "." segments and extra slashes, or None when it is absolute or has a
    ".." segment (never public)."""
    if path.startswith("/") or ".." in path.split("/"):
        return None
    normal = posixpath.normpath(path)
    return "" if normal == "." else normal


def _folders(public: Iterable[str]) -> list[str]:
    return [p.rstrip("/") for p in public]


def _check_range(name: str, value: int, low: int) -> int:
    if not low <= value <= MAX_LISTING_ENTRIES:
        raise Invalid(f"ILLEGAL VALUE {name}='{value}' (must be in [{low}, {MAX_LISTING_ENTRIES}])")
    return value


async def public_listing(hub: Hub, actor: Actor, request: ListingRequest) -> dict[str, object]:
    """CoCalc's `result`: {files: [...]} plus `more: true` when `limit` left some out."""
    with public_read_slot(hub, actor):
        return await _public_listing(hub, request)


async def _public_listing(hub: Hub, request: ListingRequest) -> dict[str, object]:
    start = _check_range("start", request.start, 0)
    limit = _check_range("limit", request.limit, -1)
    project_id = request.project_id.lower()
    public = await public_paths_of(hub.engine, project_id)
    # Refused before anything of the project is read.
    path = _canonical(request.path)
    if path is None or shown_entries(path, public) is None:
        raise Refused(NOT_PUBLIC)
    async with hub.engine.connect() as conn:
        project = await get_project(conn, project_id)
    if project is None:
        raise Refused(NOT_PUBLIC)  # a deleted project's paths are no longer public
    with runtime_errors():
        # Listed where it lies: a stranger's request never starts a project.
        spec = await project_spec(hub, project)
        listing = await hub.runtime.peek_directory(spec, path, request.hidden)
    shown = None if listing.real_path is None else shown_entries(listing.real_path, public)
    if shown is None:
        raise Refused(NOT_PUBLIC)
    visible: list[DirectoryEntry] = [e for e in listing.entries if shown(e.name)]
    files, more = page(ordered(visible, request.newest_first), start, limit)
    result: dict[str, object] = {"files": [entry.to_json() for entry in files]}
    if more:
        result["more"] = True
    return result
