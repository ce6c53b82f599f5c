"""The agent's pool, PID 1 of the project's sandbox: while the project is in use it keeps
persistent workers ready to serve connections; once it is quiet it rests (see `rest`): the
workers end and the pool re-executes itself as a bare interpreter, which the next connection
wakes. It ends the agent, and with it every process of the project, after the idle
timeout."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import select
import sys
import time

from . import files, leftovers, listing
from . import signals as signal
from . import sockets as socket
from .execs import Executor
from .jsonc import dumps, loads
from .kernel import (
    apply_rlimits,
    become_subreaper,
    die_with_parent,
    keep_only_setfcap,
    own_user_namespace,
    reap_children,
)
from .project import Config, Project
from .replies import answer
from .rest import END_SIGNALS, REST_ENTRY, end
from .scoreboard import FREE, NAMES, Scoreboard, Slot, idle_count
from .wire import recv_frame, send_frame

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .replies import Handler

MIN_IDLE = 2  # idle workers kept ready while the project is in use
# Requests after which a hub may ask for its connection to be kept for its next.
KEEPABLE = ("exec", "read", "write_fd")
MAX_IDLE = 6  # idle workers beyond this retire
HEADER_READ_TIMEOUT_S = 10.0
# How long a connection a hub asked to keep waits for its next request (a hub reuses one for
# less: see calchub/runtime/channel.py).
KEPT_S = 10.0


def _package_parent() -> str:
    """Where the agent's package is imported from, for the interpreter of its rest."""
    path = os.path.dirname(os.path.abspath(__file__))
    for _ in (__package__ or "").split("."):
        path = os.path.dirname(path)
    return path


PACKAGE_PARENT = _package_parent()

__all__ = ["Config", "resume", "serve"]


def serve(config: Config) -> int:
    """The agent's start."""
    apply_rlimits(config.rlimits)
    if config.die_with_parent:
        die_with_parent()
        if os.getppid() == 1:
            return 0
    os.makedirs(os.path.dirname(config.lock_path), exist_ok=True)
    project = Project(config)
    # Nothing of an earlier run can still be writing: what it left unfinished goes.
    leftovers.sweep(project, everything=True)
    leftovers.tidy(project)
    if os.getpid() == 1 or not config.nested_pidns:
        report_ready(config)
        return _pool(project, time.monotonic())
    # Not the sandbox's PID 1 (an agent run without a sandbox): the pool becomes PID 1 of a
    # PID namespace of its own, so that every process of the project ends with it.
    if not own_user_namespace():
        report_ready(config)
        return _pool(project, time.monotonic())
    keep_only_setfcap()
    report_ready(config)
    pool_pid = os.fork()
    if pool_pid == 0:
        code = 1
        try:
            die_with_parent()
            code = _pool(project, time.monotonic())
        finally:
            os._exit(code)
    os.close(config.listen_fd)
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


def resume(config_json: str, last_activity: float) -> int:
    """The pool again, woken from rest by a connection."""
    if os.environ.get("LC_ALL") == "C":
        del os.environ["LC_ALL"]  # set for rest only (see Pool.rest)
    return _pool(Project(Config(loads(config_json))), last_activity)


def _pool(project: Project, last_activity: float) -> int:
    if os.getpid() == 1:
        # PID 1 of a namespace ignores signals it has no handler for: end as any process
        # would when told to (a cluster job's end, say), and the sandbox with us.
        for signum in END_SIGNALS:
            signal.signal(signum, end)
    else:
        become_subreaper()
    os.set_inheritable(project.config.listen_fd, False)
    listener = socket.socket(fileno=project.config.listen_fd)
    listener.setblocking(False)
    Pool(project, listener, last_activity).run()
    return 0


