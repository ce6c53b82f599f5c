"""Reading an agent's folder listing. The reply comes from inside a sandbox: its shape and size
are checked before anything in it is believed."""

from __future__ import annotations

import math
from typing import Any

from calchub.runtime.base import DirectoryEntry, DirectoryListing, RuntimeFailure
from calchub.runtime.home_paths import relative_to_home

MALFORMED = "the project sent a malformed listing"


def parse_listing(reply: dict[str, Any], home: str, max_entries: int) -> DirectoryListing:
    raw = reply.get("entries")
    if not isinstance(raw, list) or len(raw) > max_entries:
        raise RuntimeFailure(MALFORMED)
    entries = sorted((_entry(item) for item in raw), key=lambda entry: entry.name)
    return DirectoryListing(entries, relative_to_home(reply.get("real_path"), home))


def _entry(item: Any) -> DirectoryEntry:
    if not isinstance(item, dict):
        raise RuntimeFailure(MALFORMED)
    name, mtime = item.get("name"), item.get("mtime")
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\0" in name:
        raise RuntimeFailure(MALFORMED)
    if not isinstance(mtime, int | float) or not _number(mtime):
        raise RuntimeFailure(MALFORMED)
    if item.get("isdir") is True:
        return DirectoryEntry(name=name, mtime=float(mtime), isdir=True)
    size = item.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RuntimeFailure(MALFORMED)
    return DirectoryEntry(name=name, mtime=float(mtime), size=size)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
