"""Per-project control groups: memory, CPU and process-count limits for a whole sandbox.

Each project gets `calchub/<project_id>` under every usable controller. cgroup v1 controllers
(one hierarchy per controller under /sys/fs/cgroup/<controller>) are preferred; a controller
missing there is taken from the v2 hierarchy when that one offers it. Controllers found in
neither are reported as not covered, and the caller falls back to rlimits for them. All paths
are derived from the project id, so any hub process on the machine finds the same groups.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    cpu_cores: float
    pids: int


@dataclass(frozen=True)
class _Hierarchy:
    """Where the groups of some controllers live: a v1 mount, or the v2 mount."""

    root: Path
    controllers: frozenset[str]
    v2: bool


class CgroupManager:
    def __init__(
        self,
        root: Path = Path("/sys/fs/cgroup"),
        parent: str = "calchub",
        mounts: Path = Path("/proc/self/mounts"),
    ) -> None:
        self._parent = parent
        self._hierarchies = _detect(root, mounts)

    @property
    def controllers(self) -> frozenset[str]:
        """The controllers this machine lets us use."""
        found: set[str] = set()
        for h in self._hierarchies:
            found |= h.controllers
        return frozenset(found)

    def _dirs(self, project_id: str) -> list[tuple[_Hierarchy, Path]]:
        return [(h, h.root / self._parent / project_id) for h in self._hierarchies]

    def create(self, project_id: str, limits: Limits) -> list[Path]:
        """Create the project's groups with their limits; returns the files through which a
        process joins them by writing 0 (itself) into each. Raises OSError when a group
        cannot be set up."""
        joins: list[Path] = []
        for h, path in self._dirs(project_id):
            if h.v2:
                _enable_v2_controllers(h, path.parent)
            path.mkdir(parents=True, exist_ok=True)
            for name, value in _limit_files(h, limits):
                _write(path / name, value)
            for name, value in _swap_files(h, limits):
                # Swap counts as memory where the kernel can account it (not always on).
                with contextlib.suppress(OSError):
                    _write(path / name, value)
            joins.append(path / _join_file(h))
        return joins

    def members(self, project_id: str) -> set[int]:
        pids: set[int] = set()
        for _, path in self._dirs(project_id):
            with contextlib.suppress(OSError):
                pids.update(int(x) for x in (path / "cgroup.procs").read_text().split())
        return pids

    def exists(self, project_id: str) -> bool:
        return any(path.is_dir() for _, path in self._dirs(project_id))

    def kill(self, project_id: str) -> int:
        """SIGKILL every member once; returns how many were signalled."""
        for h, path in self._dirs(project_id):
            if h.v2 and (path / "cgroup.kill").exists():
                with contextlib.suppress(OSError):
                    _write(path / "cgroup.kill", "1")
        members = self.members(project_id)
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(members)

    def remove(self, project_id: str) -> bool:
        """Remove the project's groups; False while some still has members."""
        done = True
        for _, path in self._dirs(project_id):
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                done = False
        return done

    def memory_usage(self, project_id: str) -> int | None:
        for h, path in self._dirs(project_id):
            if "memory" in h.controllers:
                name = "memory.current" if h.v2 else "memory.usage_in_bytes"
                with contextlib.suppress(OSError, ValueError):
                    return int((path / name).read_text())
        return None


def _join_file(h: _Hierarchy) -> str:
    """v1's `tasks` moves one thread, the writer's own when it writes 0: the kernel then
    skips the lock that moving a whole process takes, which waits for an RCU grace period
    (milliseconds, at every project start). The joiner is a single-threaded shell, so its
    one thread is the whole process. v2 has no such file."""
    return "cgroup.procs" if h.v2 else "tasks"


def _limit_files(h: _Hierarchy, limits: Limits) -> list[tuple[str, str]]:
    quota_us = max(1000, int(limits.cpu_cores * CPU_PERIOD_US))
    files: list[tuple[str, str]] = []
    if "memory" in h.controllers:
        files.append(("memory.max" if h.v2 else "memory.limit_in_bytes", str(limits.memory_bytes)))
    if "pids" in h.controllers:
        files.append(("pids.max", str(limits.pids)))
    if "cpu" in h.controllers:
        if h.v2:
            files.append(("cpu.max", f"{quota_us} {CPU_PERIOD_US}"))
        else:
            files += [
                ("cpu.cfs_period_us", str(CPU_PERIOD_US)),
                ("cpu.cfs_quota_us", str(quota_us)),
            ]
    return files


def _swap_files(h: _Hierarchy, limits: Limits) -> list[tuple[str, str]]:
    if "memory" not in h.controllers:
        return []
    if h.v2:
        return [("memory.swap.max", "0")]
    return [("memory.memsw.limit_in_bytes", str(limits.memory_bytes))]


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _enable_v2_controllers(h: _Hierarchy, parent: Path) -> None:
    """v2 only lets a group use a controller its parent enabled for its children."""
    parent.mkdir(parents=True, exist_ok=True)
    wanted = " ".join(f"+{c}" for c in sorted(h.controllers))
    for level in (h.root, parent):
        _write(level / "cgroup.subtree_control", wanted)


def _mounts(mounts: Path) -> list[tuple[Path, str, set[str]]]:
    """(mount point, file system type, options) of every cgroup mount."""
    found = []
    with contextlib.suppress(OSError):
        for line in mounts.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2"):
                found.append((Path(fields[1]), fields[2], set(fields[3].split(","))))
    return found


def _detect(root: Path, mounts: Path) -> list[_Hierarchy]:
    hierarchies: list[_Hierarchy] = []
    covered: set[str] = set()
    v2_root = None
    for point, fstype, options in _mounts(mounts):
        if root not in (point, *point.parents) or not os.access(point, os.W_OK):
            continue
        if fstype == "cgroup2":
            v2_root = point
            continue
        mine = (set(CONTROLLERS) & options) - covered
        if mine:
            hierarchies.append(_Hierarchy(point, frozenset(mine), v2=False))
            covered |= mine
    missing = set(CONTROLLERS) - covered
    if missing and v2_root is not None:
        try:
            available = set((v2_root / "cgroup.controllers").read_text().split())
        except OSError:
            available = set()
        if usable := missing & available:
            hierarchies.append(_Hierarchy(v2_root, frozenset(usable), v2=True))
    return hierarchies
