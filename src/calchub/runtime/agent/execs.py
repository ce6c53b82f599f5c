"""Running commands: each worker keeps an init process ready, PID 1 of a fresh PID
namespace in a user namespace of its own (or a subreaper where nested namespaces are
unavailable), which starts the command and owns everything it starts, so that a timeout can
kill the whole tree."""

from __future__ import annotations

import codecs
import contextlib
import errno
import fcntl
import math
import os
import select
import time

from . import signals as signal
from . import sockets as socket
from .kernel import (
    become_subreaper,
    below,
    exit_code_of,
    has_children,
    keep_only_sys_admin,
    kill_tree,
    own_user_namespace,
    process_stats,
)
from .project import DEFAULT_PATH, Project
from .wire import CHUNK, hub_gone, recv_frame, send_frame

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

HARD_OUTPUT_CAP = 10 * 1024 * 1024  # characters kept per stream when max_output is None
# How long a command's output may wait in its pipes before we read it as it comes, and how
# much each pipe holds meanwhile: 4x the default, well within a user's share of pipe memory
# (pipe-user-pages-soft) even with a hundred execs at once.
SETTLE_S = 0.01
PIPE_BYTES = 256 * 1024
# A watched exec (an asynchronous job) sends the hub its new output at most this often, and
# a sample of its processes' resources 1 s after its start, then every sixth of the time it
# has run (at least 1 s, at most STATS_MAX_S), as CoCalc does.
FLUSH_S = 0.5
STATS_MAX_S = 60.0


class Executor:
    """A worker's exec handling, with its init forked ahead of the request. `inherited` are
    the worker's descriptors that the init must not keep."""

    def __init__(self, project: Project, nested: bool, inherited: list[int]) -> None:
        self.project = project
        self.nested = nested
        self.inherited = inherited
        self.init: ExecInit | None = None
        if nested:
            # Nested inits are started by helpers that end at once: the init comes back to
            # us (see _fork_nested_init).
            become_subreaper()

    def prepare(self, close: list[int]) -> None:
        if self.init is None:
            self.init = ExecInit(self.nested, [*self.inherited, *close])

    def _started_init(self, close: list[int]) -> ExecInit | None:
        init, self.init = self.init, None
        if init is None or init.started():
            return init
        # Its helper could not make namespaces here: from now on, subreaper inits.
        init.discard()
        self.nested = False
        return ExecInit(False, [*self.inherited, *close])

    def reaped(self, pids: list[int]) -> None:
        """Children reaped elsewhere: a helper among them needs no more waiting for."""
        if self.init is not None and self.init.helper in pids:
            self.init.helper = 0

    @contextlib.contextmanager
    def detaching(self) -> Iterator[None]:
        """While this runs, a process orphaned below us goes to the pool, not to us (as the
        Jupyter manager must, to outlive this worker): we stop being a subreaper once the
        helper of a nested init in the making has ended."""
        if not self.nested:
            yield
            return
        if self.init is not None:
            self.init.settle()
        become_subreaper(False)
        try:
            yield
        finally:
            become_subreaper()

    def op_exec_watch(self, conn: socket.socket, req: dict[str, Any], fds: list[int]) -> None:
        """As op_exec, telling the hub as the command runs, before the reply: once it started
        {"event": "started", "pid"} (its pid as it sees itself), then {"event": "output",
        "stdout", "stderr"} with what it wrote since the last (within the output limit), and
        {"event": "stats", "timestamp", "mem_rss", "cpu_pct", "cpu_secs"} of its processes.
        A hub asks for this only for execs it looks at while they run: the plain exec's path
        stays as it is."""
        self.op_exec(conn, req, fds, watch=True)

    def op_exec(
        self, conn: socket.socket, req: dict[str, Any], _fds: list[int], watch: bool = False
    ) -> None:
        init = self._started_init([conn.fileno()])
        if init is None:
            raise ValueError("no exec init in this worker")
        script = None
        try:
            command = str(req["command"])
            timeout = float(req["timeout_s"])
            max_output = req.get("max_output")
            limit = HARD_OUTPUT_CAP if max_output is None else int(max_output)
            limit = max(0, min(limit, HARD_OUTPUT_CAP))
            cwd = self.project.resolve(str(req.get("path") or ""))
            env = self.project.exec_env(req.get("env") or {})
            if req.get("bash"):
                # As CoCalc does: a script file with a CPU-time limit, run by bash.
                tmp = self.project.config.tmp_dir
                fd, script = _new_script(tmp)
                with os.fdopen(fd, "w") as f:
                    f.write(f"ulimit -t {max(1, math.ceil(timeout))}\n{command}\n")
                argv = ["bash", script]
            else:
                argv = [command, *(str(a) for a in req.get("args") or [])]
            job: dict[str, Any] = {"argv": argv, "cwd": cwd, "env": env}
            if watch:
                job["report"] = True
            result = init.run(job, timeout, limit, conn, watch)
        finally:
            if script:
                with contextlib.suppress(OSError):
                    os.unlink(script)
            if init.reusable:
                self.init = init
            else:
                init.discard()
        send_frame(conn, {"ok": True, **result, "script_path": script})


