"""Copying between two projects with rsync, without either side trusting the other.

The rsync client runs in the target's sandbox (as the target's user) and the sender in the
source's sandbox (as the source's user). The client's remote shell hands its end of the rsync
connection to the target agent, which passes it to the hub, which passes it to the source
agent: the two rsync processes then talk directly, each seeing only its own project. Links
in the source are copied as links and resolve, if ever, only inside the source's own view.
The sender's options are checked against a read-only allow-list by the source agent.

When the target does not exist yet and no exclude patterns apply, rsync's options have
nothing to act on, and the copy is first tried without rsync: the hub passes one end of a
socket pair to a reader in the source's sandbox and the other to a writer in the target's
(calchub.runtime.agent.trees), with the same split of trust. Whatever that leaves undone
(or an agent that does not know it) is finished by rsync on the same target.
"""

from __future__ import annotations

import posixpath
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from calchub.runtime.base import RuntimeFailure
from calchub.runtime.channel import SyncChannel, close_all
from calchub.runtime.errors import agent_error, unknown_operation

COPY_MAX_S = 3600.0  # a copy is abandoned after this long, whatever rsync's I/O timeout

ProgressCallback = Callable[[dict[str, int]], None]


@dataclass(frozen=True)
class CopyPlan:
    src_socket: str
    dst_socket: str
    src_arg: str  # rsync's source, in the source's view ("/projects/A/dir/" for a folder)
    dst_arg: str  # rsync's destination, in the target's view
    mkdir: str  # folder to create in the target first
    flags: list[str]
    # The source must be exactly at src_arg, no link on the way (see agent.copies.pin_source).
    pinned: bool = False
    # Whether a fresh target may be written without rsync (no patterns to match), and
    # about how many bytes the source holds (for progress).
    streamable: bool = False
    expected_bytes: int = 0
    io_timeout_s: float | None = None


def absolute(home: str, path: str) -> str:
    """`path` in the project's view: relative to home, '..' collapsed textually."""
    joined = path if path.startswith("/") else f"{home}/{path}"
    return posixpath.normpath("/" + joined.lstrip("/"))


def inside(path: str, home: str) -> bool:
    return path == home or path.startswith(home.rstrip("/") + "/")


def rsync_flags(
    *,
    overwrite_newer: bool,
    delete_missing: bool,
    backup: bool,
    exclude: list[str],
    timeout_s: float | None,
) -> list[str]:
    # CoCalc uses -zaxs; compression is pointless between two local processes, and -s
    # would let the client send the sender options we could not check.
    flags = ["-ax", "--omit-link-times"]
    if not overwrite_newer:
        flags.append("--update")
    if backup:
        flags.append("--backup")
    if delete_missing:
        flags.append("--delete")
    if timeout_s:
        flags.append(f"--timeout={max(1, round(timeout_s))}")
    flags += [f"--exclude={pattern}" for pattern in exclude]
    return flags


def targets(src: str, src_is_dir: bool, dst: str, dst_is_folder: bool) -> tuple[str, str, str]:
    """(rsync source, rsync destination, folder to create). A folder's contents go into the
    target folder; a file goes to exactly the target path, or into it when it names a folder
    (ends with "/")."""
    if src_is_dir:
        return src.rstrip("/") + "/", dst.rstrip("/") + "/", dst
    if dst_is_folder:
        target = posixpath.join(dst, posixpath.basename(src))
        return src, target, dst
    return src, dst, posixpath.dirname(dst)


def run(
    plan: CopyPlan, timeout_s: float = COPY_MAX_S, on_progress: ProgressCallback | None = None
) -> None:
    """Blocking: run the copy and raise RuntimeFailure when rsync reports an error.
    `on_progress` gets {files, bytes, percent} from the rsync client now and then."""
    deadline = time.monotonic() + timeout_s
    if plan.streamable and _stream(plan, deadline, on_progress):
        return
    target = SyncChannel(plan.dst_socket, deadline)
    try:
        target.send(
            {
                "op": "rsync_pull",
                "flags": plan.flags,
                "src": plan.src_arg,
                "dst": plan.dst_arg,
                "mkdir": plan.mkdir,
                "timeout_s": timeout_s,
            }
        )
        fds: list[int] = []
        first = _next_result(target, on_progress, fds)
        try:
            if first.get("event") == "sender" and len(fds) == 2:
                # The sender runs alongside, so the target's progress events keep being read
                # and never fill the connection while the sender works.
                outcome: dict[str, object] = {}
                sender = threading.Thread(
                    target=_sender_thread, args=(plan, first.get("argv"), fds, deadline, outcome)
                )
                sender.start()
                try:
                    result = _next_result(target, on_progress)
                finally:
                    sender.join()
                if isinstance(outcome.get("error"), BaseException):
                    raise outcome["error"]  # type: ignore[misc]
                sent = outcome.get("sent")
                assert sent is None or isinstance(sent, dict)
            else:
                sent, result = None, first
        finally:
            close_all(fds)
    finally:
        target.close()
    _check(result, sent, plan)