class Pool:
    """Persistent workers waiting in accept(): at least MIN_IDLE idle ones are kept while the
    project is in use, surplus idle ones retire, and all of them once the project is quiet.
    Workers note on the scoreboard when they take a connection, whether it was user
    activity, and when they are idle again, and poke the pool on a pipe when it must fork
    another worker at once; SIGCHLD wakes the loop through another pipe so that lost
    workers are replaced at once."""

    def __init__(self, project: Project, listener: socket.socket, last_activity: float) -> None:
        self.project = project
        self.listener = listener
        self.pid = os.getpid()
        self.control_r, self.control_w = os.pipe()
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.control_r, self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        self.workers: dict[int, str] = {}  # pid -> "idle" | "busy" | "ping" | "kept"
        self.slots: dict[int, int] = {}  # pid -> its slot on the scoreboard
        self.board = Scoreboard()
        self.retiring: set[int] = set()
        # User activity (not pings) counts towards the idle timeout; any request, and being
        # woken, keeps the pool from resting for quiet_s.
        self.last_activity = last_activity
        self.last_request = time.monotonic()
        self.retry_at = 0.0
        # Until the first request has been answered one idle worker is kept, not MIN_IDLE:
        # the first request (a start's, or a wake's) should not share the machine with a
        # second worker and its exec init being forked.
        self.answered = False

    def run(self) -> None:
        # Detach stdout/stderr: nobody reads them from now on, and nothing in the sandbox
        # should be able to write into the hub's logs through them.
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.close(devnull)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, _wake)
        idle_timeout = self.project.config.idle_timeout_s
        # Workers are forked from here: objects moved out of the collector's reach are not
        # touched by collections in the workers, so their pages stay shared.
        gc.collect()
        gc.freeze()
        while True:
            quiet = self.quiet() and not self.connection_waiting()
            if quiet:
                # Those waiting on a hub's kept connection too: it finds it closed.
                self.retire(len(self.workers), ("idle", "kept"))
                if not self.workers:
                    self.rest()
            else:
                self.fill()
                self.retire(self.count("idle") - MAX_IDLE)
            # While quiet no worker is waiting in accept(): a connection wakes the pool.
            listen_fd = self.listener.fileno()
            watch = [self.control_r, self.wake_r, *([listen_fd] if quiet else [])]
            short = not quiet and self.count("idle") < self.wanted_idle()
            ready = select.select(watch, [], [], 0.05 if short else 1.0)[0]
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 4096)
            if listen_fd in ready:
                self.last_request = time.monotonic()
            self.read_control()
            self.reap()
            quiet_for = time.monotonic() - self.last_activity
            if idle_timeout > 0 and not self.count("busy") and quiet_for > idle_timeout:
                return

    def count(self, state: str) -> int:
        return sum(1 for p, s in self.workers.items() if s == state and p not in self.retiring)

    def quiet(self) -> bool:
        quiet_s = self.project.config.quiet_s
        busy = any(s not in ("idle", "kept") for s in self.workers.values())
        return not busy and time.monotonic() - self.last_request > quiet_s

    def connection_waiting(self) -> bool:
        return bool(select.select([self.listener.fileno()], [], [], 0)[0])

    def wanted_idle(self) -> int:
        return MIN_IDLE if self.answered else 1

    def fill(self) -> None:
        while self.count("idle") < self.wanted_idle() and time.monotonic() >= self.retry_at:
            index = self.board.take()
            try:
                if index is None:
                    raise OSError("no free slot on the scoreboard")
                pid = os.fork()
            except OSError:
                # Out of processes (the project hit its limit): try again shortly.
                if index is not None:
                    self.board.give_back(index)
                self.retry_at = time.monotonic() + 0.1
                return
            if pid == 0:
                for fd in (self.control_r, self.wake_r, self.wake_w):
                    os.close(fd)
                slot = Slot(self.board.fd, index)
                Worker(self.project, self.listener, self.control_w, self.pid, slot).run()
            self.workers[pid] = "idle"
            self.slots[pid] = index

    def retire(self, extra: int, states: tuple[str, ...] = ("idle",)) -> None:
        for pid, state in list(self.workers.items()):
            if extra <= 0:
                break
            if state in states and pid not in self.retiring:
                self.retiring.add(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGUSR1)
                extra -= 1

    def rest(self) -> None:
        """Become the agent at rest (see `rest`): re-executed, the interpreter holds none of
        the modules and memory the workers were served from. Returns only if that failed."""
        config = self.project.config
        argv = [sys.executable, "-I", "-S", "-c", REST_ENTRY, PACKAGE_PARENT, str(__package__)]
        argv += [str(config.listen_fd), repr(config.idle_timeout_s), repr(self.last_activity)]
        # The start's readiness pipe was reported on and closed: not handed on.
        argv.append(dumps({k: v for k, v in config.raw.items() if k != "ready_fd"}))
        # The C locale spares the interpreter its locale files (it reads UTF-8 all the same);
        # `resume` takes it out of the environment again before anything is started.
        env = {**os.environ, "LC_ALL": "C"}
        signal.set_wakeup_fd(-1)
        # Ignored, SIGCHLD makes the kernel reap our children while nobody waits for them.
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        self.reap()
        os.set_inheritable(config.listen_fd, True)
        try:
            os.execve(argv[0], argv, env)  # noqa: S606 - the agent's own interpreter
        except OSError:
            # Out of memory, say: stay as we are and try again once quiet again.
            os.set_inheritable(config.listen_fd, False)
            signal.signal(signal.SIGCHLD, _wake)
            signal.set_wakeup_fd(self.wake_w)
            self.last_request = time.monotonic()

    def read_control(self) -> None:
        """Take in the pokes, and what the scoreboard says."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.control_r, 65536):
                pass
        slots = self.board.read()
        for pid, index in self.slots.items():
            state, answered, requested, active = slots[index]
            self.last_request = max(self.last_request, requested)
            self.last_activity = max(self.last_activity, active)
            if answered:
                self.answered = True
            if state != FREE:  # a retiring worker's last state stands
                self.workers[pid] = NAMES[state]

    def reap(self) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            # A worker's notes are written before it exits: take them in first.
            self.read_control()
            self.retiring.discard(pid)
            state = self.workers.pop(pid, None)
            index = self.slots.pop(pid, None)
            if index is not None:
                self.board.give_back(index)
            if state == "busy":
                self.last_activity = time.monotonic()
            elif state == "idle":
                # It died without serving anyone: do not respawn in a tight loop.
                self.retry_at = time.monotonic() + 0.1


def _wake(_signum: int, _frame: object) -> None:
    """SIGCHLD's handler: the signal itself, through the wakeup fd, wakes the pool."""


