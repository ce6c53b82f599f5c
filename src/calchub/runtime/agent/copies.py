"""Copies between projects: rsync's client runs in the target's sandbox, its sender in the
source's, and the hub hands the connection between them (see calchub.runtime.copy)."""

from __future__ import annotations

import os
import posixpath
import re
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from . import leftovers
from .files import FsError
from .project import Project
from .realpaths import real_path_of
from .wire import CHUNK, hub_gone, recv_frame, send_frame

STDERR_CAP = 64 * 1024
# What a sender may be asked to run: read-only options only. Anything else (a write option
# such as --remove-source-files or --log-file, or -s, which would pass further options
# over the connection) is refused: the client that asks runs in the target project, which
# the source must not trust.
SENDER_FLAGS = re.compile(r"-[bulogDtprxz]*e\.[A-Za-z]*")
SENDER_TIMEOUT = re.compile(r"--timeout=\d{1,9}")
# The client's own progress option: it stays on the client side, the sender never sees it.
PROGRESS_FLAG = "--info=progress2"
# One `--info=progress2` line: "  1,234  45%  1.00MB/s  0:00:01 (xfr#12, to-chk=3/20)".
PROGRESS_LINE = re.compile(rb"\s*([\d,]+)\s+(\d+)%(?:.*?xfr#(\d+))?")
PROGRESS_EVERY_S = 1.0  # the hub only needs the latest figures, not every line


def op_rsync_pull(
    project: Project, conn: socket.socket, req: dict[str, Any], _fds: list[int]
) -> None:
    """Target side: run the rsync client. Its remote shell (`rsh`, below) passes rsync's
    connection to us, we pass it to the hub, and the hub to the source project's sender."""
    mkdir = project.resolve(str(req["mkdir"]))
    try:
        os.makedirs(mkdir, exist_ok=True)
    except OSError as exc:
        raise FsError.from_os(exc, "mkdir", exc.filename or mkdir) from exc
    flags = [str(f) for f in req["flags"]]
    if any(not f.startswith("-") for f in flags):
        raise ValueError("rsync flags must be options")
    leftovers.sweep(project)
    partial = leftovers.new_copy_folder(project)
    try:
        result = _pull(project, conn, req, flags, partial)
    finally:
        if partial is not None:
            leftovers.release_copy_folder(project, *partial)
    # Only now: once the hub hears the copy is over, nothing of it is left in the home.
    if result is not None:
        send_frame(conn, result)


def _pull(
    project: Project,
    conn: socket.socket,
    req: dict[str, Any],
    flags: list[str],
    partial: tuple[int, str] | None,
) -> dict[str, Any] | None:
    """Run the client; its result, or None when the hub went away."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__main__.py")
    dst = project.rsync_path(str(req["dst"]))
    argv = ["rsync", *flags, PROGRESS_FLAG, "-e", f"{sys.executable} -I -S {launcher} rsh"]
    # Partial files go to a folder of this copy's own, where a killed copy's are found;
    # the shared folder itself is never copied or deleted by a copy.
    argv.append(f"--exclude=/{leftovers.FOLDER}")
    # rsync holds the folder's lock too: should this worker die, the folder stays in use
    # for as long as rsync goes on writing into it.
    keep: tuple[int, ...] = (theirs.fileno(),)
    if partial is not None:
        argv.append(f"--temp-dir={partial[1]}")
        keep += (partial[0],)
    argv += ["calchub:" + str(req["src"]), dst]
    proc = subprocess.Popen(
        argv,
        cwd=project.home,
        env=project.exec_env({"CALCHUB_RSH_FD": str(theirs.fileno())}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=keep,
        start_new_session=True,
    )
    theirs.close()
    assert proc.stderr is not None and proc.stdout is not None
    stderr = bytearray()
    progress = _Progress(conn)
    watch: list[Any] = [proc.stderr, proc.stdout, mine, conn]
    deadline = time.monotonic() + float(req.get("timeout_s") or 3600)
    while proc.stderr in watch:
        remaining = deadline - time.monotonic()
        ready = select.select(watch, [], [], remaining)[0] if remaining > 0 else []
        if not ready:
            stderr += b"\ncopy timed out"
            os.killpg(proc.pid, signal.SIGKILL)
            break
        if conn in ready and hub_gone(conn):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
        if mine in ready:
            _hand_over(mine, conn)
            watch.remove(mine)
            mine.close()
        if proc.stderr in ready:
            data = os.read(proc.stderr.fileno(), CHUNK)
            if data:
                stderr += data[: max(0, STDERR_CAP - len(stderr))]
            else:
                watch.remove(proc.stderr)
        if proc.stdout in ready:
            data = os.read(proc.stdout.fileno(), CHUNK)
            if data:
                progress.feed(data)
            else:
                watch.remove(proc.stdout)
    code = proc.wait()
    progress.flush()
    text = stderr.decode(errors="replace").strip()
    return {"ok": True, "exit_code": code, "stderr": text}


class _Progress:
    """Turns the client's `--info=progress2` output into at most one event a second."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.pending = b""
        self.latest: dict[str, int] | None = None
        self.sent_at = 0.0

    def feed(self, data: bytes) -> None:
        *lines, self.pending = re.split(rb"[\r\n]", self.pending + data)
        self.pending = self.pending[-4096:]  # a line is short; never let junk pile up
        for line in lines:
            match = PROGRESS_LINE.match(line)
            if match:
                self.latest = {
                    "bytes": int(match[1].replace(b",", b"")),
                    "percent": int(match[2]),
                    "files": int(match[3] or 0),
                }
        if self.latest and time.monotonic() - self.sent_at >= PROGRESS_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self.latest:
            send_frame(self.conn, {"event": "progress", **self.latest})
            self.latest, self.sent_at = None, time.monotonic()


