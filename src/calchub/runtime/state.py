"""What is known about a running project, kept on disk (root-only) so that every hub process
on the machine sees the same thing, and the lock that serialises starting and stopping."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from calchub.runtime import procfs


@dataclass(frozen=True)
class AgentState:
    # The sandbox's PID 1 (the agent); where the hub keeps the process it launched, that one:
    # an unsandboxed agent, or bubblewrap's monitor (a start by a hub that cannot reap).
    pid: int
    start_time: int  # its start time in clock ticks, so a recycled pid is not mistaken for it
    uid: int
    started_at: datetime
    sandboxed: bool
    cgroups: bool

    def alive(self) -> bool:
        return procfs.is_alive(self.pid, self.start_time)


def load(path: Path) -> AgentState | None:
    try:
        raw = json.loads(path.read_text())
        return AgentState(
            pid=int(raw["pid"]),
            start_time=int(raw["start_time"]),
            uid=int(raw["uid"]),
            started_at=datetime.fromisoformat(raw["started_at"]),
            sandboxed=bool(raw["sandboxed"]),
            cgroups=bool(raw["cgroups"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(path: Path, state: AgentState) -> None:
    data = {**asdict(state), "started_at": state.started_at.isoformat()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


class ProjectLocks:
    """Mutual exclusion per project: an asyncio lock inside this process plus an flock on a
    file, so two hub processes never start or stop the same project at once."""

    def __init__(self) -> None:
        self._local: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, project_id: str, lock_file: Path) -> AsyncIterator[None]:
        local = self._local.setdefault(project_id, asyncio.Lock())
        async with local:
            fd = await _acquire(lock_file)
            try:
                yield
            finally:
                os.close(fd)


async def _acquire(lock_file: Path) -> int:
    """Lock `lock_file`. The holder may remove the file (a stopped project's folder goes):
    a lock won on a file that is no longer there is worthless, so then try again."""
    while True:
        lock_file.parent.mkdir(mode=0o700, exist_ok=True)
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            continue  # its folder went between the two calls
        try:
            # Poll instead of blocking in a thread: a cancelled waiter must not be left
            # holding the lock later.
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.02)
            held = os.fstat(fd)
            try:
                current = os.stat(lock_file, follow_symlinks=False)
            except FileNotFoundError:
                current = None
        except BaseException:
            os.close(fd)
            raise
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)


def remove_folder(folder: Path, lock_file: Path) -> None:
    """Remove a stopped project's runtime folder; the caller holds its lock."""
    for name in ("state.json", "sock", "quota.lock"):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    with contextlib.suppress(FileNotFoundError):
        lock_file.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()