def _stream(plan: CopyPlan, deadline: float, on_progress: ProgressCallback | None) -> bool:
    """Copy into a fresh target without rsync; False when rsync is to do it (the target
    exists, an agent does not know how) or to finish it (something was left undone)."""
    timeouts = {
        "timeout_s": max(0.0, deadline - time.monotonic()),
        "io_timeout_s": plan.io_timeout_s,
    }
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = [ours.detach(), theirs.detach()]
    try:
        target = SyncChannel(plan.dst_socket, deadline)
        try:
            request = {
                "op": "tree_write",
                "dst": plan.dst_arg,
                "expected": plan.expected_bytes,
                **timeouts,
            }
            target.send(request, fds=fds[:1])
            close_all([fds.pop(0)])
            ready = target.receive()
            if not ready.get("ok"):
                if unknown_operation(ready):
                    return False
                raise agent_error(ready)
            if not ready.get("fresh"):
                return False
            source = SyncChannel(plan.src_socket, deadline)
            try:
                request = {"op": "tree_read", "src": plan.src_arg, "pinned": plan.pinned}
                source.send({**request, **timeouts}, fds=fds)
                # Our copies must go, or neither side would see the other hang up.
                close_all(fds)
                fds.clear()
                written = _next_result(target, on_progress)
                read = source.receive()
            finally:
                source.close()
        finally:
            target.close()
    finally:
        close_all(fds)
    if not written.get("ok"):
        raise agent_error(written)
    return written.get("complete") is True and read.get("complete") is True


def _next_result(
    channel: SyncChannel, on_progress: ProgressCallback | None, fds: list[int] | None = None
) -> dict[str, object]:
    """The next reply that is not a progress event; progress goes to `on_progress`."""
    while True:
        reply = channel.receive(fds)
        if reply.get("event") != "progress":
            return reply
        if on_progress is not None:
            on_progress({k: int(reply.get(k) or 0) for k in ("files", "bytes", "percent")})


def _sender_thread(
    plan: CopyPlan, argv: object, fds: list[int], deadline: float, outcome: dict[str, object]
) -> None:
    try:
        outcome["sent"] = _run_sender(plan, argv, fds, deadline)
    except BaseException as exc:  # handed to the caller's thread, which raises it
        outcome["error"] = exc
        # Hang up on the client too, or it would wait for a sender until the deadline.
        close_all(fds)
        fds.clear()


def _run_sender(plan: CopyPlan, argv: object, fds: list[int], deadline: float) -> dict[str, object]:
    source = SyncChannel(plan.src_socket, deadline)
    try:
        request = {"op": "rsync_send", "argv": argv, "src": plan.src_arg, "pinned": plan.pinned}
        source.send(request, fds=fds)
        # Our copies must go, or rsync would never see the other side hang up.
        close_all(fds)
        fds.clear()
        return source.receive()
    finally:
        source.close()


def _check(result: dict[str, object], sent: dict[str, object] | None, plan: CopyPlan) -> None:
    if not result.get("ok"):
        raise agent_error(result)
    if result.get("exit_code") == 0:
        return
    problem = str(result.get("stderr") or "").strip()
    if sent is not None and not sent.get("ok"):
        error = sent.get("error")
        problem = f"{problem} {error.get('message') if isinstance(error, dict) else error}"
    command = " ".join(["rsync", *plan.flags, plan.src_arg, plan.dst_arg])
    raise RuntimeFailure(f'WARNING: copy exited with an error -- {problem} -- "{command}"')
