"""Copies into a fresh target without rsync: a reader in the source's sandbox streams the
tree over the connection the hub passed along, and a writer in the target's sandbox makes
it, each as its own project's user (see calchub.runtime.copy).

Only a target that does not exist yet is written here; there rsync's options have nothing
to compare with, back up or delete, and the result is what `rsync -ax --omit-link-times`
makes of the same tree. Whatever this path does not do exactly (special files, unreadable
or vanishing files, a target that appears meanwhile) ends it as "incomplete": it leaves
only finished files with the source's mode and mtime, so rsync, run next on the same
target, copies the rest and has the last word on errors.

The writer trusts nothing in the stream: every entry is one plain name, created inside the
folder it was opened in, never through a link, never over something that exists.
"""

from __future__ import annotations

import os
import posixpath
import select
import socket
import stat
import struct
import time

from .copies import pin_source
from .files import FsError
from .leftovers import FOLDER
from .project import Project
from .wire import hub_gone, send_frame

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

# One entry: kind, name length, mode, mtime (ns), size of what follows the name.
ENTRY = struct.Struct("<BHIqQ")
DIR, UP, FILE, LINK, END, INCOMPLETE = b"DUFLEX"
# After a file's bytes: whether they are the whole file as it was when opened.
GOOD, BAD = b"\1", b"\0"
MAX_NAME = 255
MAX_LINK = 4095
MAX_DEPTH = 200  # deeper trees are left to rsync (each level holds a folder open)
BUFFER = 1 << 18
PROGRESS_EVERY_S = 1.0
# Where a finished file is linked from: it was written unnamed (O_TMPFILE), so a killed
# copy leaves no half-written file that a later rsync --update would take for newer.
FD_LINK = b"/proc/self/fd/%d"


class Incomplete(Exception):
    """This path cannot finish the copy exactly: rsync is to do the rest."""


class Gone(Exception):
    """The hub or the other side went away, or time ran out: the copy is abandoned."""


def _seconds(req: dict[str, Any], key: str) -> float:
    """A time limit the hub gave (none: the longest a copy may take)."""
    value = req.get(key)
    return 3600.0 if value is None else float(value)


# --- reading, in the source's sandbox ------------------------------------------------------


class _Out:
    """The stream to the writer, sent in large pieces; gives up when the hub goes away, the
    writer stops reading for `io_timeout_s` (rsync's --timeout), or the deadline passes."""

    def __init__(
        self, data: socket.socket, conn: socket.socket, deadline: float, io_timeout_s: float
    ) -> None:
        self.data, self.conn = data, conn
        self.deadline, self.io_timeout_s = deadline, io_timeout_s
        self.buf = bytearray()
        data.setblocking(False)

    def flush(self) -> None:
        view = memoryview(self.buf)
        quiet_since = time.monotonic()
        try:
            while view:
                try:
                    sent = self.data.send(view)
                except BlockingIOError:
                    sent = 0
                except OSError as exc:
                    raise Gone("the writer went away") from exc
                if sent:
                    view, quiet_since = view[sent:], time.monotonic()
                    continue
                now = time.monotonic()
                wait = min(self.deadline, quiet_since + self.io_timeout_s) - now
                if wait <= 0:
                    raise Gone("timed out")
                readable, _, _ = select.select([self.conn], [self.data], [], wait)
                if readable and hub_gone(self.conn):
                    raise Gone("the hub went away")
        finally:
            view.release()
        del self.buf[:]


def op_tree_read(
    project: Project, conn: socket.socket, req: dict[str, Any], fds: list[int]
) -> None:
    """Source side: stream `src` ("dir/" for a folder's contents) to the writer."""
    if len(fds) != 1:
        raise ValueError("expected one file descriptor")
    data = socket.socket(fileno=fds.pop())
    src = project.rsync_path(str(req["src"]))
    deadline = time.monotonic() + _seconds(req, "timeout_s")
    out = _Out(data, conn, deadline, _seconds(req, "io_timeout_s"))
    complete = False
    try:
        root, name = _open_source(src, req.get("pinned") is True)
        try:
            complete = _send_tree(out, root, name)
        finally:
            os.close(root)
        out.buf += ENTRY.pack(END if complete else INCOMPLETE, 0, 0, 0, 0)
        out.flush()
    except Gone:
        return
    finally:
        data.close()
    send_frame(conn, {"ok": True, "complete": complete})


