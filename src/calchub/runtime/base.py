"""The project runtime interface: what the rest of calchub may ask of a project's files and
processes. It knows nothing about HTTP or the database; backends (local bubblewrap sandboxes
today, perhaps Kubernetes pods later) implement `ProjectRuntime`."""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

MIB = 1024 * 1024
# A folder listing refuses folders with more names than this (hidden ones included): the
# whole listing travels in one reply and is sorted and paged in memory.
MAX_LISTING_ENTRIES = 50_000


@dataclass(frozen=True)
class Quota:
    """Limits of one running project (defaults resemble CoCalc's free tier)."""

    memory_mb: int = 1000
    cores: float = 1.0
    disk_mb: int = 3000
    processes: int = 256
    network: bool = False
    idle_timeout_s: int = 1800  # 0 disables stopping idle projects


@dataclass(frozen=True)
class AgentAddress:
    """Where one start of a project's agent answers over the network (never its token,
    which hubs derive from the start's nonce)."""

    project_id: str
    job_id: str
    nonce: str
    host: str
    port: int
    fingerprint: str


class AgentAddressBook(Protocol):
    """Shared record of agents' addresses (the database), for backends whose agents run
    elsewhere: one entry per project, replaced by each start, removed when it ends."""

    async def get(self, project_id: str) -> AgentAddress | None: ...

    async def put(self, address: AgentAddress) -> None: ...

    async def forget(self, project_id: str, nonce: str | None = None) -> None:
        """Remove the entry (only the one of that start, given a nonce)."""
        ...


@dataclass(frozen=True)
class RuntimeOptions:
    """What the server tells a backend when it builds it (from its settings)."""

    projects_root: Path
    runtime_root: Path
    # False runs projects without isolation (development only).
    sandbox: bool = True
    # Homes as disk images ("image"), plain folders ("none"), or images where they work.
    disk: str = "none"
    # Seconds without requests after which a project's agent rests (frees its workers).
    quiet_after_s: float = 30.0
    # Where backends with agents on other machines record their addresses.
    addresses: AgentAddressBook | None = None


# Loopback, private, shared, link-local, benchmarking, multicast and reserved IPv4 ranges.
DEFAULT_NETWORK_DENY = (
    "0.0.0.0/8,10.0.0.0/8,100.64.0.0/10,127.0.0.0/8,169.254.0.0/16,172.16.0.0/12,"
    "192.168.0.0/16,198.18.0.0/15,224.0.0.0/4,240.0.0.0/4"
)


@dataclass(frozen=True)
class NetworkRules:
    """IPv4 ranges (CIDR) a networked project may not reach, and exceptions to them (the
    most specific range wins). The host's own addresses are never reachable."""

    deny: tuple[str, ...] = tuple(DEFAULT_NETWORK_DENY.split(","))
    allow: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProjectSpec:
    project_id: str
    uid: int
    quota: Quota
    network_rules: NetworkRules = field(default_factory=NetworkRules)


@dataclass(frozen=True)
class ExecRequest:
    """One command to run in a project.

    `path` is the working directory: "" is the home, relative paths are relative to it,
    absolute paths are absolute in the project's view (e.g. "/etc"). `timeout_s` must be
    positive; the whole process tree is killed when it runs out. `max_output` is the number
    of characters kept per stream (None: a hard cap of about 10 million). With `bash`,
    `command` is a bash script run as `bash <tmpfile>` after `ulimit -t <timeout>`, as CoCalc
    does, and `args` is ignored.
    """

    command: str
    args: list[str]
    path: str
    timeout_s: float
    max_output: int | None
    bash: bool
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class ExecResult:
    """What a command did. `stdout`/`stderr` hold at most `max_output` characters; the
    `*_truncated` flags say whether the stream had more. `exit_code` is 128+N when the
    command was killed by signal N (so 137 after a timeout). `could_not_run` means the
    command never started (127: not found, 126: not executable or bad cwd); `stderr` then
    says why. `script_path` is the temporary script of a bash-mode exec."""

    stdout: str
    stderr: str
    exit_code: int
    timed_out: bool
    could_not_run: bool
    stdout_truncated: bool
    stderr_truncated: bool
    script_path: str | None