def _widen(pipe: int) -> None:
    """Give the pipe room for PIPE_BYTES, so that a command rarely waits for us to read while
    its output is left there (the kernel may refuse beyond a user's share: then as it is)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _new_script(folder: str) -> tuple[int, str]:
    """A new file only this user can use, as tempfile.mkstemp makes it (tempfile itself is
    not imported: it would add its imports to every project's start)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        path = os.path.join(folder, f"calchub-exec-{os.urandom(6).hex()}")
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue


class ExecInit:
    """The init process of a worker's execs.

    For each job it gets (with fresh output pipes, over a socket pair) it starts the command
    and reports its exit status. If nothing is left below it then, its namespace is empty
    and it takes the next job; otherwise it stays to reap what is left (background processes
    that let go of the output pipes outlive the exec, as in CoCalc) and the worker forks a
    new init for the next exec.
    """

    def __init__(self, nested: bool, close: list[int]) -> None:
        self.nested = nested
        self.reusable = False
        self.helper = 0  # the helper starting a nested init, until it has been waited for
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if nested:
                self.pid = 0  # known once the helper reports it (see started)
                self.helper = _fork_nested_init(mine, theirs, close)
            else:
                self.pid = os.fork()
                if self.pid == 0:
                    for fd in (mine.fileno(), *close):
                        os.close(fd)
                    init_main(theirs, nested=False)
        except BaseException:
            mine.close()
            raise
        finally:
            theirs.close()
        self.channel = mine

    def started(self) -> bool:
        """Whether the init runs; a nested one's pid is reported by its helper, which fails
        where user namespaces cannot be made."""
        if not self.pid:
            try:
                self.pid = int(recv_frame(self.channel)["init"])
            except (EOFError, OSError, ValueError, KeyError, TypeError):
                return False
        return True

    def settle(self) -> None:
        """Wait for the helper (if any) to end, so that the init is our child."""
        helper, self.helper = self.helper, 0
        if helper:
            os.waitpid(helper, 0)

    def kill(self) -> None:
        self.reusable = False
        if self.started():
            self.settle()
            kill_tree(self.pid, self.nested)

    def discard(self) -> None:
        """Let go of the init: once idle (or done reaping) it sees the channel close."""
        self.channel.close()

    def run(
        self,
        job: dict[str, Any],
        timeout: float,
        limit: int,
        conn: socket.socket,
        watch: bool = False,
    ) -> dict[str, Any]:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            for fd in (out_w, err_w):
                _widen(fd)
            send_frame(self.channel, job, fds=[out_w, err_w])
        finally:
            os.close(out_w)
            os.close(err_w)
        try:
            return self._collect(out_r, err_r, timeout, limit, conn, Watch(conn) if watch else None)
        finally:
            os.close(out_r)
            os.close(err_r)

    def _collect(
        self,
        out_r: int,
        err_r: int,
        timeout: float,
        limit: int,
        conn: socket.socket,
        watcher: Watch | None = None,
    ) -> dict[str, Any]:
        captures = {out_r: Capture(limit), err_r: Capture(limit)}
        pipes = {out_r, err_r}
        status: dict[str, Any] | None = None
        waiting = True  # for the init's report on the command
        started = time.monotonic()
        deadline = started + timeout
        # Until the command has ended or SETTLE_S has passed, its output is left in the pipes
        # (see _widen): a short command then wakes us once, with its report, instead of once
        # more for its output and once more for the pipes' end.
        settled = started + SETTLE_S
        timed_out = False
        while pipes or waiting:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                timed_out = True
                break
            settling = waiting and now < settled
            watch: list[Any] = [conn] if settling else [*pipes, conn]
            if waiting:
                watch.append(self.channel)
            wait = min(remaining, settled - now) if settling else remaining
            if watcher is not None and waiting:
                wait = max(0.0, min(wait, watcher.due(now, captures[out_r], captures[err_r])))
            ready = select.select(watch, [], [], wait)[0]
            if conn in ready and hub_gone(conn):
                self.kill()
                raise EOFError("the hub went away")
            if self.channel in ready:
                report = self._receive()
                if watcher is not None and report is not None and "pid" in report:
                    # The command started (asked for by a watched exec); its end comes next.
                    self._tell(watcher.started, report["pid"], self.pid)
                else:
                    status = report
                    waiting = False
                    self.reusable = status is not None and status.get("free") is True
            for fd in pipes & set(ready):
                chunk = os.read(fd, CHUNK)
                if chunk:
                    captures[fd].feed(chunk)
                else:
                    pipes.discard(fd)
            if watcher is not None and waiting:
                self._tell(watcher.tell, time.monotonic(), captures[out_r], captures[err_r])
        if timed_out:
            self.kill()
            # Every writer is dead now; collect what is still buffered in the pipes.
            for fd in pipes:
                while chunk := os.read(fd, CHUNK):
                    captures[fd].feed(chunk)
        return exec_result(captures[out_r], captures[err_r], status, timed_out)

    def _tell(self, what: Callable[..., None], *args: Any) -> None:
        """Send the hub news of a watched exec; a hub that is gone ends the command."""
        try:
            what(*args)
        except OSError:
            self.kill()
            raise EOFError("the hub went away") from None

    def _receive(self) -> dict[str, Any] | None:
        """The init's report, or None when it is gone."""
        try:
            return recv_frame(self.channel)
        except (EOFError, OSError, ValueError):
            return None


def exec_result(
    out: Capture, err: Capture, status: dict[str, Any] | None, timed_out: bool
) -> dict[str, Any]:
    stdout, stdout_truncated = out.finish()
    stderr, stderr_truncated = err.finish()
    result: dict[str, Any] = {
        "timed_out": timed_out,
        "could_not_run": False,
        "stdout_truncated": stdout_truncated,
        "stderr_truncated": stderr_truncated,
        "exit_code": 128 + signal.SIGKILL,
    }
    if status and "error" in status:
        result["could_not_run"] = True
        result["exit_code"] = 127 if status.get("errno") == errno.ENOENT else 126
        stderr = str(status["error"])
    elif status and "status" in status:
        result["exit_code"] = exit_code_of(int(status["status"]))
    result["stdout"], result["stderr"] = stdout, stderr
    return result


def _fork_nested_init(mine: socket.socket, theirs: socket.socket, close: list[int]) -> int:
    """Fork the helper that starts an init as PID 1 of a new PID namespace, owned by a new
    user namespace, and return the helper's pid. The helper makes the namespaces (a new PID
    namespace is for a process's children only, and it could not make another), forks the
    init, reports its pid on the init's channel and ends; the caller, a subreaper, becomes
    the init's parent, so that it reaps it and the init's pid stays its own. Nobody waits
    for the helper here: it runs while the worker goes on."""
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            for fd in (mine.fileno(), *close):
                os.close(fd)
            if own_user_namespace():
                keep_only_sys_admin()
                init = os.fork()
                if init == 0:
                    init_main(theirs, nested=True)
                send_frame(theirs, {"init": init})
                code = 0
        finally:
            os._exit(code)
    return helper


def init_main(channel: socket.socket, nested: bool) -> None:
    code = 0
    try:
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_DFL)
        if not nested:
            become_subreaper()
        with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
            # The exec, not the agent, should be the one killed when memory runs out.
            f.write("500")
        while run_job(channel):
            pass
        # Stay until everything below us has ended (or the worker kills us).
        with contextlib.suppress(ChildProcessError):
            while True:
                os.wait()
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def run_job(channel: socket.socket) -> bool:
    """Run one job and report how it ended and whether we are free: True when nothing is
    left below us and we can take another."""
    fds: list[int] = []
    try:
        job = recv_frame(channel, fds)
    except EOFError:
        return False
    if len(fds) != 2:
        raise ValueError("a job needs its two output pipes")
    out_w, err_w = fds
    argv, cwd, env = job["argv"], job["cwd"], job["env"]
    try:
        pid = spawn(argv, cwd, env, out_w, err_w)
    except OSError as exc:
        send_frame(channel, {**spawn_error(exc, argv[0], cwd), "free": True})
        return True
    finally:
        os.close(out_w)
        os.close(err_w)
    if job.get("report"):
        send_frame(channel, {"pid": pid})
    while True:
        done, status = os.wait()
        if done == pid:
            break
    # One report with both: each report is a wake-up of the worker, on the exec's path.
    free = not has_children()
    send_frame(channel, {"status": status, "free": free})
    return free


