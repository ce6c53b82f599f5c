"""An in-process runtime for fast tests of the domain: real files in a folder per project and
real processes, with no isolation, no agent and no limits beyond the disk quota.

It keeps the interface's semantics (paths, errors worded like Node's, atomic writes, rsync
copies, timeouts that kill the whole process group) so that a domain test passes against it
and against the sandboxed runtime alike. Never use it to serve untrusted users: commands run
as the server's own user.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import math
import os
import posixpath
import signal
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from calchub.runtime.base import (
    MAX_LISTING_ENTRIES,
    MIB,
    DirectoryEntry,
    DirectoryListing,
    ExecRequest,
    ExecResult,
    ExecWatch,
    FileContents,
    FileFailure,
    PathRefused,
    ProjectRuntime,
    ProjectSpec,
    QuotaExceeded,
    RuntimeFailure,
    RuntimeOptions,
    RuntimeStatus,
)

HARD_OUTPUT_CAP = 10 * 1024 * 1024
# How long an exec's output pipes may stay open after its command exited.
PIPE_GRACE_S = 2.0
_MESSAGES = {
    "ENOENT": "no such file or directory",
    "EISDIR": "illegal operation on a directory",
    "ENOTDIR": "not a directory",
    "EACCES": "permission denied",
    "EFBIG": "file too large",
    "EINVAL": "invalid argument",
    "E2BIG": "argument list too long",
}


def _failure(code: str, syscall: str, path: str, **extra: object) -> FileFailure:
    return FileFailure(code, syscall, path, _MESSAGES.get(code, code.lower()), **extra)  # type: ignore[arg-type]


def _os_failure(exc: OSError, syscall: str, path: str) -> FileFailure:
    return _failure(errno.errorcode.get(exc.errno or 0, "EIO"), syscall, path)


@dataclass
class _Running:
    started_at: datetime
    processes: set[asyncio.subprocess.Process] = field(default_factory=set)


class FakeRuntime(ProjectRuntime):
    """Projects as folders under `projects_root`; "running" is a flag in this process."""

    def __init__(self, projects_root: Path) -> None:
        self.projects_root = Path(projects_root).absolute()
        self._running: dict[str, _Running] = {}

    @classmethod
    def from_options(cls, options: RuntimeOptions) -> FakeRuntime:
        return cls(options.projects_root)

    # -- layout

    def home(self, project_id: str) -> Path:
        return self.projects_root / project_id

    def _resolve(self, spec: ProjectSpec, path: str) -> str:
        """Like the agent: relative to the home, ".." collapsed textually."""
        home = str(self.home(spec.project_id))
        if not path:
            return home
        joined = path if path.startswith("/") else f"{home}/{path}"
        return posixpath.normpath("/" + joined.lstrip("/"))

    def _relative(self, spec: ProjectSpec, real: str) -> str | None:
        home = os.path.realpath(self.home(spec.project_id))
        if real == home:
            return ""
        if real.startswith(home + "/"):
            return real[len(home) + 1 :]
        return None

    # -- lifecycle

    async def start(self, spec: ProjectSpec) -> None:
        if spec.project_id in self._running:
            return
        home = self.home(spec.project_id)
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._running[spec.project_id] = _Running(started_at=datetime.now(UTC))

    async def stop(self, project_id: str) -> None:
        running = self._running.pop(project_id, None)
        if running is None:
            return
        for process in list(running.processes):
            _kill_group(process)
            with contextlib.suppress(ProcessLookupError):
                await process.wait()

    async def restart(self, spec: ProjectSpec) -> None:
        await self.stop(spec.project_id)
        await self.start(spec)

    async def status(self, project_id: str) -> RuntimeStatus:
        running = self._running.get(project_id)
        if running is None:
            return RuntimeStatus(running=False, pid=None, memory_bytes=None, started_at=None)
        return RuntimeStatus(
            running=True, pid=os.getpid(), memory_bytes=None, started_at=running.started_at
        )

    async def close(self) -> None:
        for project_id in list(self._running):
            await self.stop(project_id)

    # -- processes

    async def exec(
        self, spec: ProjectSpec, request: ExecRequest, watch: ExecWatch | None = None
    ) -> ExecResult:
        await self.start(spec)
        cwd = self._resolve(spec, request.path)
        limit = HARD_OUTPUT_CAP if request.max_output is None else request.max_output
        limit = max(0, min(limit, HARD_OUTPUT_CAP))
        env = {
            "HOME": str(self.home(spec.project_id)),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "COCALC_PROJECT_ID": spec.project_id,
            **request.env,
        }
        script = None
        if request.bash:
            fd, script = tempfile.mkstemp(prefix="calchub-exec-")
            with os.fdopen(fd, "w") as f:
                f.write(f"ulimit -t {max(1, math.ceil(request.timeout_s))}\n{request.command}\n")
            argv = ["bash", script]
        else:
            argv = [request.command, *request.args]
        try:
            return await self._run(spec, argv, cwd, env, request.timeout_s, limit, script, watch)
        finally:
            if script:
                with contextlib.suppress(OSError):
                    os.unlink(script)

    async def _run(
        self,
        spec: ProjectSpec,
        argv: list[str],
        cwd: str,
        env: dict[str, str],
        timeout_s: float,
        limit: int,
        script: str | None,
        watch: ExecWatch | None = None,
    ) -> ExecResult:
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            not_found = isinstance(exc, FileNotFoundError) and exc.filename != cwd
            return ExecResult(
                stdout="",
                stderr=f"{argv[0]}: {exc.strerror}",
                exit_code=127 if not_found else 126,
                timed_out=False,
                could_not_run=True,
                stdout_truncated=False,
                stderr_truncated=False,
                script_path=script,
            )
        self._running[spec.project_id].processes.add(process)
        assert process.stdout is not None and process.stderr is not None
        if watch is not None:
            watch.begin(process.pid)
        reading = asyncio.gather(
            _read(process.stdout, limit, watch, 0), _read(process.stderr, limit, watch, 1)
        )
        timed_out = False
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            timed_out = True
            _kill_group(process)
            await process.wait()
        finally:
            self._running.get(spec.project_id, _Running(datetime.now(UTC))).processes.discard(
                process
            )
        try:
            (out, out_cut), (err, err_cut) = await asyncio.wait_for(
                asyncio.shield(reading), PIPE_GRACE_S
            )
        except TimeoutError:
            # A background process still holds the output pipes: it goes with the exec.
            _kill_group(process)
            (out, out_cut), (err, err_cut) = await reading
        code = process.returncode if process.returncode is not None else 1
        return ExecResult(
            stdout=out,
            stderr=err,
            exit_code=128 - code if code < 0 else code,
            timed_out=timed_out,
            could_not_run=False,
            stdout_truncated=out_cut,
            stderr_truncated=err_cut,
            script_path=script,
        )

    # -- files

    def _open_regular(self, spec: ProjectSpec, path: str, max_bytes: int) -> FileContents:
        resolved = self._resolve(spec, path)
        try:
            fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise _os_failure(exc, "open", resolved) from None
        real = self._relative(spec, os.path.realpath(f"/proc/self/fd/{fd}"))
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise _failure("EISDIR", "read", resolved, opened=True, real_path=real)
            if st.st_size > max_bytes:
                raise _failure(
                    "EFBIG", "read", resolved, size=st.st_size, opened=True, real_path=real
                )
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise _failure(
                    "EFBIG", "read", resolved, size=len(data), opened=True, real_path=real
                )
        finally:
            os.close(fd)
        return FileContents(data=data, real_path=real)

    async def read_file(self, spec: ProjectSpec, path: str, max_bytes: int) -> bytes:
        return (await self.read_file_located(spec, path, max_bytes)).data

    async def read_file_located(self, spec: ProjectSpec, path: str, max_bytes: int) -> FileContents:
        await self.start(spec)
        return await self.peek_file(spec, path, max_bytes)

    async def list_directory(
        self,
        spec: ProjectSpec,
        path: str,
        hidden: bool,
        *,
        max_entries: int = MAX_LISTING_ENTRIES,
    ) -> DirectoryListing:
        await self.start(spec)
        return await self.peek_directory(spec, path, hidden, max_entries=max_entries)

    async def peek_file(self, spec: ProjectSpec, path: str, max_bytes: int) -> FileContents:
        return await asyncio.to_thread(self._open_regular, spec, path, max_bytes)

    async def peek_directory(
        self,
        spec: ProjectSpec,
        path: str,
        hidden: bool,
        *,
        max_entries: int = MAX_LISTING_ENTRIES,
    ) -> DirectoryListing:
        return await asyncio.to_thread(self._list, spec, path, hidden, max_entries)

    def _list(
        self, spec: ProjectSpec, path: str, hidden: bool, max_entries: int
    ) -> DirectoryListing:
        resolved = self._resolve(spec, path)
        try:
            names = os.listdir(resolved)
        except OSError as exc:
            raise _os_failure(exc, "scandir", resolved) from None
        if len(names) > max_entries:
            raise _failure("E2BIG", "scandir", resolved)
        entries = []
        for name in sorted(names):
            if name.startswith(".") and not hidden:
                continue
            full = os.path.join(resolved, name)
            try:
                own = os.lstat(full)
            except OSError:
                continue
            isdir = os.path.isdir(full)
            mtime = round(own.st_mtime, 3)
            entries.append(DirectoryEntry(name, mtime, isdir=isdir, size=own.st_size))
        return DirectoryListing(entries, self._relative(spec, os.path.realpath(resolved)))

    async def write_file(self, spec: ProjectSpec, path: str, data: bytes) -> None:
        await self.start(spec)
        await asyncio.to_thread(self._write, spec, path, data)

    def _write(self, spec: ProjectSpec, path: str, data: bytes) -> None:
        resolved = self._resolve(spec, path)
        real = os.path.realpath(resolved)
        if os.path.isdir(real):
            raise _failure("EISDIR", "open", resolved)
        quota = spec.quota.disk_mb * MIB
        used = _disk_usage(str(self.home(spec.project_id)))
        old = os.stat(real).st_blocks * 512 if os.path.isfile(real) else 0
        if used - old + -(-len(data) // 4096) * 4096 > quota:
            raise QuotaExceeded(used, quota, len(data))
        parent, name = os.path.split(real)
        try:
            os.makedirs(parent, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name[:200]}.", suffix=".calchub-tmp", dir=parent)
        except OSError as exc:
            raise _os_failure(exc, "open", resolved) from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)
            os.rename(tmp, real)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    async def disk_usage(self, spec: ProjectSpec) -> int:
        return await asyncio.to_thread(_disk_usage, str(self.home(spec.project_id)))

    async def copy_path(
        self,
        src: ProjectSpec,
        src_path: str,
        dst: ProjectSpec,
        dst_path: str,
        *,
        overwrite_newer: bool,
        delete_missing: bool,
        backup: bool,
        exclude: list[str],
        timeout_s: float | None,
        on_progress: Callable[[dict[str, int]], None] | None = None,
        source_allowed: Callable[[str], bool] | None = None,
    ) -> None:
        await self.start(src)
        await self.start(dst)
        source, target, needed = await asyncio.to_thread(
            self._prepare_copy, src, src_path, dst, dst_path, source_allowed
        )
        argv = ["rsync", "-ax"]
        if not overwrite_newer:
            argv.append("--update")
        if delete_missing:
            argv.append("--delete")
        if backup:
            argv.append("--backup")
        if timeout_s:
            argv.append(f"--timeout={max(1, round(timeout_s))}")
        argv += [f"--exclude={pattern}" for pattern in exclude]
        argv += [source, target]
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await process.communicate()
        if process.returncode != 0:
            raise RuntimeFailure(stderr.decode(errors="replace").strip() or "rsync failed")
        if on_progress is not None:
            on_progress({"files": 0, "bytes": needed, "percent": 100})

    def _prepare_copy(
        self,
        src: ProjectSpec,
        src_path: str,
        dst: ProjectSpec,
        dst_path: str,
        source_allowed: Callable[[str], bool] | None,
    ) -> tuple[str, str, int]:
        """rsync's source and target, and the bytes the copy needs; checks the source's
        place and the target's quota."""
        source = self._resolve(src, src_path)
        if not os.path.lexists(source):
            raise _failure("ENOENT", "stat", source)
        if source_allowed is not None:
            real = os.path.realpath(source)
            where = (
                real
                if os.path.isdir(real)
                else os.path.join(
                    os.path.realpath(os.path.dirname(source)), os.path.basename(source)
                )
            )
            relative = self._relative(src, where)
            if relative is None or not source_allowed(relative):
                raise PathRefused(f"copying '{src_path}' is not allowed")
        needed = _disk_usage(source)
        quota = dst.quota.disk_mb * MIB
        used = _disk_usage(str(self.home(dst.project_id)))
        if used + needed > quota:
            raise QuotaExceeded(used, quota, needed)
        target = self._resolve(dst, dst_path)
        if dst_path.endswith("/"):
            target += "/"
        os.makedirs(os.path.dirname(target.rstrip("/")) or "/", exist_ok=True)
        # A folder's contents go into the target folder (rsync's trailing slash).
        if os.path.isdir(source) and source != "/":
            source += "/"
        return source, target, needed


async def _read(
    stream: asyncio.StreamReader, limit: int, watch: ExecWatch | None = None, index: int = 0
) -> tuple[str, bool]:
    """At most `limit` characters of the stream (the rest is read and dropped); with
    `watch`, its text also goes there as it comes (stream `index`: 0 stdout, 1 stderr)."""
    kept = bytearray()
    cut = False
    decoder = None if watch is None else codecs.getincrementaldecoder("utf-8")("replace")
    while chunk := await stream.read(65536):
        if watch is not None and decoder is not None:
            text = decoder.decode(chunk)
            watch.add_output(*((text, "") if index == 0 else ("", text)))
        room = limit * 4 - len(kept)  # characters are at most 4 bytes
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > room:
            cut = True
    text = kept.decode("utf-8", errors="replace")
    if len(text) > limit:
        text, cut = text[:limit], True
    return text, cut


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _disk_usage(path: str) -> int:
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    total = top.st_blocks * 512
    if stat.S_ISDIR(top.st_mode):
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total
