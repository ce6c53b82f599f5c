"""Bind mounts on the host, through libc (no mount(8) process per project start).

A project's home is bind-mounted, by root, onto a mount point in the runtime folder, and
bubblewrap binds it into the sandbox from there. Only the runtime folder then has to be
traversable by project uids; the data folder with the homes in it can be private (0700).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str, path: Path) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", str(path))


def bind(source: Path, target: Path) -> None:
    """Bind `source` onto `target`, private (no propagation either way), no setuid, no
    devices."""
    src, dst = os.fsencode(source), os.fsencode(target)
    _check(_libc.mount(src, dst, None, MS_BIND, None), "mount", target)
    try:
        _check(_libc.mount(None, dst, None, MS_PRIVATE, None), "mount", target)
        flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV
        _check(_libc.mount(None, dst, None, flags, None), "mount", target)
    except OSError:
        unmount(target)
        raise


def mount_device(device: str, target: Path, fstype: str) -> None:
    """Mount the file system on `device` onto `target`, with no setuid and no devices."""
    dst = os.fsencode(target)
    flags = MS_NOSUID | MS_NODEV
    _check(_libc.mount(os.fsencode(device), dst, fstype.encode(), flags, None), "mount", target)


def is_mount_point(path: Path) -> bool:
    """Whether something is mounted on `path` (a bind mount from the same file system
    included, which os.path.ismount cannot tell)."""
    wanted = os.path.abspath(path)
    return any(point == wanted for point, _ in _mounts())


def _mounts() -> list[tuple[str, str]]:
    """(mount point, source) of each mount this process sees."""
    found = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            head, _, tail = line.partition(b" - ")
            fields, rest = head.split(b" "), tail.split(b" ")
            if len(fields) > 4 and len(rest) > 1:
                found.append((_unescape(fields[4]), _unescape(rest[1])))
    return found


def source_of(path: Path) -> str | None:
    """What is mounted on `path` last (a device such as /dev/loop3), or None."""
    wanted = os.path.abspath(path)
    sources = [source for point, source in _mounts() if point == wanted]
    return sources[-1] if sources else None


def mounted_sources() -> set[str]:
    return {source for _, source in _mounts()}


def _unescape(field: bytes) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    if b"\\" not in field:
        return os.fsdecode(field)
    out = bytearray()
    i = 0
    while i < len(field):
        if field[i : i + 1] == b"\\" and field[i + 1 : i + 4].isdigit():
            out.append(int(field[i + 1 : i + 4], 8))
            i += 4
        else:
            out += field[i : i + 1]
            i += 1
    return os.fsdecode(bytes(out))


def unmount(target: Path) -> None:
    """Detach whatever is mounted on `target` (all of it, if mounted more than once)."""
    while is_mount_point(target):
        if _libc.umount2(os.fsencode(target), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"umount: {os.strerror(err)}", str(target))


def remove_mount_point(target: Path) -> None:
    unmount(target)
    with contextlib.suppress(FileNotFoundError):
        target.rmdir()
