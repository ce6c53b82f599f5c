"""Host-side process facts read from /proc: identity (pid plus start time, so a recycled pid
is never mistaken for a project's process), liveness, process trees and memory use."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    return raw.rsplit(b")", 1)[1].decode().split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it is gone."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def is_alive(pid: int, started: int) -> bool:
    """True when `pid` is still the process that started at `started` and not a zombie."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X") and int(fields[19]) == started


def parent_map() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            found.setdefault(int(fields[1]), []).append(int(entry.name))
    return found


def children(pid: int) -> list[int]:
    """The children of single-threaded `pid`: the kernel's list of its main thread's
    children, or a scan of /proc where the kernel keeps no such list."""
    listed = PROC / str(pid) / "task" / str(pid) / "children"
    try:
        return [int(child) for child in listed.read_text().split()]
    except FileNotFoundError:
        return parent_map().get(pid, [])
    except (OSError, ValueError):
        return []


def tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    by_parent = parent_map()
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(by_parent.get(pid, []))
    return found


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def rss_bytes(pids: list[int]) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int((PROC / str(pid) / "statm").read_text().split()[1]) * page
    return total
