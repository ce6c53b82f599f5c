"""The agent's processes: the pool of persistent workers that serve connections, and its
parent, which keeps enough of them idle, retires the surplus, and ends the agent after the
project's idle timeout."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import select
import time

from . import files, leftovers, listing
from . import signals as signal
from . import sockets as socket
from .execs import Executor
from .kernel import (
    apply_rlimits,
    become_subreaper,
    die_with_parent,
    keep_only_sys_admin,
    own_user_namespace,
    reap_children,
)
from .project import Config, Project
from .replies import answer
from .wire import recv_frame, send_frame

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .replies import Handler

MIN_IDLE = 2  # idle workers kept ready while the project is in use
MAX_IDLE = 6  # idle workers beyond this retire
# Once the project is quiet (Config.quiet_s), one idle worker is enough: an idle project
# should cost the machine little memory, and the next request still finds a worker ready.
MIN_IDLE_QUIET = 1
HEADER_READ_TIMEOUT_S = 10.0

__all__ = ["Config", "serve"]


def serve(config: Config) -> int:
    """The agent's main process. With nested PID namespaces it creates a user namespace of
    its own and runs the pool as PID 1 of a new PID namespace inside it: when the pool ends,
    every process the project started ends with it."""
    apply_rlimits(config.rlimits)
    if config.die_with_parent:
        die_with_parent()
        if os.getppid() == 1:
            return 0
    os.set_inheritable(config.listen_fd, False)
    listener = socket.socket(fileno=config.listen_fd)
    listener.setblocking(False)
    os.makedirs(os.path.dirname(config.lock_path), exist_ok=True)
    project = Project(config)
    # Nothing of an earlier run can still be writing: what it left unfinished goes.
    leftovers.sweep(project, everything=True)
    leftovers.tidy(project)
    nested = config.nested_pidns and own_user_namespace()
    if not nested:
        become_subreaper()
        report_ready(config)
        Pool(project, listener, nested).run()
        return 0
    keep_only_sys_admin()
    report_ready(config)
    pool_pid = os.fork()
    if pool_pid == 0:
        code = 1
        try:
            die_with_parent()
            Pool(project, listener, nested).run()
            code = 0
        finally:
            os._exit(code)
    listener.close()
    _, status = os.waitpid(pool_pid, 0)
    return os.waitstatus_to_exitcode(status)


def report_ready(config: Config) -> None:
    """Tell the hub that the project runs: what could fail at start has been done, and
    requests wait in the socket's backlog until the first worker takes them, so the hub
    goes on while the pool forks its workers."""
    if config.ready_fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(config.ready_fd, b"1")
    os.close(config.ready_fd)


class Pool:
    """Persistent workers waiting in accept(): at least MIN_IDLE idle ones are kept, surplus
    idle ones retire. Workers report on a pipe when they take a connection, whether it was
    user activity, and when they are idle again; SIGCHLD wakes the loop through another pipe
    so that lost workers are replaced at once."""

    def __init__(self, project: Project, listener: socket.socket, nested: bool) -> None:
        self.project = project
        self.listener = listener
        self.nested = nested
        self.pid = os.getpid()
        self.control_r, self.control_w = os.pipe()
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.control_r, self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        self.workers: dict[int, str] = {}  # pid -> "idle" | "busy" | "ping" | "retiring"
        self.pending = b""
        self.last_activity = time.monotonic()
        self.retry_at = 0.0

    def run(self) -> None:
        # Detach stdout/stderr: nobody reads them from now on, and nothing in the sandbox
        # should be able to write into the hub's logs through them.
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda _signum, _frame: None)
        idle_timeout = self.project.config.idle_timeout_s
        # Workers are forked from here: objects moved out of the collector's reach are not
        # touched by collections in the workers, so their pages stay shared.
        gc.collect()
        gc.freeze()
        while True:
            self.fill()
            self.trim()
            short = self.count("idle") < self.wanted_idle()
            ready = select.select([self.control_r, self.wake_r], [], [], 0.05 if short else 1.0)
            if self.wake_r in ready[0]:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 4096)
            self.read_control()
            self.reap()
            quiet = time.monotonic() - self.last_activity
            if idle_timeout > 0 and not self.count("busy") and quiet > idle_timeout:
                return

    def count(self, state: str) -> int:
        return sum(1 for s in self.workers.values() if s == state)

    def quiet(self) -> bool:
        quiet_s = self.project.config.quiet_s
        return time.monotonic() - self.last_activity > quiet_s and not self.count("busy")

    def wanted_idle(self) -> int:
        return MIN_IDLE_QUIET if self.quiet() else MIN_IDLE

    def fill(self) -> None:
        while self.count("idle") < self.wanted_idle() and time.monotonic() >= self.retry_at:
            try:
                pid = os.fork()
            except OSError:
                # Out of processes (the project hit its limit): try again shortly.
                self.retry_at = time.monotonic() + 0.1
                return
            if pid == 0:
                for fd in (self.control_r, self.wake_r, self.wake_w):
                    os.close(fd)
                Worker(self.project, self.listener, self.control_w, self.pid, self.nested).run()
            self.workers[pid] = "idle"

    def trim(self) -> None:
        extra = self.count("idle") - (MIN_IDLE_QUIET if self.quiet() else MAX_IDLE)
        for pid, state in list(self.workers.items()):
            if extra <= 0:
                break
            if state == "idle":
                self.workers[pid] = "retiring"
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGUSR1)
                extra -= 1

    def read_control(self) -> None:
        try:
            self.pending += os.read(self.control_r, 65536)
        except BlockingIOError:
            return
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            parts = line.decode(errors="replace").split()
            if len(parts) != 2 or not parts[0].isdigit():
                continue
            pid, state = int(parts[0]), parts[1]
            previous = self.workers.get(pid)
            if previous is None or previous == "retiring":
                continue
            if state == "busy" or previous == "busy":
                self.last_activity = time.monotonic()
            self.workers[pid] = state

    def reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            # A worker's reports are written before it exits: take them in first.
            self.read_control()
            state = self.workers.pop(pid, None)
            if state == "busy":
                self.last_activity = time.monotonic()
            elif state == "idle":
                # It died without serving anyone: do not respawn in a tight loop.
                self.retry_at = time.monotonic() + 0.1


class Worker:
    """Serves connections one at a time until told to retire."""

    def __init__(
        self, project: Project, listener: socket.socket, control: int, pool: int, nested: bool
    ) -> None:
        self.project = project
        self.listener = listener
        self.control = control
        self.pool = pool
        self.nested = nested
        self.retiring = False
        self.executor: Executor | None = None
        self.handlers: dict[str, Handler] = {}

    def report(self, state: str) -> None:
        os.write(self.control, f"{os.getpid()} {state}\n".encode())

    def run(self) -> None:
        code = 0
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGUSR1, self.retire)
            die_with_parent()
            if os.getppid() != self.pool:
                return
            own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            self.executor = Executor(self.project, self.nested, own_pidns)
            self.handlers = {
                "exec": self.executor.op_exec,
                "read": functools.partial(files.op_read, self.project),
                "write": functools.partial(files.op_write, self.project),
                "write_fd": functools.partial(files.op_write_fd, self.project),
                "du": functools.partial(files.op_du, self.project),
                "stat": functools.partial(files.op_stat, self.project),
                "list": functools.partial(listing.op_list, self.project),
                "rsync_pull": functools.partial(_rsync_pull, self.project),
                "rsync_send": functools.partial(_rsync_send, self.project),
                "tree_read": functools.partial(_tree_read, self.project),
                "tree_write": functools.partial(_tree_write, self.project),
                "jupyter": functools.partial(_jupyter, self.project),
            }
            self.serve()
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    def retire(self, _signum: int, _frame: object) -> None:
        self.retiring = True

    def serve(self) -> None:
        assert self.executor is not None
        # Exclusive: a connection wakes one idle worker, not every one (each would wake, try
        # to accept, and all but one go back to sleep, on the CPUs the hub needs meanwhile).
        arrivals = select.epoll(1)
        arrivals.register(self.listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
        inherited = [self.listener.fileno(), self.control, arrivals.fileno()]
        served = time.monotonic()
        while not self.retiring:
            # The exec init is forked ahead while the project is in use; once it is quiet
            # the init goes (one process less per idle project) and the next request that
            # comes forks one first.
            if time.monotonic() - served <= self.project.config.quiet_s:
                self.executor.prepare(close=inherited)
            else:
                self.executor.release()
            reap_children()  # inits that outlived their exec, or were let go
            if not arrivals.poll(1.0):
                continue
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another worker took it
            with conn:
                conn.setblocking(True)
                self.executor.prepare(close=[*inherited, conn.fileno()])
                self.serve_connection(conn)
            served = time.monotonic()

    def serve_connection(self, conn: socket.socket) -> None:
        fds: list[int] = []
        try:
            conn.settimeout(HEADER_READ_TIMEOUT_S)
            request = recv_frame(conn, fds)
            conn.settimeout(None)
        except (OSError, EOFError, ValueError):
            request = None
        if request is not None:
            op = request.get("op")
            self.report("ping" if op == "ping" else "busy")
            try:
                self.handle(conn, request, fds)
            finally:
                self.report("idle")
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def handle(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        op = request.get("op")
        if op in ("ping", "touch"):
            with contextlib.suppress(OSError):
                send_frame(conn, {"ok": True, "nested": self.nested})
            return
        handler = self.handlers.get(op) if isinstance(op, str) else None
        answer(conn, handler, request, fds)


# Copies and Jupyter are imported on first use: most projects never need them, and every
# module imported at start costs each project's start time and memory.


def _rsync_pull(project: Project, conn: socket.socket, req: dict[str, Any], fds: list[int]) -> None:
    from . import copies

    copies.op_rsync_pull(project, conn, req, fds)


def _rsync_send(project: Project, conn: socket.socket, req: dict[str, Any], fds: list[int]) -> None:
    from . import copies

    copies.op_rsync_send(project, conn, req, fds)


def _tree_read(project: Project, conn: socket.socket, req: dict[str, Any], fds: list[int]) -> None:
    from . import trees

    trees.op_tree_read(project, conn, req, fds)


def _tree_write(project: Project, conn: socket.socket, req: dict[str, Any], fds: list[int]) -> None:
    from . import trees

    trees.op_tree_write(project, conn, req, fds)


def _jupyter(project: Project, conn: socket.socket, req: dict[str, Any], fds: list[int]) -> None:
    from . import jupyter

    jupyter.op_jupyter(project, conn, req, fds)
