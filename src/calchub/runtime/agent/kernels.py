"""The project's Jupyter kernel manager: a long-lived process inside the sandbox, started on
first use by the agent (see `jupyter`), running as the project's user under its limits.

Unlike the rest of the agent it runs on the system Python with Jupyter's own libraries
(pyzmq and jupyter_client, from Debian's python3-jupyter-client), which it imports only when
it starts, so that the agent itself stays standard-library only. The hub never talks to it
directly: the agent relays one request per connection on a Unix socket in the sandbox's
private /tmp.

What it keeps:
- pools of pre-started kernels per kernel name; a stateless execute takes one, runs the
  (silent) history and the input in it, then closes it, as CoCalc does;
- persistent sessions: a kernel kept for many executes, ended on request or when idle;
- every kernel it started, for listing and stopping by pid.

Kernels talk to it over ipc (Unix sockets in a private folder), not TCP: nothing listens on
any network, not even the sandbox's own loopback.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from .wire import recv_frame, send_frame

START_TIMEOUT_S = 60.0
HOUSEKEEPING_S = 2.0
# After each interrupt, how long the cell gets to end before the next (then a kill). The
# first wait is long: an interrupted Python cell first formats its traceback, which takes
# a second or more in a fresh kernel, and a second interrupt would cut that short.
INTERRUPT_WAITS_S = (3.0, 2.0, 2.0)
STOPPING_GRACE_S = 10.0
MAX_SESSIONS = 16
REMOVED_KEYS = ("execution_state", "execution_count", "payload", "code", "status", "source")
PYTHON_LIKE = ("python", "sage")
OOM_FIRST = 'echo 1000 > /proc/self/oom_score_adj 2>/dev/null; exec "$@"'


class Failure(Exception):
    """A request that failed; `kind` lets the hub choose its words."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def main(config: dict[str, Any]) -> int:
    """Serve until the sandbox ends. Only one manager runs per project: it holds an flock
    on its lock file for its whole life."""
    folder = config["folder"]
    os.makedirs(folder, mode=0o700, exist_ok=True)
    lock = os.open(os.path.join(folder, "kernels.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another manager serves this project
    try:
        manager = Manager(config)
    except ImportError as exc:
        print(f"Jupyter is not installed for the system python3: {exc}", flush=True)
        return 3
    sock_path = config["socket"]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    os.chmod(sock_path, 0o600)
    listener.listen(64)
    # Tell the agent we are ready, then detach from its pipe.
    print("ready", flush=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    threading.Thread(target=manager.housekeeping, daemon=True).start()
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=manager.serve, args=(conn,), daemon=True).start()


class Kernel:
    """One running kernel and our connection to it."""

    def __init__(self, manager: Manager, name: str, cwd: str | None) -> None:
        import zmq  # type: ignore[import-not-found, import-untyped, unused-ignore]
        from jupyter_client.session import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
            Session,
        )

        self.name = name
        spec = manager.spec_of(name)
        self.language = str(spec.get("language") or "")
        self.interrupt_mode = str(spec.get("interrupt_mode") or "signal")
        self.folder = tempfile.mkdtemp(prefix="kernel-", dir=manager.folder)
        self.cwd = cwd or self.folder
        self.connection_file = os.path.join(self.folder, "connection.json")
        key = secrets.token_hex(32)
        info = {
            "transport": "ipc",
            "ip": os.path.join(self.folder, "k"),
            "shell_port": 1,
            "iopub_port": 2,
            "stdin_port": 3,
            "control_port": 4,
            "hb_port": 5,
            "key": key,
            "signature_scheme": "hmac-sha256",
            "kernel_name": name,
        }
        with open(os.open(self.connection_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            json.dump(info, f)
        argv = [
            str(a).replace("{connection_file}", self.connection_file)
            for a in spec.get("argv") or []
        ]
        if not argv:
            raise Failure("invalid", f"kernel '{name}' has no command line")
        # When the project runs out of memory, the kernel is what should go. (Through a
        # shell: our pids may belong to a namespace that the sandbox's /proc does not show.)
        argv = ["/bin/sh", "-c", OOM_FIRST, "kernel", *argv]
        env = dict(manager.env)
        env.update({str(k): str(v) for k, v in (spec.get("env") or {}).items()})
        self.process = subprocess.Popen(
            argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.process.pid
        self.session = Session(key=key.encode(), signature_scheme="hmac-sha256")
        self.zmq = zmq
        ctx = manager.zmq_context
        url = f"ipc://{info['ip']}-"
        self.shell = ctx.socket(zmq.DEALER)
        self.shell.linger = 0
        self.shell.connect(url + "1")
        self.iopub = ctx.socket(zmq.SUB)
        self.iopub.linger = 0
        self.iopub.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub.connect(url + "2")
        self.control = ctx.socket(zmq.DEALER)
        self.control.linger = 0
        self.control.connect(url + "4")
        self.closed = False
        self.ready = False  # started and warmed up

    def alive(self) -> bool:
        return not self.closed and self.process.poll() is None

    def death(self) -> str:
        code = self.process.poll()
        if code is not None and code < 0:
            number = -code
            name = signal.Signals(number).name if number in signal.valid_signals() else ""
            if number == signal.SIGKILL:
                return (
                    f"the kernel was killed ({name}), most likely because the project "
                    "ran out of memory"
                )
            return f"the kernel was killed by signal {number} ({name})"
        return f"the kernel exited (code {code})"

    def wait_ready(self, timeout: float) -> None:
        """Until the kernel answers kernel_info and its iopub reaches us (so no output of the
        first execute can be lost to the subscription's late start)."""
        deadline = time.monotonic() + timeout
        poller = self.zmq.Poller()
        poller.register(self.iopub, self.zmq.POLLIN)
        poller.register(self.shell, self.zmq.POLLIN)
        replied = False
        while True:
            if not self.alive():
                raise Failure("died", f"could not start kernel '{self.name}': {self.death()}")
            if time.monotonic() > deadline:
                raise Failure("timeout", f"kernel '{self.name}' did not start (timeout)")
            msg = self.session.msg("kernel_info_request", {})
            self.session.send(self.shell, msg)
            until = time.monotonic() + 0.5
            while time.monotonic() < until:
                events = dict(poller.poll(100))
                if self.shell in events:
                    _, reply = self.session.recv(self.shell, mode=self.zmq.NOBLOCK)
                    if reply is not None and reply["msg_type"] == "kernel_info_reply":
                        replied = True
                if self.iopub in events:
                    _, message = self.session.recv(self.iopub, mode=self.zmq.NOBLOCK)
                    if replied and message is not None:
                        self._drain()
                        return
                if replied and not events:
                    break

    def _drain(self) -> None:
        with contextlib.suppress(self.zmq.Again):
            while True:
                self.iopub.recv_multipart(self.zmq.NOBLOCK)

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def interrupt(self) -> None:
        if self.interrupt_mode == "message":
            self.session.send(self.control, self.session.msg("interrupt_request", {}))
        else:
            self.signal(signal.SIGINT)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.signal(signal.SIGKILL)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.process.wait(5)
        for sock in (self.shell, self.iopub, self.control):
            sock.close(0)
        shutil.rmtree(self.folder, ignore_errors=True)

    def run_cell(
        self,
        code: str,
        limits: Limits,
        outputs: list[dict[str, Any]] | None,
        *,
        store_history: bool = True,
    ) -> None:
        """Run `code`, appending its outputs in CoCalc's format to `outputs` (None: discard
        them). Past the cell's time limit the kernel is interrupted a few times, then killed
        (which raises)."""
        zmq = self.zmq
        content = {
            "code": code,
            "silent": False,
            "store_history": store_history,
            "user_expressions": {},
            "allow_stdin": False,
            # Each cell is sent only after the previous one ended, so there is never a queue
            # to cancel; with True the kernel aborts whatever reaches it shortly after an
            # error, and the next cell (a change of folder's error, then the code; or a
            # session's next call) could answer nothing.
            "stop_on_error": False,
        }
        request = self.session.msg("execute_request", content)
        msg_id = request["header"]["msg_id"]
        self.session.send(self.shell, request)
        poller = zmq.Poller()
        poller.register(self.iopub, zmq.POLLIN)
        poller.register(self.shell, zmq.POLLIN)
        cell = CellOutput(limits, outputs)
        replied = idle = False
        deadline = limits.cell_deadline()
        interrupts = 0
        stopping = False  # the interrupt's error arrived: the cell is ending
        while not (replied and idle):
            now = time.monotonic()
            if now >= deadline:
                if interrupts >= len(INTERRUPT_WAITS_S) or stopping:
                    self.close()
                    raise Failure(
                        "timeout",
                        f"the kernel did not stop when interrupted and was killed "
                        f"(timeout: {limits.describe_timeout()})",
                    )
                self.interrupt()
                limits.timed_out = True
                deadline = now + INTERRUPT_WAITS_S[interrupts]
                interrupts += 1
            events = dict(poller.poll(max(1, min(200, int((deadline - now) * 1000)))))
            if not events and not self.alive():
                raise Failure("died", self.death())
            if self.shell in events:
                _, reply = self.session.recv(self.shell, mode=zmq.NOBLOCK)
                if reply is not None and reply["parent_header"].get("msg_id") == msg_id:
                    replied = True
            if self.iopub in events:
                _, message = self.session.recv(self.iopub, mode=zmq.NOBLOCK)
                if message is None or message["parent_header"].get("msg_id") != msg_id:
                    continue
                msg_type = message["msg_type"]
                if msg_type == "status" and message["content"].get("execution_state") == "idle":
                    idle = True
                    continue
                if msg_type == "error" and interrupts and not stopping:
                    # Formatting the traceback may take a while: another interrupt now
                    # would only cut it short. Give the cell time to end instead.
                    stopping = True
                    deadline = time.monotonic() + STOPPING_GRACE_S
                cell.add(msg_type, message["content"])


class Limits:
    """CoCalc's limits of one execute: times in ms, output sizes in characters (0: none)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.timeout_ms = _number(raw.get("timeout_ms"))
        self.timeout_ms_per_cell = _number(raw.get("timeout_ms_per_cell"))
        self.max_output = int(_number(raw.get("max_output")))
        self.max_output_per_cell = int(_number(raw.get("max_output_per_cell")))
        self.started = time.monotonic()
        self.total_output = 0
        self.timed_out = False

    def cell_deadline(self) -> float:
        now = time.monotonic()
        ends = [float("inf")]
        if self.timeout_ms_per_cell:
            ends.append(now + self.timeout_ms_per_cell / 1000)
        if self.timeout_ms:
            ends.append(self.started + self.timeout_ms / 1000)
        return min(ends)

    def describe_timeout(self) -> str:
        parts = []
        if self.timeout_ms_per_cell:
            parts.append(f"{self.timeout_ms_per_cell / 1000:g} seconds per cell")
        if self.timeout_ms:
            parts.append(f"{self.timeout_ms / 1000:g} seconds in total")
        return ", ".join(parts)


class CellOutput:
    """The outputs of one cell in CoCalc's shape (iopub contents, some keys removed), with
    its output limits: past them, a truncation notice replaces what follows (once per
    cell: an endless print loop must not grow the reply); tracebacks are always kept."""

    def __init__(self, limits: Limits, outputs: list[dict[str, Any]] | None) -> None:
        self.limits = limits
        self.outputs = outputs
        self.chars = 0
        self.truncated = False

    def add(self, msg_type: str, content: dict[str, Any]) -> None:
        outputs = self.outputs
        if outputs is None or msg_type.startswith("comm_"):
            return
        if msg_type == "clear_output":
            outputs.clear()
        item = {
            key: value
            for key, value in content.items()
            if key not in REMOVED_KEYS and not (isinstance(value, dict) and not value)
        }
        if not item or "comm_id" in item:
            return
        size = len(json.dumps(item, separators=(",", ":"), ensure_ascii=False))
        self.limits.total_output += size
        self.chars += size
        if "traceback" in item:
            outputs.append(item)
            return
        limits = self.limits
        if limits.max_output_per_cell and self.chars > limits.max_output_per_cell:
            self._truncate(f"cell output limit of {limits.max_output_per_cell}")
        elif limits.max_output and limits.total_output > limits.max_output:
            self._truncate(f"global output limit of {limits.max_output}")
        else:
            outputs.append(item)

    def _truncate(self, which: str) -> None:
        if self.truncated or self.outputs is None:
            return
        self.truncated = True
        text = f"Output truncated since it exceeded the {which} characters"
        self.outputs.append({"name": "stdout", "output_type": "stream", "text": [text]})


class Session:
    def __init__(self, kernel: Kernel, idle_timeout_s: float, path: str | None) -> None:
        self.id = str(uuid.uuid4())
        self.kernel = kernel
        self.idle_timeout_s = idle_timeout_s
        self.path = path
        self.created = time.time()
        self.last_used = time.monotonic()
        self.lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kernel": self.kernel.name,
            "pid": self.kernel.pid,
            "path": self.path,
            "created": self.created,
            "idle_s": time.monotonic() - self.last_used,
            "idle_timeout_s": self.idle_timeout_s,
            "alive": self.kernel.alive(),
        }


class Manager:
    def __init__(self, config: dict[str, Any]) -> None:
        import jupyter_client.kernelspec  # type: ignore[import-not-found, import-untyped, unused-ignore]
        import zmq  # type: ignore[import-not-found, import-untyped, unused-ignore]

        self.folder: str = config["folder"]
        self.home: str = config["home"]
        self.env: dict[str, str] = dict(config.get("env") or {})
        self.env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        self.spec_manager = jupyter_client.kernelspec.KernelSpecManager()
        self.zmq_context = zmq.Context()
        self.lock = threading.Lock()
        self.kernels: dict[int, Kernel] = {}
        self.pools: dict[str, list[concurrent.futures.Future[Kernel]]] = {}
        self.pool_settings: dict[str, tuple[int, float]] = {}
        self.last_active: dict[str, float] = {}
        self.sessions: dict[str, Session] = {}
        self.starter = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="start")

    # -- requests

    def serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = recv_frame(conn)
            except (OSError, EOFError, ValueError):
                return
            after: list[Callable[[], None]] = []
            try:
                reply = {"ok": True, **self.handle(request, after)}
            except Failure as exc:
                reply = {"ok": True, "failure": {"kind": exc.kind, "message": str(exc)}}
            except Exception as exc:
                detail = traceback.format_exception_only(exc)[-1].strip()
                reply = {"ok": True, "failure": {"kind": "internal", "message": detail}}
            with contextlib.suppress(OSError):
                send_frame(conn, reply)
        # Closing the used kernel and starting its replacement cost CPU the answer should
        # not wait for (nor share the machine with).
        for work in after:
            with contextlib.suppress(Exception):
                work()

    def handle(self, request: dict[str, Any], after: list[Callable[[], None]]) -> dict[str, Any]:
        op = request.get("op")
        if op == "specs":
            return {"specs": self.specs()}
        if op == "execute":
            limits = Limits(request.get("limits") or {})
            output = self.execute(request, limits, after)
            return {"output": output, "timed_out": limits.timed_out}
        if op == "list":
            return {"kernels": self.list_kernels()}
        if op == "stop":
            return {"success": self.stop(int(request["pid"]))}
        if op == "session_create":
            return {"session": self.create_session(request)}
        if op == "session_list":
            with self.lock:
                return {"sessions": [s.describe() for s in self.sessions.values()]}
        if op == "session_delete":
            return {"success": self.delete_session(str(request.get("id")))}
        raise Failure("invalid", f"unknown operation {op!r}")

    # -- kernel specs

    def specs(self) -> list[dict[str, Any]]:
        found = []
        for name, entry in self.spec_manager.get_all_specs().items():
            spec = entry.get("spec") or {}
            found.append(
                {
                    "name": name.lower(),
                    "display_name": spec.get("display_name") or name,
                    "language": spec.get("language") or "",
                    "interrupt_mode": spec.get("interrupt_mode") or "signal",
                    "env": spec.get("env") or {},
                    "metadata": spec.get("metadata") or {},
                    "resource_dir": entry.get("resource_dir") or "",
                    "argv": spec.get("argv") or [],
                }
            )
        return sorted(found, key=lambda s: (str(s["display_name"]).lower(), s["name"]))

    def spec_of(self, name: str) -> dict[str, Any]:
        try:
            spec = self.spec_manager.get_kernel_spec(name)
        except Exception as exc:
            names = ", ".join(sorted(self.spec_manager.find_kernel_specs())) or "none"
            raise Failure(
                "no_kernel", f"no Jupyter kernel named '{name}' (installed: {names})"
            ) from exc
        # Typed only where jupyter_client ships its hints (a venv with the [bench] extra).
        described: dict[str, Any] = spec.to_dict()
        return described

    # -- kernels

    def start_kernel(self, name: str, cwd: str | None = None) -> Kernel:
        kernel = Kernel(self, name, cwd)
        with self.lock:
            self.kernels[kernel.pid] = kernel
        try:
            kernel.wait_ready(START_TIMEOUT_S)
            # A first, empty execute does the kernel's lazy set-up now rather than in the
            # caller's time (and before any interrupt could land in the middle of it).
            warm_up = "0" if kernel.language.lower().startswith(PYTHON_LIKE) else ""
            limits = Limits({"timeout_ms_per_cell": START_TIMEOUT_S * 1000})
            kernel.run_cell(warm_up, limits, None, store_history=False)
            kernel.ready = True
        except BaseException:
            self.forget(kernel)
            raise
        return kernel

    def forget(self, kernel: Kernel) -> None:
        kernel.close()
        with self.lock:
            if self.kernels.get(kernel.pid) is kernel:
                del self.kernels[kernel.pid]

    def take_from_pool(self, name: str, size: int, timeout_s: float) -> Kernel:
        """A kernel from the pool (started now if none is ready); the pool refills to
        `size` in the background, as CoCalc's does."""
        self.spec_of(name)
        with self.lock:
            self.pool_settings[name] = (size, timeout_s)
            self.last_active[name] = time.monotonic()
            pool = self.pools.setdefault(name, [])
            future = pool.pop(0) if pool else None
            if not pool:
                # The pool is empty now: start the next kernels at once. Otherwise the
                # refill waits until this call has answered (see serve).
                self._refill(name)
        if future is None:
            return self.start_kernel(name)
        try:
            kernel = future.result(START_TIMEOUT_S)
        except Exception:
            # That pool kernel failed to start (or was stopped while it started): the
            # caller gets a kernel started now instead, or that start's own failure.
            return self.start_kernel(name)
        if not kernel.alive():
            self.forget(kernel)
            return self.start_kernel(name)
        return kernel

    def refill(self, name: str) -> None:
        with self.lock:
            self._refill(name)

    def _refill(self, name: str) -> None:
        size, _ = self.pool_settings.get(name, (0, 0.0))
        pool = self.pools.setdefault(name, [])
        pool[:] = [f for f in pool if not (f.done() and f.exception() is not None)]
        while len(pool) < size:
            pool.append(self.starter.submit(self.start_kernel, name))

    def list_kernels(self) -> list[dict[str, Any]]:
        with self.lock:
            kernels = [k for k in self.kernels.values() if k.alive()]
        sessions = {s.kernel.pid: s.id for s in self.sessions.values()}
        return [
            {
                "pid": k.pid,
                "connectionFile": k.connection_file,
                "kernel_name": k.name,
                "ready": k.ready,
                **({"session": sessions[k.pid]} if k.pid in sessions else {}),
            }
            for k in kernels
        ]

    def stop(self, pid: int) -> bool:
        with self.lock:
            kernel = self.kernels.get(pid)
        if kernel is None:
            return False
        self.forget(kernel)
        return True

    # -- execute

    def execute(
        self, request: dict[str, Any], limits: Limits, after: list[Callable[[], None]]
    ) -> list[dict[str, Any]]:
        history = [str(h) for h in request.get("history") or []]
        code = str(request.get("input") or "")
        path = request.get("path")
        session_id = request.get("session")
        if session_id:
            return self._execute_in_session(str(session_id), history, code, limits)
        name = str(request.get("kernel") or "").strip().lower()
        pool = request.get("pool") or {}
        kernel = self.take_from_pool(
            name, int(_number(pool.get("size"))), _number(pool.get("timeout_s"))
        )
        after.append(lambda: self.forget(kernel))
        after.append(lambda: self.refill(name))
        # The total time counts from when the kernel is ours, not while it starts.
        limits.started = time.monotonic()
        try:
            outputs: list[dict[str, Any]] = []
            if path is not None:
                self._chdir(kernel, str(path), limits, outputs)
            if history:
                kernel.run_cell("\n".join(history), limits, None)
            kernel.run_cell(code, limits, outputs)
            return outputs
        except BaseException:
            self.forget(kernel)
            raise

    def _execute_in_session(
        self, session_id: str, history: list[str], code: str, limits: Limits
    ) -> list[dict[str, Any]]:
        with self.lock:
            session = self.sessions.get(session_id)
        if session is None:
            raise Failure("no_session", f"no Jupyter session '{session_id}' in this project")
        with session.lock:
            session.last_used = time.monotonic()
            if not session.kernel.alive():
                self._end_session(session)
                raise Failure("died", f"the session's {session.kernel.death()}; it has ended")
            outputs: list[dict[str, Any]] = []
            try:
                if history:
                    session.kernel.run_cell("\n".join(history), limits, None)
                session.kernel.run_cell(code, limits, outputs)
            except Failure:
                if not session.kernel.alive():
                    self._end_session(session)
                raise
            finally:
                session.last_used = time.monotonic()
            return outputs

    def _chdir(
        self, kernel: Kernel, path: str, limits: Limits, outputs: list[dict[str, Any]]
    ) -> None:
        """Change the kernel's directory to `path` (relative to the home) in its own
        language; a failure becomes the first output, and execution goes on."""
        target = path if path.startswith("/") else os.path.join(self.home, path)
        try:
            command = chdir_command(kernel.language, os.path.normpath(target))
        except Failure as exc:
            outputs.append({"name": "stderr", "text": str(exc)})
            return
        if not command:
            return
        result: list[dict[str, Any]] = []
        kernel.run_cell(command, limits, result)
        errors = [item for item in result if "ename" in item]
        if errors:
            error = errors[0]
            outputs.append({"name": "stderr", "text": f"{error['ename']}: {error['evalue']}"})

    # -- sessions

    def create_session(self, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("kernel") or "").strip().lower()
        self.spec_of(name)
        with self.lock:
            if len(self.sessions) >= MAX_SESSIONS:
                raise Failure(
                    "limit", f"a project may have at most {MAX_SESSIONS} Jupyter sessions"
                )
        path = request.get("path")
        cwd = self.home
        if path:
            cwd = str(path) if str(path).startswith("/") else os.path.join(self.home, str(path))
            if not os.path.isdir(cwd):
                raise Failure("invalid", f"no such directory: '{path}'")
        kernel = self.start_kernel(name, cwd)
        session = Session(kernel, _number(request.get("idle_timeout_s")), path or None)
        with self.lock:
            self.sessions[session.id] = session
        return session.describe()

    def delete_session(self, session_id: str) -> bool:
        with self.lock:
            session = self.sessions.get(session_id)
        if session is None:
            return False
        self._end_session(session)
        return True

    def _end_session(self, session: Session) -> None:
        with self.lock:
            self.sessions.pop(session.id, None)
        self.forget(session.kernel)

    # -- upkeep

    def housekeeping(self) -> None:
        while True:
            time.sleep(HOUSEKEEPING_S)
            with contextlib.suppress(Exception):
                self._tidy()

    def _tidy(self) -> None:
        now = time.monotonic()
        ended: list[Session] = []
        surplus: list[concurrent.futures.Future[Kernel]] = []
        with self.lock:
            for session in list(self.sessions.values()):
                idle_limit = session.idle_timeout_s
                busy = session.lock.locked()
                if not busy and (
                    not session.kernel.alive()
                    or (idle_limit and now - session.last_used > idle_limit)
                ):
                    ended.append(session)
            for name, pool in self.pools.items():
                _, timeout_s = self.pool_settings.get(name, (0, 0.0))
                idle = now - self.last_active.get(name, now)
                if timeout_s and idle > timeout_s and len(pool) > 1:
                    # Idle pools shrink to one kernel, oldest first.
                    surplus += pool[:-1]
                    del pool[:-1]
            # Kernels that died on their own leave the list.
            for pid, kernel in list(self.kernels.items()):
                if kernel.process.poll() is not None:
                    del self.kernels[pid]
        for session in ended:
            self._end_session(session)
        for future in surplus:
            future.add_done_callback(_close_started)


def _close_started(future: concurrent.futures.Future[Kernel]) -> None:
    with contextlib.suppress(Exception):
        future.result().close()


def chdir_command(language: str, path: str) -> str:
    """Code that changes the working directory in the kernel's language ("" when the
    language has no notion of one)."""
    lang = language.lower()
    if lang == "sparql":
        return ""
    if lang.startswith(PYTHON_LIKE):
        return f"import os; os.chdir({json.dumps(path)})"
    if lang == "r":
        return f"setwd({json.dumps(path)})"
    if lang == "julia":
        return f"cd({json.dumps(path)})"
    if lang in ("octave", "matlab"):
        return "cd('" + path.replace("'", "''") + "')"
    if lang == "javascript":
        return f"process.chdir({json.dumps(path)})"
    if lang in ("bash", "sh"):
        return "cd '" + path.replace("'", "'\\''") + "'"
    if lang == "prolog":
        return "working_directory(_, '" + path.replace("\\", "\\\\").replace("'", "\\'") + "')."
    if lang == "c" or lang.startswith("c++"):
        return f"#include <unistd.h>\nchdir({json.dumps(path)})\n"
    raise Failure(
        "invalid",
        f"Error: unable to change directory: chdir for language {lang} is not implemented.",
    )


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return 0.0
    return float(value)