# Resource samples an ExecWatch keeps (the newest), and the largest pid it believes.
MAX_EXEC_SAMPLES = 100
MAX_PID = 1 << 22
SAMPLE_FIELDS = ("timestamp", "mem_rss", "cpu_pct", "cpu_secs")


class ExecWatch:
    """What a command did so far, for a caller that looks before it ends (an asynchronous
    job, polled while it runs): given to `ProjectRuntime.exec`, which reports here as the
    command runs. The blocking path passes none and pays nothing.

    What the runtime reports may come from inside the project, so this keeps it bounded
    whatever arrives: at most `limit`+1 characters per stream (one more than kept, so that
    truncation shows), a pid only when it is a plausible one, the last MAX_EXEC_SAMPLES
    resource samples ({timestamp (ms), mem_rss (MiB), cpu_pct, cpu_secs}) of numbers only.
    `changes` counts what changed, so a reader can tell whether to look again. `started` is
    set by `begin`, once the command started (with `pid` when the backend knows it); a
    command that could not start never sets it: its exec returns instead."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self.pid: int | None = None
        self.started = asyncio.Event()
        self.samples: deque[dict[str, float]] = deque(maxlen=MAX_EXEC_SAMPLES)
        self.changes = 0
        self._out: list[str] = []
        self._err: list[str] = []
        self._counts = [0, 0]

    def begin(self, pid: object) -> None:
        """The command started, as process `pid` (anything but a plausible pid: unknown)."""
        if self.started.is_set():
            return
        if isinstance(pid, int) and not isinstance(pid, bool) and 0 < pid <= MAX_PID:
            self.pid = pid
        self.started.set()
        self.changes += 1

    def add_output(self, stdout: str, stderr: str) -> None:
        """More of each stream, in order."""
        for index, (parts, text) in enumerate(((self._out, stdout), (self._err, stderr))):
            room = self.limit + 1 - self._counts[index]
            if text and room > 0:
                text = text[:room]
                parts.append(text)
                self._counts[index] += len(text)
                self.changes += 1

    def add_sample(self, sample: dict[str, object]) -> None:
        """One resource sample; one with a missing or non-numeric field is dropped."""
        values: dict[str, float] = {}
        for name in SAMPLE_FIELDS:
            value = sample.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return
            if not math.isfinite(value) or not 0 <= value < 1e16:
                return
            values[name] = value
        self.samples.append(values)
        self.changes += 1

    def stdout(self) -> str:
        """The output so far (at most `limit`+1 characters)."""
        return "".join(self._out)

    def stderr(self) -> str:
        return "".join(self._err)


@dataclass
class RuntimeStatus:
    running: bool
    pid: int | None
    memory_bytes: int | None
    started_at: datetime | None
    # Why a project that was running ended other than by a stop or its idle timeout, when
    # the backend knows (a cluster node failed, its job was cancelled).
    reason: str | None = None


@dataclass(frozen=True)
class DirectoryEntry:
    """One name in a folder, as CoCalc lists it: a folder has `isdir`, anything else its
    `size` in bytes. `mtime` is in seconds since the epoch, with milliseconds. For a link,
    `isdir` says where it leads; size and mtime are the link's own."""

    name: str
    mtime: float
    isdir: bool = False
    size: int = 0

    def to_json(self) -> dict[str, Any]:
        if self.isdir:
            return {"name": self.name, "isdir": True, "mtime": self.mtime}
        return {"name": self.name, "size": self.size, "mtime": self.mtime}


@dataclass(frozen=True)
class DirectoryListing:
    """A folder's entries, sorted by name. `real_path` is where the folder really is once
    links are resolved, relative to the home ("" for the home itself), or None when that is
    outside the home (e.g. /etc, or a folder reached through a link to it)."""

    entries: list[DirectoryEntry]
    real_path: str | None


