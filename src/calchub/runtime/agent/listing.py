"""Folder listings, done as the project's user in the sandbox's view: each name with its size
(or that it is a folder) and modification time, and where the folder really is."""

from __future__ import annotations

import contextlib
import os
import stat

from . import sockets as socket
from .files import FsError
from .project import Project
from .wire import send_frame

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def op_list(project: Project, conn: socket.socket, req: dict[str, Any], _fds: list[int]) -> None:
    path = project.resolve(str(req["path"]))
    hidden = req.get("hidden") is True
    max_entries = int(req["max_entries"])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise FsError.from_os(exc, "scandir", path) from exc
    except ValueError as exc:  # a NUL in the path
        raise FsError("EINVAL", "scandir", path) from exc
    try:
        # Taken from the open folder itself, so a link swapped meanwhile cannot make the
        # hub believe it listed one folder while it got another.
        real = _real_path(fd, path)
        entries = _entries(fd, path, hidden, max_entries)
    finally:
        os.close(fd)
    send_frame(conn, {"ok": True, "real_path": real, "entries": entries})


def _real_path(fd: int, path: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)


def _entries(fd: int, path: str, hidden: bool, max_entries: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    seen = 0
    try:
        with os.scandir(fd) as names:
            for entry in names:
                seen += 1
                if seen > max_entries:
                    raise FsError(
                        "E2BIG",
                        "scandir",
                        path,
                        message=f"folder has more than {max_entries} entries",
                    )
                if not hidden and entry.name.startswith("."):
                    continue
                described = _describe(entry)
                if described is not None:
                    entries.append(described)
    except OSError as exc:
        raise FsError.from_os(exc, "scandir", path) from exc
    return entries


def _describe(entry: os.DirEntry[str]) -> dict[str, Any] | None:
    """CoCalc's entry; None when the name vanished while we looked."""
    try:
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    isdir = stat.S_ISDIR(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            isdir = entry.is_dir(follow_symlinks=True)
    # A name that is not UTF-8 cannot travel as JSON text; it is shown with U+FFFD.
    name = entry.name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    described: dict[str, Any] = {"name": name, "mtime": st.st_mtime_ns // 1_000_000 / 1000}
    if isdir:
        described["isdir"] = True
    else:
        described["size"] = st.st_size
    return described