def _hand_over(helper: socket.socket, conn: socket.socket) -> None:
    """Pass the remote shell's connection and the sender command line on to the hub."""
    fds: list[int] = []
    try:
        hello = recv_frame(helper, fds)
        send_frame(conn, {"event": "sender", "argv": hello.get("argv")}, fds=fds[:2])
    except (EOFError, ValueError, OSError):
        pass  # rsync then fails on its own and says why
    finally:
        for fd in fds:
            os.close(fd)


def op_rsync_send(
    project: Project, conn: socket.socket, req: dict[str, Any], fds: list[int]
) -> None:
    """Source side: run a read-only rsync sender on the connection the hub passed along.
    With `pinned`, the source must be exactly where the hub approved it (see `pin_source`)."""
    pinned: int | None = None
    try:
        if len(fds) != 2:
            raise ValueError("expected two file descriptors")
        src, cwd = project.rsync_path(str(req["src"])), project.home
        if req.get("pinned") is True:
            pinned, src = pin_source(src)
            # The sender starts in the folder held open, never in whatever its name means now.
            cwd = f"/proc/self/fd/{pinned}"
        argv = sender_argv(req.get("argv"), src)
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=project.exec_env({}),
            stdin=fds[0],
            stdout=fds[1],
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    finally:
        # Only the sender may hold the connection, or the client never sees it end.
        for fd in fds:
            os.close(fd)
        fds.clear()
        if pinned is not None:
            os.close(pinned)
    assert proc.stderr is not None
    stderr = bytearray()
    watched: list[Any] = [proc.stderr, conn]
    while True:
        ready = select.select(watched, [], [])[0]
        if conn in ready and hub_gone(conn):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        if proc.stderr in ready:
            data = os.read(proc.stderr.fileno(), CHUNK)
            if not data:
                break
            stderr += data[: max(0, STDERR_CAP - len(stderr))]
    code = proc.wait()
    send_frame(conn, {"ok": True, "exit_code": code, "stderr": stderr.decode(errors="replace")})


def pin_source(src: str) -> tuple[int, str]:
    """Open the folder a copy reads from (a folder source itself, else the source's parent)
    and check that it really is at `src`, with no link on the way: the hub approved that
    real place, and a link changed since must not send something else. Returns the open
    folder and rsync's source relative to it ("./" for a folder's contents)."""
    if src.endswith("/"):
        folder, source = src.rstrip("/") or "/", "./"
    else:
        folder, name = posixpath.split(src)
        source = "./" + name
    try:
        fd = os.open(folder, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise FsError.from_os(exc, "open", folder) from exc
    except ValueError as exc:
        raise FsError("EINVAL", "open", folder) from exc
    if real_path_of(fd) != folder:
        os.close(fd)
        raise FsError("ESTALE", "open", src, message="the source changed while it was copied")
    return fd, source


def sender_argv(argv: Any, src: str) -> list[str]:
    """The sender command line, checked against what our own client flags can produce; the
    path is always the one the hub asked for, never the one the client sent."""
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ValueError("bad sender arguments")
    if argv[:3] != ["rsync", "--server", "--sender"] or "." not in argv[3:]:
        raise ValueError("not an rsync sender")
    options = argv[3 : argv.index(".", 3)]
    if not options or not SENDER_FLAGS.fullmatch(options[0]):
        raise ValueError(f"refused rsync sender options {options}")
    if not all(SENDER_TIMEOUT.fullmatch(o) for o in options[1:]):
        raise ValueError(f"refused rsync sender options {options}")
    return ["rsync", "--server", "--sender", *options, ".", src]


def rsh_main(argv: list[str]) -> int:
    """rsync's remote shell during a copy: hand our stdin/stdout (rsync's connection) and the
    remote command line to the target agent's worker, then get out of the way."""
    sock = socket.socket(fileno=int(os.environ["CALCHUB_RSH_FD"]))
    # argv is: HOST rsync --server --sender ...
    send_frame(sock, {"argv": argv[1:]}, fds=[0, 1])
    sock.close()
    return 0