def _open_source(src: str, pinned: bool) -> tuple[int, str]:
    """The folder the copy reads from, open, and the name in it to copy ("" for the
    folder itself). A folder source is followed through links, as rsync's "dir/" is; any
    other source is taken as it is, a link as a link."""
    if pinned:
        fd, relative = pin_source(src)
        name = relative[2:]
        if name:
            return fd, name
        try:
            return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd), ""
        except OSError as exc:
            raise FsError.from_os(exc, "open", src) from exc
        finally:
            os.close(fd)
    is_dir = src.endswith("/")
    folder, name = (src, "") if is_dir else posixpath.split(src)
    flags = (os.O_RDONLY if is_dir else os.O_PATH) | os.O_DIRECTORY | os.O_CLOEXEC
    try:
        return os.open(folder or "/", flags), name
    except OSError as exc:
        raise FsError.from_os(exc, "open", folder) from exc


def _send_tree(out: _Out, parent: int, name: str) -> bool:
    """Stream the source; False when something in it was left for rsync."""
    if name:  # one file or link
        if name == FOLDER:
            return False  # rsync leaves the shared folder of leftovers out of every copy
        st = os.lstat(name, dir_fd=parent)
        if stat.S_ISDIR(st.st_mode):
            return False  # a folder since the hub looked: rsync copies it into the target
        return _send_entry(out, parent, name, b"", st, st.st_dev, 0)
    st = os.fstat(parent)
    out.buf += ENTRY.pack(DIR, 0, st.st_mode, st.st_mtime_ns, 0)
    complete = _send_folder(out, parent, st.st_dev, 1)
    out.buf += ENTRY.pack(UP, 0, 0, 0, 0)
    return complete


