"""The agent's side of Jupyter: relays a request to the project's kernel manager (see
`kernels`), starting the manager on first use.

The manager is a process of its own, because it needs Jupyter's libraries (the agent uses
the standard library only) and must outlive the worker that happened to start it. It is
detached from that worker and re-parented to the agent's pool process, which reaps it; it
dies with the pool, as every process of the project does. Like commands, it and its kernels
run in a user namespace of their own, where they cannot trace the agent's processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import socket
import sys
import time
from typing import Any

from .kernel import die_with_parent, own_user_namespace
from .project import Project
from .wire import hub_gone, recv_frame, send_frame

MANAGER_START_S = 30.0


def folder_of(project: Project) -> str:
    """The manager's private folder: next to the agent's own lock, in the sandbox's /tmp
    (or, unsandboxed, in the project's root-only runtime folder)."""
    return os.path.join(os.path.dirname(project.config.lock_path), "jupyter")


def op_jupyter(project: Project, conn: socket.socket, req: dict[str, Any], _fds: list[int]) -> None:
    request = req.get("request")
    if not isinstance(request, dict):
        raise ValueError("a jupyter request needs a 'request' object")
    try:
        manager = connect(project)
    except Unavailable as exc:
        failure = {"kind": "unavailable", "message": str(exc)}
        send_frame(conn, {"ok": True, "reply": {"ok": True, "failure": failure}})
        return
    with manager:
        send_frame(manager, request)
        while True:
            ready = select.select([manager, conn], [], [])[0]
            if conn in ready and hub_gone(conn):
                return  # the hub gave up; the manager finishes the cell on its own
            if manager in ready:
                reply = recv_frame(manager)
                break
    send_frame(conn, {"ok": True, "reply": reply})


class Unavailable(Exception):
    """The manager cannot run in this project."""


def connect(project: Project) -> socket.socket:
    folder = folder_of(project)
    path = os.path.join(folder, "sock")
    sock = _try_connect(path)
    if sock is not None:
        return sock
    os.makedirs(folder, mode=0o700, exist_ok=True)
    lock = os.open(os.path.join(folder, "start.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        sock = _try_connect(path)
        if sock is None:
            _start_manager(project, folder, path)
            sock = _try_connect(path)
        if sock is None:
            raise Unavailable("the Jupyter kernel manager did not start")
        return sock
    finally:
        os.close(lock)


def _try_connect(path: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    return sock


def _start_manager(project: Project, folder: str, path: str) -> None:
    launcher = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__main__.py")
    config = {
        "folder": folder,
        "socket": path,
        "home": project.home,
        "env": project.exec_env({}),
    }
    argv = [sys.executable, "-I", launcher, "kernels", json.dumps(config)]
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        _detach_and_exec(argv, project, write_end)
    os.close(write_end)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(middle, 0)
    # The manager prints "ready" once it listens, or why it cannot run, then exits.
    said = b""
    deadline = time.monotonic() + MANAGER_START_S
    try:
        while b"\n" not in said or not said.startswith(b"ready"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                raise Unavailable("the Jupyter kernel manager did not start in time")
            chunk = os.read(read_end, 4096)
            if not chunk:
                text = said.decode(errors="replace").strip()[-2000:]
                raise Unavailable(text or "the Jupyter kernel manager exited at start")
            said += chunk
    finally:
        os.close(read_end)


def _detach_and_exec(argv: list[str], project: Project, write_end: int) -> None:
    code = 127
    try:
        os.setsid()
        if project.config.nested_pidns:
            # Where user namespaces cannot be made, it runs beside the agent.
            own_user_namespace(new_pid_namespace=False)
        parent = os.getpid()
        if os.fork() != 0:
            os._exit(0)
        # Orphaned now: wait to be adopted by the pool, then die with it.
        while os.getppid() == parent:
            time.sleep(0.001)
        die_with_parent()
        os.chdir(project.home)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(write_end, 1)
        os.dup2(write_end, 2)
        os.execve(argv[0], argv, project.exec_env({}))  # noqa: S606 - a fixed program
    except BaseException:
        code = 126
    finally:
        os._exit(code)