class Retire(Exception):
    """Raised in an idle worker told to retire: it ends at once."""


class Worker:
    """Serves connections one at a time until told to retire."""

    def __init__(
        self, project: Project, listener: socket.socket, control: int, pool: int, slot: Slot
    ) -> None:
        self.project = project
        self.listener = listener
        self.control = control
        self.pool = pool
        self.slot = slot
        self.retiring = False
        self.waiting = False  # in select(), holding no connection
        self.executor: Executor | None = None
        self.handlers: dict[str, Handler] = {}

    def report(self, state: str) -> None:
        self.slot.set(state, time.monotonic())
        # Taking a request may leave too few workers accepting the next: the pool forks
        # another at once. Otherwise it reads the scoreboard when it next wakes.
        if state in ("busy", "ping") and idle_count(self.slot.fd) < MIN_IDLE:
            os.write(self.control, b"!")

    def run(self) -> None:
        code = 0
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGCHLD, *END_SIGNALS):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGUSR1, self.retire)
            die_with_parent()
            if os.getppid() != self.pool:
                return
            inherited = [self.listener.fileno(), self.control, self.slot.fd]
            self.executor = Executor(self.project, self.project.config.nested_pidns, inherited)
            self.handlers = {
                "exec": self.executor.op_exec,
                "exec_watch": self.executor.op_exec_watch,
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
                "jupyter": functools.partial(_jupyter, self.project, self.executor),
            }
            self.serve()
        except Retire:
            pass
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    def retire(self, _signum: int, _frame: object) -> None:
        self.retiring = True
        self.slot.leave()
        if self.waiting:
            raise Retire()

    def serve(self) -> None:
        assert self.executor is not None
        # Exclusive: a connection wakes one idle worker, not every one (each would wake, try
        # to accept, and all but one go back to sleep, on the CPUs the hub needs meanwhile).
        arrivals = select.epoll(1)
        arrivals.register(self.listener.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
        self.executor.inherited.append(arrivals.fileno())
        while not self.retiring:
            # The exec init is forked ahead, so that an exec finds it ready.
            self.executor.prepare(close=[])
            # Inits that outlived their exec, and helpers that started inits.
            self.executor.reaped(reap_children())
            self.waiting = True
            ready = arrivals.poll(1.0)
            self.waiting = False
            if not ready:
                continue
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another worker took it
            with conn:
                conn.setblocking(True)
                self.executor.prepare(close=[conn.fileno()])
                if self.serve_connection(conn):
                    self.serve_kept(conn)

    def serve_kept(self, conn: socket.socket) -> None:
        """Serve the hub's next requests on the connection of its last, which it asked us to
        keep, until it closes it or leaves it unused for KEPT_S: the next request then costs
        neither side a connection, nor the pool a wake-up of one of us."""
        assert self.executor is not None
        try:
            while not self.retiring:
                self.report("kept")
                self.executor.prepare(close=[conn.fileno()])
                self.executor.reaped(reap_children())
                self.waiting = True
                ready = select.select([conn], [], [], KEPT_S)[0]
                self.waiting = False
                if not ready or not self.serve_connection(conn):
                    break
        finally:
            self.report("idle")

    def serve_connection(self, conn: socket.socket) -> bool:
        """Serve one request; True when it asks us to keep the connection for the next."""
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
        # Requests whose replies end where the hub stops reading: one frame (with the file a
        # read passes) or a frame and the bytes it announces.
        return request is not None and request.get("op") in KEEPABLE and request.get("keep") is True

    def handle(self, conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
        op = request.get("op")
        if op in ("ping", "touch"):
            with contextlib.suppress(OSError):
                send_frame(conn, {"ok": True})
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


def _jupyter(
    project: Project, executor: Executor, conn: socket.socket, req: dict[str, Any], fds: list[int]
) -> None:
    from . import jupyter

    # The manager it may start must go to the pool, to outlive this worker.
    with executor.detaching():
        jupyter.op_jupyter(project, conn, req, fds)