@dataclass(frozen=True)
class FileContents:
    """A file's bytes and where the file read really is once links are resolved, relative
    to the home, or None when that is outside the home (or unknown). The place is taken
    from the opened file itself, so a link changed meanwhile cannot misreport it."""

    data: bytes
    real_path: str | None


class RuntimeFailure(Exception):
    """The runtime could not do what was asked."""


class FileFailure(RuntimeFailure):
    """A file-system error, worded like Node's: `ENOENT: no such file or directory, open
    '/projects/<id>/a.txt'`. `code` is the errno name; `size` is set for EFBIG. `opened`
    says a read failed after opening its file, and `real_path` then says where that file
    really is, as `FileContents.real_path` does."""

    def __init__(
        self,
        code: str,
        syscall: str,
        path: str,
        message: str,
        *,
        size: int | None = None,
        opened: bool = False,
        real_path: str | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}, {syscall} '{path}'")
        self.code = code
        self.syscall = syscall
        self.path = path
        self.size = size
        self.opened = opened
        self.real_path = real_path


class QuotaExceeded(RuntimeFailure):
    """Refused because the project would go over its disk quota."""

    def __init__(self, used_bytes: int, quota_bytes: int, needed_bytes: int) -> None:
        used_mb = math.ceil(used_bytes / MIB)
        quota_mb = quota_bytes // MIB
        super().__init__(f"disk quota exceeded: project uses {used_mb} MB of {quota_mb} MB")
        self.used_bytes = used_bytes
        self.quota_bytes = quota_bytes
        self.needed_bytes = needed_bytes


class PathRefused(RuntimeFailure):
    """The caller's check refused the place a path really leads to."""


