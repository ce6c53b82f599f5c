"""File operations, done as the project's user in the sandbox's view, with errors worded
like Node's (libuv's) so that they read as CoCalc clients expect."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable, Iterator

from . import leftovers
from . import sockets as socket
from .project import Project
from .realpaths import copied_from, real_path_of
from .wire import CHUNK, Incoming, send_frame

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

UV_MESSAGES = {
    "EACCES": "permission denied",
    "EBUSY": "resource busy or locked",
    "EEXIST": "file already exists",
    "EFBIG": "file too large",
    "EINVAL": "invalid argument",
    "EIO": "i/o error",
    "EISDIR": "illegal operation on a directory",
    "ELOOP": "too many symbolic links encountered",
    "EMFILE": "too many open files",
    "ENAMETOOLONG": "name too long",
    "ENOENT": "no such file or directory",
    "ENOSPC": "no space left on device",
    "ENOTDIR": "not a directory",
    "ENOTEMPTY": "directory not empty",
    "EPERM": "operation not permitted",
    "EROFS": "read-only file system",
    "ETXTBSY": "text file is busy",
    "EXDEV": "cross-device link not permitted",
}


class FsError(Exception):
    """A file-system error reported to the hub as {code, syscall, path, message}."""

    def __init__(self, code: str, syscall: str, path: str, **extra: Any) -> None:
        super().__init__(code)
        self.info = {
            "code": code,
            "syscall": syscall,
            "path": path,
            "message": UV_MESSAGES.get(code, code.lower()),
            **extra,
        }

    @classmethod
    def from_os(cls, exc: OSError, syscall: str, path: str) -> FsError:
        code = errno.errorcode.get(exc.errno or 0, "EIO")
        err = cls(code, syscall, path)
        if code not in UV_MESSAGES:
            err.info["message"] = (exc.strerror or code).lower()
        return err


class QuotaError(Exception):
    def __init__(self, used: int, quota: int, needed: int) -> None:
        super().__init__("quota")
        self.info = {"code": "EDQUOT", "used": used, "quota": quota, "needed": needed}


def op_read(project: Project, conn: socket.socket, req: dict[str, Any], _fds: list[int]) -> None:
    path = project.resolve(str(req["path"]))
    max_bytes = int(req["max_bytes"])
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise FsError.from_os(exc, "open", path) from exc
    except ValueError as exc:
        raise FsError("EINVAL", "open", path) from exc
    # Errors after the open say where the file really is too: the hub may have to hide
    # even them (the size of a file a public link points at, say).
    real = real_path_of(fd)
    passing = False
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FsError("EISDIR", "read", path, real_path=real)
        if not stat.S_ISREG(st.st_mode):
            raise FsError("EINVAL", "read", path, real_path=real)
        if st.st_size > max_bytes:
            raise FsError("EFBIG", "read", path, size=st.st_size, real_path=real)
        # The hub on this machine reads a file of the home itself (checking it as it would
        # any descriptor a project sends): its bytes need not cross the socket.
        passing = req.get("fd_device") == st.st_dev
        chunks = []
        total = 0
        while not passing and (chunk := os.read(fd, CHUNK * 16)):
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:  # it grew while we read
                raise FsError("EFBIG", "read", path, size=total, real_path=real)
    except OSError as exc:
        err = FsError.from_os(exc, "read", path)
        err.info["real_path"] = real
        raise err from exc
    finally:
        if not passing:
            os.close(fd)
    if passing:
        try:
            send_frame(conn, {"ok": True, "fd": True, "path": path, "real_path": real}, fds=[fd])
        finally:
            os.close(fd)
        return
    data = b"".join(chunks)
    send_frame(conn, {"ok": True, "size": len(data), "real_path": real}, data)


def op_write(project: Project, conn: socket.socket, req: dict[str, Any], _fds: list[int]) -> None:
    payload = Incoming(conn, int(req["size"]))
    try:
        write_file(project, str(req["path"]), payload, req.get("quota_bytes"), _answer(conn))
    finally:
        payload.discard()


def op_write_fd(project: Project, conn: socket.socket, req: dict[str, Any], fds: list[int]) -> None:
    """As op_write, with the bytes in a memory file the hub passed along (copied by the
    kernel rather than read from the connection in pieces)."""
    if len(fds) != 1:
        raise ValueError("expected one file descriptor with the payload")
    payload = FilePayload(fds[0], int(req["size"]))
    write_file(project, str(req["path"]), payload, req.get("quota_bytes"), _answer(conn))


def _answer(conn: socket.socket) -> Callable[[], None]:
    return lambda: send_frame(conn, {"ok": True})


class FilePayload:
    """A write's bytes in a file the hub passed (its size checked against what was said)."""

    def __init__(self, fd: int, size: int) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            raise ValueError("the payload file does not hold the bytes announced")
        self.fd = fd
        self.left = size
        self.offset = 0

    def copy_to(self, out: int) -> None:
        while self.left > 0:
            sent = os.sendfile(out, self.fd, self.offset, self.left)
            if sent == 0:
                raise EOFError("the payload file ended early")
            self.offset += sent
            self.left -= sent