def _send_entry(
    out: _Out, folder: int, name: str, wire: bytes, st: os.stat_result, dev: int, depth: int
) -> bool:
    """One entry of `folder` (on device `dev`), named `wire` on the wire; False when it was
    left for rsync."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return _send_file(out, folder, name, wire)
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(os.fsencode(name), dir_fd=folder)
        except OSError:
            return False
        out.buf += ENTRY.pack(LINK, len(wire), mode, st.st_mtime_ns, len(target))
        out.buf += wire + target
        return True
    if stat.S_ISDIR(mode):
        try:
            fd = os.open(
                name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder
            )
        except OSError:
            return False
        try:
            st = os.fstat(fd)
            out.buf += ENTRY.pack(DIR, len(wire), st.st_mode, st.st_mtime_ns, 0)
            out.buf += wire
            complete = True
            if depth >= MAX_DEPTH:
                complete = False
            elif st.st_dev == dev:
                complete = _send_folder(out, fd, st.st_dev, depth + 1)
            # else: a mount point, which rsync -x copies as an empty folder
            out.buf += ENTRY.pack(UP, 0, 0, 0, 0)
            return complete
        finally:
            os.close(fd)
    return False  # devices, fifos, sockets: rsync's to copy, or to refuse


def _send_folder(out: _Out, fd: int, dev: int, depth: int) -> bool:
    complete = True
    try:
        entries = list(os.scandir(fd))
    except OSError:
        return False
    for entry in entries:
        name = entry.name
        if depth == 1 and name == FOLDER:
            continue  # rsync's --exclude=/.calchub-tmp
        try:
            if entry.is_file(follow_symlinks=False):
                ok = _send_file(out, fd, name, os.fsencode(name))
            else:
                st = entry.stat(follow_symlinks=False)
                ok = _send_entry(out, fd, name, os.fsencode(name), st, dev, depth)
        except OSError:
            ok = False
        complete = complete and ok
        if len(out.buf) >= BUFFER:
            out.flush()
    return complete


def _send_file(out: _Out, folder: int, name: str, wire: bytes) -> bool:
    try:
        # Not blocking: a fifo put in the file's place must not hold the copy up.
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder
        )
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return False
        size = st.st_size
        out.buf += ENTRY.pack(FILE, len(wire), st.st_mode, st.st_mtime_ns, size)
        out.buf += wire
        left, whole = size, True
        while left > 0:
            try:
                chunk = os.read(fd, min(left, BUFFER))
            except OSError:
                chunk = b""
            if not chunk:  # shrunk (or unreadable) while read: its size is promised
                out.buf += bytes(left)
                whole = False
                break
            out.buf += chunk
            left -= len(chunk)
            if len(out.buf) >= BUFFER:
                out.flush()
        out.buf += GOOD if whole else BAD
        return whole
    finally:
        os.close(fd)


# --- writing, in the target's sandbox ------------------------------------------------------


class _In:
    """The stream from the reader, read in large pieces, with the same limits as _Out."""

    def __init__(
        self, data: socket.socket, conn: socket.socket, deadline: float, io_timeout_s: float
    ) -> None:
        self.data, self.conn = data, conn
        self.deadline, self.io_timeout_s = deadline, io_timeout_s
        self.buf = bytearray()
        self.pos = 0
        data.setblocking(False)

    def take(self, n: int) -> bytes:
        if len(self.buf) - self.pos < n:
            self._fill(n)
        start = self.pos
        self.pos += n
        return bytes(self.buf[start : self.pos])

    def _fill(self, n: int) -> None:
        del self.buf[: self.pos]
        self.pos = 0
        quiet_since = time.monotonic()
        while len(self.buf) < n:
            try:
                chunk = self.data.recv(max(BUFFER, n - len(self.buf)))
            except BlockingIOError:
                chunk = None
            except OSError as exc:
                raise Incomplete("the reader went away") from exc
            if chunk:
                self.buf += chunk
                quiet_since = time.monotonic()
                continue
            if chunk is not None:
                raise Incomplete("the reader stopped early")
            now = time.monotonic()
            if now >= self.deadline:
                raise Gone("timed out")
            wait = min(self.deadline, quiet_since + self.io_timeout_s) - now
            if wait <= 0:
                raise Incomplete("the reader went quiet")
            readable, _, _ = select.select([self.data, self.conn], [], [], wait)
            if self.conn in readable and hub_gone(self.conn):
                raise Gone("the hub went away")


class _Progress:
    """Files and bytes written, sent to the hub at most once a second."""

    def __init__(self, conn: socket.socket, expected: int) -> None:
        self.conn, self.expected = conn, max(1, expected)
        self.files = self.bytes = 0
        self.sent_at = 0.0

    def add(self, size: int) -> None:
        self.files += 1
        self.bytes += size
        if time.monotonic() - self.sent_at >= PROGRESS_EVERY_S:
            # While the stream flows the writer never waits on the hub's connection: see
            # here whether the hub is still there.
            if hub_gone(self.conn):
                raise Gone("the hub went away")
            self.send(min(99, self.bytes * 100 // self.expected))

    def send(self, percent: int) -> None:
        send_frame(
            self.conn,
            {"event": "progress", "files": self.files, "bytes": self.bytes, "percent": percent},
        )
        self.sent_at = time.monotonic()


def op_tree_write(
    project: Project, conn: socket.socket, req: dict[str, Any], fds: list[int]
) -> None:
    """Target side: make the tree the reader streams at `dst`, which must not exist yet.
    Replies {"fresh": false} when it does (the hub then runs rsync), else "ready" and, once
    the stream ends, whether it was copied completely."""
    if len(fds) != 1:
        raise ValueError("expected one file descriptor")
    data = socket.socket(fileno=fds.pop())
    try:
        _write(project, conn, req, data)
    finally:
        data.close()


def _write(project: Project, conn: socket.socket, req: dict[str, Any], data: socket.socket) -> None:
    dst = project.resolve(str(req["dst"]))
    try:
        os.lstat(dst)
        send_frame(conn, {"ok": True, "fresh": False})
        return
    except FileNotFoundError:
        pass
    except OSError:
        send_frame(conn, {"ok": True, "fresh": False})  # rsync says what is wrong
        return
    folder, name = posixpath.split(dst)
    try:
        os.makedirs(folder, exist_ok=True)
        parent = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise FsError.from_os(exc, "mkdir", exc.filename or folder) from exc
    try:
        send_frame(conn, {"ok": True, "fresh": True, "event": "ready"})
        deadline = time.monotonic() + _seconds(req, "timeout_s")
        stream = _In(data, conn, deadline, _seconds(req, "io_timeout_s"))
        progress = _Progress(conn, int(req.get("expected") or 0))
        try:
            complete = _Writer(stream, progress, time.time_ns()).run(parent, os.fsencode(name))
        except (Incomplete, OSError):
            # A full disk, a name taken meanwhile, a stream that makes no sense: rsync,
            # run next, copies what is left or fails the way it always did.
            complete = False
    except Gone:
        return
    finally:
        os.close(parent)
    progress.send(100 if complete else min(99, progress.bytes * 100 // progress.expected))
    send_frame(conn, {"ok": True, "complete": complete, "files": progress.files})


def _checked_name(name: bytes) -> bytes:
    if not name or len(name) > MAX_NAME or b"/" in name or b"\0" in name or name in (b".", b".."):
        raise Incomplete(f"bad name {name!r}")
    return name


class _Writer:
    def __init__(self, stream: _In, progress: _Progress, now_ns: int) -> None:
        self.stream, self.progress, self.now_ns = stream, progress, now_ns

    def entries(self) -> Iterator[tuple[int, bytes, int, int, int]]:
        take = self.stream.take
        while True:
            kind, length, mode, mtime, size = ENTRY.unpack(take(ENTRY.size))
            yield kind, take(length) if length else b"", mode, mtime, size

    def run(self, parent: int, root: bytes) -> bool:
        """Make the stream's entries; True when it ended complete. The first entry is the
        target itself, under `root` in `parent`."""
        entries = self.entries()
        folders: list[tuple[int, int, int]] = []  # (open folder, mode, mtime) being filled
        here = parent
        first = True
        try:
            for kind, name, mode, mtime, size in entries:
                if kind in (END, INCOMPLETE):
                    if folders or first:
                        raise Incomplete("the stream ended inside a folder")
                    return kind == END
                if kind == UP:
                    if not folders:
                        raise Incomplete("unbalanced folders")
                    fd, dmode, dmtime = folders.pop()
                    os.chmod(fd, stat.S_IMODE(dmode))
                    os.utime(fd, ns=(self.now_ns, dmtime))
                    os.close(fd)
                    here = folders[-1][0] if folders else parent
                    if not folders:
                        first = False  # the target is done; only the end may follow
                    continue
                if first:
                    if name:
                        raise Incomplete("the target comes first")
                    name = root
                elif not folders:
                    raise Incomplete("entries after the target")
                else:
                    name = _checked_name(name)
                if kind == DIR:
                    if len(folders) >= MAX_DEPTH:
                        raise Incomplete("too deep")
                    os.mkdir(name, 0o700, dir_fd=here)
                    fd = os.open(
                        name,
                        os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=here,
                    )
                    folders.append((fd, mode, mtime))
                    here = fd
                    first = False
                    continue
                if kind == FILE:
                    self.file(here, name, mode, mtime, size)
                elif kind == LINK:
                    if size > MAX_LINK:
                        raise Incomplete("link too long")
                    target = self.stream.take(size)
                    if not target or b"\0" in target:
                        raise Incomplete("bad link")
                    os.symlink(target, name, dir_fd=here)
                else:
                    raise Incomplete(f"unknown entry {kind}")
                if first:
                    first = False
                    if next(entries)[0] != END:  # a single file or link: then the end
                        raise Incomplete("entries after the target")
                    return True
            raise Incomplete("no end")  # pragma: no cover - entries() never stops
        finally:
            for fd, _, _ in folders:
                os.close(fd)

    def file(self, folder: int, name: bytes, mode: int, mtime: int, size: int) -> None:
        """Write the file unnamed, give it the source's mode and mtime, then link it in:
        only finished files ever have a name."""
        fd = os.open(b".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=folder)
        try:
            left = size
            take = self.stream.take
            while left > 0:
                chunk = take(min(left, BUFFER))
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                left -= len(chunk)
            if take(1) != GOOD:
                raise Incomplete("the file changed while it was read")
            os.chmod(fd, stat.S_IMODE(mode))
            os.utime(fd, ns=(self.now_ns, mtime))
            os.link(FD_LINK % fd, name, dst_dir_fd=folder, follow_symlinks=True)
        finally:
            os.close(fd)
        self.progress.add(size)