def spawn(argv: list[str], cwd: str, env: dict[str, str], out_w: int, err_w: int) -> int:
    """Start the command in its own session with posix_spawn (a vfork: no copy of this
    process's memory). Our own descriptors are close-on-exec, so it gets only 0, 1, 2."""
    os.chdir(cwd)
    program = find_program(argv[0], env.get("PATH", DEFAULT_PATH))
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        return os.posix_spawn(
            program,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ],
            setsid=True,
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD, signal.SIGUSR1),
            setsigmask=(),
        )
    finally:
        os.close(devnull)


def find_program(name: str, path: str) -> str:
    if "/" in name:
        return name
    for folder in path.split(":"):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(errno.ENOENT, "command not found", name)


def spawn_error(exc: OSError, command: str, cwd: str) -> dict[str, Any]:
    reason = (exc.strerror or str(exc)).lower()
    if exc.filename == cwd and not os.path.isdir(cwd):
        message = f"cannot change directory to '{cwd}': {reason}"
    elif exc.errno == errno.ENOENT:
        message = f"{command}: command not found"
    else:
        message = f"{command}: {reason}"
    return {"error": message, "errno": exc.errno}


class Watch:
    """What a watched exec tells the hub while its command runs (see op_exec_watch)."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.begun = time.monotonic()
        self.flush_at = self.begun  # the first output goes at once
        self.root = 0  # the init, whose processes below it are sampled
        self.sample_at = math.inf
        self.last: tuple[float, float] | None = None  # (when, cpu seconds) of the last sample

    def started(self, pid: object, init: int) -> None:
        self.root = init
        self.sample_at = self.begun + 1.0
        self.last = (self.begun, 0.0)
        send_frame(self.conn, {"event": "started", "pid": pid})

    def due(self, now: float, out: Capture, err: Capture) -> float:
        """How long until there is something to tell."""
        wait = self.sample_at - now
        if out.pending() or err.pending():
            wait = min(wait, self.flush_at - now)
        return wait

    def tell(self, now: float, out: Capture, err: Capture) -> None:
        if now >= self.flush_at and (out.pending() or err.pending()):
            send_frame(self.conn, {"event": "output", "stdout": out.take(), "stderr": err.take()})
            self.flush_at = now + FLUSH_S
        if now >= self.sample_at:
            self.sample(now)
            elapsed = now - self.begun
            self.sample_at = now + min(STATS_MAX_S, max(1.0, float(int(elapsed / 6))))

    def sample(self, now: float) -> None:
        rss, cpu = tree_usage(self.root)
        when, before = self.last or (self.begun, 0.0)
        self.last = (now, cpu)
        pct = 100.0 * max(0.0, cpu - before) / max(now - when, 1e-3)
        send_frame(
            self.conn,
            {
                "event": "stats",
                "timestamp": int(time.time() * 1000),
                "mem_rss": round(rss / 1048576, 1),
                "cpu_pct": round(pct, 1),
                "cpu_secs": round(cpu, 2),
            },
        )


def tree_usage(root: int) -> tuple[int, float]:
    """Resident memory (bytes) and CPU time (seconds, with that of their ended children) of
    the processes below `root`, from one pass over /proc."""
    stats = dict(process_stats())
    pages = ticks = 0
    for pid in below(stats.items(), root):
        fields = stats[pid]
        with contextlib.suppress(IndexError, ValueError):
            # utime, stime, cutime, cstime; then rss (pages).
            ticks += sum(int(x) for x in fields[11:15])
            pages += int(fields[21])
    return pages * os.sysconf("SC_PAGE_SIZE"), ticks / os.sysconf("SC_CLK_TCK")


class Capture:
    """Keeps the first `limit`+1 characters of a stream; the rest is read and dropped so
    the writer never blocks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.keep = limit + 1
        self.parts: list[str] = []
        self.count = 0
        self.full = False
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.taken = 0  # parts already sent on (a watched exec)

    def feed(self, data: bytes) -> None:
        if not self.full:
            self._add(self.decoder.decode(data))

    def _add(self, text: str) -> None:
        room = self.keep - self.count
        if len(text) >= room:
            text = text[:room]
            self.full = True
        self.parts.append(text)
        self.count += len(text)

    def pending(self) -> bool:
        return self.taken < len(self.parts)

    def take(self) -> str:
        """What was kept since the last take."""
        new = self.parts[self.taken :]
        self.taken = len(self.parts)
        return "".join(new)

    def finish(self) -> tuple[str, bool]:
        if not self.full:
            self._add(self.decoder.decode(b"", final=True))
        text = "".join(self.parts)
        return text[: self.limit], len(text) > self.limit