class JupyterFailure(RuntimeFailure):
    """A Jupyter request failed. `kind` says how: "unavailable" (Jupyter cannot run in
    projects here), "no_kernel" (no such kernel), "no_session", "died" (the kernel died,
    e.g. killed at the project's memory limit), "timeout" (killed after a timeout that an
    interrupt did not end), "limit", "invalid" or "internal"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Busy(RuntimeFailure):
    """Refused for now: too much of this kind of work is waiting already."""


class SandboxUnavailable(RuntimeFailure):
    """Projects cannot be sandboxed on this machine (not root, no bubblewrap, ...)."""


class ProjectRuntime(ABC):
    """Starts, stops and works inside projects. Operations other than `stop`, `status` and
    `close` start the project first when it is not running.

    A backend is chosen by configuration (see calchub.runtime.backends); `check` runs once
    when the server starts."""

    # Why projects cannot run on this backend, or None when they can; set by `check`.
    problem: str | None = None

    @classmethod
    @abstractmethod
    def from_options(cls, options: RuntimeOptions) -> ProjectRuntime:
        """Build the backend from the server's settings."""

    def check(self) -> str | None:
        """Decide whether projects can run here; remember and return the reason if not."""
        self.problem = self.unavailable_reason()
        return self.problem

    def unavailable_reason(self) -> str | None:
        """Why projects cannot run here (None: they can). Backends override this."""
        return None

    def network_problem(self) -> str | None:
        """Why networked projects cannot run here (None: they can)."""
        return None

    async def clean_leftovers(self) -> None:
        """Remove what projects that ended while no server watched them left behind (run
        once at server start, in the background). Backends override this."""
        return None

    @abstractmethod
    async def start(self, spec: ProjectSpec) -> None:
        """Start the project; does nothing when it is already running."""

    @abstractmethod
    async def stop(self, project_id: str) -> None:
        """Stop the project and every process in it; does nothing when it is not running."""

    @abstractmethod
    async def restart(self, spec: ProjectSpec) -> None: ...

    @abstractmethod
    async def status(self, project_id: str) -> RuntimeStatus: ...

    async def statuses(self, project_ids: list[str]) -> dict[str, RuntimeStatus]:
        """The status of each project; a backend that can ask for all at once (a cluster's
        controller) overrides this."""
        return {project_id: await self.status(project_id) for project_id in project_ids}

    @abstractmethod
    async def exec(
        self, spec: ProjectSpec, request: ExecRequest, watch: ExecWatch | None = None
    ) -> ExecResult:
        """Run the command to its end. With `watch`, report to it as the command runs: its
        start (and pid), its output as it comes, resource samples where the backend takes
        them (each only as far as the backend can tell)."""

    @abstractmethod
    async def read_file(self, spec: ProjectSpec, path: str, max_bytes: int) -> bytes:
        """The file's bytes. Raises FileFailure (EISDIR for a folder, EFBIG with `size`
        when it is larger than `max_bytes`)."""

    @abstractmethod
    async def read_file_located(self, spec: ProjectSpec, path: str, max_bytes: int) -> FileContents:
        """As read_file, also telling where the file read really is; a FileFailure after
        the file was opened tells it too (`opened`, `real_path`)."""

    @abstractmethod
    async def list_directory(
        self,
        spec: ProjectSpec,
        path: str,
        hidden: bool,
        *,
        max_entries: int = MAX_LISTING_ENTRIES,
    ) -> DirectoryListing:
        """The folder's entries; names starting with "." only when `hidden`. `path` is
        resolved as read_file resolves it, in the project's own view. Raises FileFailure
        (ENOENT, ENOTDIR for a file, EACCES; E2BIG when the folder holds more than
        `max_entries` names, hidden ones included)."""

    @abstractmethod
    async def peek_file(self, spec: ProjectSpec, path: str, max_bytes: int) -> FileContents:
        """As read_file_located, but never starts the project: a stopped project is read
        where it lies (with the same path resolution, caps and errors) and stays stopped.
        Raises Busy when too many such reads wait already."""

    @abstractmethod
    async def peek_directory(
        self,
        spec: ProjectSpec,
        path: str,
        hidden: bool,
        *,
        max_entries: int = MAX_LISTING_ENTRIES,
    ) -> DirectoryListing:
        """As list_directory, but never starts the project, as peek_file."""

    @abstractmethod
    async def write_file(self, spec: ProjectSpec, path: str, data: bytes) -> None:
        """Create or replace the file atomically, creating parent folders. Raises
        QuotaExceeded when the project would go over its disk quota."""

    @abstractmethod
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
        """Copy like `rsync -ax`: a folder's contents go into the target folder; a file goes
        to exactly `dst_path`, or into it when `dst_path` ends with "/". Both paths must be
        inside the projects' homes. Without `overwrite_newer`, newer target files are kept;
        `delete_missing` removes target files absent from the source; `backup` keeps
        replaced files as `name~`; `exclude` holds rsync patterns; `timeout_s` is rsync's
        I/O timeout. Symbolic links are copied as links, never followed out of the source.
        `on_progress`, called from any thread, gets {files, bytes, percent} while it runs.
        `source_allowed` is asked about where the source really is, relative to the source's
        home: a folder followed through links, anything else (a link is copied as a link)
        in its real parent folder. When it says no, or that place is outside the home,
        PathRefused is raised; when yes, exactly that place is copied, even if a link
        changes meanwhile.
        Raises QuotaExceeded when the copy would not fit in the target's disk quota."""

    @abstractmethod
    async def disk_usage(self, spec: ProjectSpec) -> int:
        """Bytes used by the project's home."""

    async def jupyter_call(
        self, spec: ProjectSpec, request: dict[str, Any], wait_s: float
    ) -> dict[str, Any]:
        """Send one request to the project's Jupyter kernel manager and return its reply
        (untrusted: calchub.runtime.jupyter checks it). Starts the project first. Raises
        JupyterFailure; backends without kernels raise it with kind "unavailable"."""
        raise JupyterFailure("unavailable", "Jupyter kernels are not available on this server")

    async def touch(self, project_id: str) -> None:  # noqa: B027 - optional hook
        """Record user activity, postponing the idle-timeout stop; a no-op by default."""

    @abstractmethod
    async def close(self) -> None:
        """Release this object's resources. Running projects keep running."""