def write_file(
    project: Project,
    given: str,
    payload: Incoming | FilePayload,
    quota: Any,
    done: Callable[[], None],
) -> None:
    """Replace the file atomically (a temporary file renamed over it), creating parent
    folders; a link is followed, but only ever inside this sandbox's view. `done` (which
    answers the hub) is called once the new file is in place, before the replaced one is
    let go: the file system frees its pages and blocks (waiting for a discard, on some
    disks) after the hub has its answer rather than before. The quota lock is held until
    then, so that no quota check counts the replaced file."""
    path = project.resolve(given)
    size = payload.left
    try:
        real = os.path.realpath(path)
    except ValueError as exc:
        raise FsError("EINVAL", "open", path) from exc
    if os.path.isdir(real):
        raise FsError("EISDIR", "open", path)
    parent = os.path.dirname(real)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as exc:
        raise FsError.from_os(exc, "mkdir", exc.filename or parent) from exc
    with file_lock(project.config.lock_path):
        old_blocks = 0
        mode = 0o666 & ~current_umask()
        with contextlib.suppress(OSError):
            st = os.stat(real)
            if stat.S_ISREG(st.st_mode):
                old_blocks = st.st_blocks * 512
                mode = stat.S_IMODE(st.st_mode)
        if quota is not None:
            used = home_usage(project)
            needed = -(-size // 4096) * 4096
            if used - old_blocks + needed > int(quota):
                raise QuotaError(used, int(quota), size)
        leftovers.sweep(project)
        try:
            fd, tmp = leftovers.new_file(project, parent, mode)
        except OSError as exc:
            raise _write_error(project, exc, "open", path, quota, size) from exc
        replaced = None
        try:
            try:
                payload.copy_to(fd)
                with contextlib.suppress(OSError):
                    replaced = os.open(real, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
                # Renamed while still open, so the lock keeps sweeps away until it is done.
                os.rename(tmp, real)
            finally:
                os.close(fd)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if replaced is not None:
                os.close(replaced)
            leftovers.tidy(project)
            if isinstance(exc, OSError):
                raise _write_error(project, exc, "write", path, quota, size) from exc
            raise
        leftovers.tidy(project)
        try:
            done()
        finally:
            if replaced is not None:
                os.close(replaced)


def _write_error(
    project: Project, exc: OSError, syscall: str, path: str, quota: Any, size: int
) -> Exception:
    if quota is not None and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # The home's file system is the quota (a disk image): it is full, whatever du
        # counted before the write.
        return QuotaError(home_usage(project), int(quota), size)
    return FsError.from_os(exc, syscall, path)


def op_du(project: Project, conn: socket.socket, req: dict[str, Any], _fds: list[int]) -> None:
    path = project.resolve(str(req.get("path") or ""))
    try:
        used = home_usage(project) if path == project.home else disk_usage(path)
    except OSError as exc:
        raise FsError.from_os(exc, "stat", path) from exc
    send_frame(conn, {"ok": True, "bytes": used})


def op_stat(project: Project, conn: socket.socket, req: dict[str, Any], _fds: list[int]) -> None:
    path = project.resolve(str(req["path"]))
    try:
        st = os.stat(path)
    except OSError as exc:
        raise FsError.from_os(exc, "stat", path) from exc
    kind = _kind(st.st_mode)
    real = copied_from(path, kind == "dir")
    send_frame(conn, {"ok": True, "kind": kind, "real_path": real})


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


def home_usage(project: Project) -> int:
    """Bytes the home uses: on a home that is its own file system, the blocks in use there
    (which is what its quota binds), else the `du` of the home."""
    if project.config.home_is_disk:
        fs = os.statvfs(project.home)
        return (fs.f_blocks - fs.f_bfree) * fs.f_frsize
    return disk_usage(project.home)


def disk_usage(path: str) -> int:
    """Bytes allocated below `path` like `du -s`: symlinks are not followed, other file
    systems are skipped, hard links count once, unreadable folders count as empty."""
    top = os.lstat(path)
    seen: set[tuple[int, int]] = set()
    total = top.st_blocks * 512
    if not stat.S_ISDIR(top.st_mode):
        return total
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if st.st_dev != top.st_dev:
                        continue
                    if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                        key = (st.st_dev, st.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue
    return total


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """Serialises quota checks with the writes they allow, across all workers."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
