"""Projects on this machine: one bubblewrap sandbox per running project, run as the project's
own uid, with a long-lived agent inside that does the work (see calchub.runtime.agent).

Layout on the host:

    projects_root/<id>/            the project's home (owned by its uid, 0700); the folders
                                   above it may be private to root
    projects_root/.images/<id>.ext4
                                   instead of the folder, with project_disk=image: the home
                                   as a file system image the size of the disk quota (see
                                   calchub.runtime.disk_images)
    runtime_root/.agent/<version>/ the agent package, bound read-only into every sandbox
    runtime_root/.homes/<id>       while the project runs: its home, bind-mounted (or its
                                   image mounted) here by root, where bubblewrap (running
                                   as the project's uid) can reach it; the runtime root
                                   must be traversable (o+x)
    runtime_root/<id>/sock         the agent's socket (root only)
    runtime_root/<id>/state.json   pid and start time of the sandbox's PID 1 (root only)
    runtime_root/<id>/lock         serialises start/stop between hub processes

The socket and state live in a root-only folder that is not mounted into the sandbox:
if the project could write there it could swap the socket for a link to another project's
agent, and the hub would then serve one project's requests from another's files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import select
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from calchub.runtime import (
    channel,
    copy,
    disk_images,
    mounts,
    network,
    procfs,
    reaping,
    sandbox,
)
from calchub.runtime.base import (
    MAX_LISTING_ENTRIES,
    MIB,
    Busy,
    DirectoryListing,
    ExecRequest,
    ExecResult,
    ExecWatch,
    FileContents,
    PathRefused,
    ProjectRuntime,
    ProjectSpec,
    QuotaExceeded,
    RuntimeFailure,
    RuntimeOptions,
    RuntimeStatus,
    SandboxUnavailable,
)
from calchub.runtime.cgroups import CgroupManager, Limits
from calchub.runtime.errors import agent_error, unknown_operation
from calchub.runtime.home_paths import relative_to_home
from calchub.runtime.install import install_agent
from calchub.runtime.jupyter import jupyter_reply
from calchub.runtime.listing import parse_listing
from calchub.runtime.payload_files import PayloadFile, PayloadFiles
from calchub.runtime.state import AgentState, ProjectLocks, load, remove_folder, save

log = logging.getLogger(__name__)


class _AgentAsk(Protocol):
    """How a file request reaches the agent: `_call` (starting the project) or `_peek`."""

    def __call__(
        self, spec: ProjectSpec, header: dict[str, Any], *, max_payload: int = 0
    ) -> Awaitable[tuple[dict[str, Any], bytes]]: ...


EXEC_GRACE_S = 15.0  # the agent enforces the exec timeout; this only guards against a stuck agent
STOP_WAIT_S = 10.0
SANDBOX_QUOTA_LOCK = "/tmp/.calchub/quota.lock"  # noqa: S108 - the sandbox's private /tmp
MAX_SOCKET_PATH = 100
STDERR_CAP = 64 * 1024
# One-shot readers of stopped projects: how many run at once on this hub, how many more may
# wait, how long one may take, and what it may use beyond the file it reads.
READERS_AT_ONCE = 4
READERS_WAITING = 32
READER_WAIT_S = 20.0
READER_MEMORY = 96 * MIB
READER_CPU_S = 10
READER_TMP = 1 * MIB
DISK_MODES = ("auto", "image", "none")
_PROJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class LocalRuntime(ProjectRuntime):
    """Runs projects on this machine.

    With `sandbox=False` the agent runs unconfined as the server's own user with the home as
    its working directory: for development only. `use_cgroups=False` enforces memory and
    process limits with rlimits instead of cgroups; `nested_pidns=False` tracks exec process
    trees with a subreaper instead of a PID namespace per exec (and then forbids user
    namespaces inside the sandbox). `disk` is how homes are kept: "image" (a file system
    image per project, which holds everything to the disk quota; projects do not start
    where that cannot work), "none" (plain folders) or "auto" (images where they work).
    After `quiet_after_s` without requests a project's agent rests as one bare interpreter
    (`agent/rest.py`): long enough that a caller working in bursts keeps its workers, whose
    next exec would otherwise pay for importing the agent again.
    """

    def __init__(
        self,
        projects_root: Path,
        runtime_root: Path,
        *,
        sandbox: bool = True,
        use_cgroups: bool = True,
        nested_pidns: bool = True,
        io_timeout_s: float = 60.0,
        start_timeout_s: float = 20.0,
        disk: str = "none",
        quiet_after_s: float = 30.0,
    ) -> None:
        if disk not in DISK_MODES:
            raise ValueError(f"disk must be one of {', '.join(DISK_MODES)}, not {disk!r}")
        self.projects_root = Path(projects_root).absolute()
        self._resolved_projects_root = Path(os.path.realpath(self.projects_root))
        self.runtime_root = Path(runtime_root).absolute()
        self.sandboxed = sandbox
        self._nested_pidns = nested_pidns
        self._io_timeout_s = io_timeout_s
        self._start_timeout_s = start_timeout_s
        self._quiet_after_s = quiet_after_s
        self._cgroups = CgroupManager() if use_cgroups and os.geteuid() == 0 else None
        self._locks = ProjectLocks()
        self._readers = asyncio.Semaphore(READERS_AT_ONCE)
        self._readers_waiting = 0
        self._known: dict[str, AgentState] = {}
        self._payloads = PayloadFiles()
        # Sandboxes this object watches: pid -> (pidfd, the process if we launched it).
        self._watched: dict[int, tuple[int, subprocess.Popen[bytes] | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._prepared = False
        self._agent_home: Path | None = None  # set once the agent is installed
        self._disk_wanted = disk
        self.disk_images = False  # decided by check_available
        longest = self._socket_path("0" * 36)
        if len(str(longest).encode()) >= MAX_SOCKET_PATH:
            raise ValueError(f"runtime_root is too long for Unix socket paths: {longest}")
        if not sandbox:
            log.warning(
                "UNSANDBOXED PROJECTS: every project runs as this server's user (%s) with full "
                "access to this machine. Use only for development.",
                os.geteuid(),
            )

    @classmethod
    def from_options(cls, options: RuntimeOptions) -> LocalRuntime:
        return cls(
            options.projects_root,
            options.runtime_root,
            sandbox=options.sandbox,
            disk=options.disk,
            quiet_after_s=options.quiet_after_s,
        )

    # -- availability and layout

    def unavailable_reason(self) -> str | None:
        if not self.sandboxed:
            return None
        check = self.check_available()
        if check.available:
            return None
        return (
            f"projects cannot run on this server: {check.reason}; an operator may start "
            "it with --unsandboxed-projects to run them without isolation"
        )

    def network_problem(self) -> str | None:
        return network.pasta_problem() if self.sandboxed else None

    def check_available(self) -> sandbox.SandboxCheck:
        """Whether sandboxed projects can run here (root, bubblewrap, usable folders)."""
        check = sandbox.check_host()
        if not check.available:
            return check
        self._prepare_roots()
        # Homes are reached through mounts in the runtime root, so only it must be
        # traversable; the projects root may be as private as the server likes.
        if problem := sandbox.traversal_problem(self.runtime_root):
            return sandbox.SandboxCheck(False, problem)
        if problem := self._decide_disk():
            return sandbox.SandboxCheck(False, problem)
        return check

    def _decide_disk(self) -> str | None:
        """Whether homes are disk images; why projects cannot run when images are
        required and do not work here."""
        if self._disk_wanted == "none":
            self.disk_images = False
            return None
        problem = disk_images.problem(self.runtime_root)
        if problem is None:
            if not self.disk_images:
                log.info("project homes are disk images: the disk quota binds every write")
            self.disk_images = True
            return None
        self.disk_images = False
        if self._disk_wanted == "image":
            return f"project_disk is image, but {problem}"
        log.warning(
            "PROJECT DISK QUOTAS DO NOT BIND COMMANDS: homes are plain folders because %s "
            "(set project_disk=none to choose that, or provide what is missing)",
            problem,
        )
        return None

    def _prepare_roots(self) -> None:
        self.projects_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.runtime_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.sandboxed:
            # Traversable (not listable) by project uids: they reach the agent and their
            # own home's mount point through here. Set exactly, whatever the umask.
            self._mounts_root.mkdir(mode=0o700, exist_ok=True)
            for folder in (self.runtime_root, self._mounts_root):
                os.chmod(folder, 0o711)  # noqa: S103
        self._agent_home = install_agent(self.runtime_root)

    def _prepare(self) -> None:
        if self._prepared:
            return
        if self.sandboxed:
            check = self.check_available()
            if not check.available:
                raise SandboxUnavailable(check.reason)
        else:
            self._prepare_roots()
        self._prepared = True

    @property
    def _mounts_root(self) -> Path:
        return self.runtime_root / ".homes"

    def _home_mount(self, project_id: str) -> Path:
        """Where the running project's home is mounted for bubblewrap to bind."""
        return self._mounts_root / project_id

    def _mount_home(self, spec: ProjectSpec, *, reading: bool = False) -> tuple[Path, bool]:
        """Mount the project's home where bubblewrap binds it from: its disk image, or its
        folder; returns where, and whether it is an image. The one place a home is
        mounted. For a one-shot reader (`reading`) an image is mounted as it is: neither
        made, grown nor made from the folder."""
        project_id = spec.project_id
        target = self._home_mount(project_id)
        mounts.remove_mount_point(target)  # a stale one, left by a crash
        target.mkdir(mode=0o700)
        try:
            image = self._mount_image(spec, target, reading)
            if not image:
                mounts.bind(self._prepare_home(spec), target)
        except BaseException:
            with contextlib.suppress(OSError):
                target.rmdir()
            raise
        return target, image

    def _mount_image(self, spec: ProjectSpec, target: Path, reading: bool) -> bool:
        """Mount the home's image on `target`, made from the folder home if there is one;
        False where the home stays a folder."""
        folder = self.projects_root / spec.project_id
        image = disk_images.image_path(self.projects_root, spec.project_id)
        if reading or not self.disk_images:
            # An image made while images were on stays the home (its files must never be
            # hidden behind an empty folder), mounted as it is.
            if disk_images.holds_files(folder) or not image.is_file():
                return False
            disk_images.attach_existing(image, target)
            return True
        limits = disk_images.DiskLimits.for_quota(spec.quota.disk_mb)
        if disk_images.holds_files(folder):
            return disk_images.convert(folder, image, target, limits, spec.uid)
        with contextlib.suppress(OSError):
            folder.rmdir()  # an empty folder, from before images or a restore
        disk_images.attach(image, target, limits, spec.uid)
        return True

    def image_homes(self) -> list[str]:
        """The projects whose homes are disk images (backups copy their files through
        `image_home_files`). A folder with files beside an image is the home (it moves
        into the image at the next start), and is copied as a folder."""
        return [
            project_id
            for project_id in disk_images.image_ids(self.projects_root)
            if not disk_images.holds_files(self.projects_root / project_id)
        ]

    @contextlib.asynccontextmanager
    async def image_home_files(self, project_id: str) -> AsyncIterator[Path]:
        """A host folder showing the files of a project's image home, for a backup: the
        running project's own mount, or its image mounted for as long as this lasts. The
        project neither starts nor stops meanwhile (its image is never mounted twice)."""
        _check_id(project_id)
        self._prepare()
        async with self._lock(project_id):
            target = self._home_mount(project_id)
            state = load(self._state_path(project_id))
            if state is not None and state.alive() and disk_images.mounted_image(target):
                yield target
                return
            image = disk_images.image_path(self.projects_root, project_id)
            await asyncio.to_thread(mounts.remove_mount_point, target)
            target.mkdir(mode=0o700)
            try:
                await asyncio.to_thread(disk_images.attach_existing, image, target)
                yield target
            finally:
                await asyncio.to_thread(mounts.remove_mount_point, target)
                if state is None or not state.alive():
                    self._forget(project_id)

    def _rundir(self, project_id: str) -> Path:
        return self.runtime_root / project_id

    def _socket_path(self, project_id: str) -> Path:
        return self._rundir(project_id) / "sock"

    def _state_path(self, project_id: str) -> Path:
        return self._rundir(project_id) / "state.json"

    def _home_view(self, project_id: str) -> str:
        """The home's path as the project sees it."""
        if self.sandboxed:
            return sandbox.home_in_sandbox(project_id)
        return str(self.projects_root / project_id)

    def _real_home(self, project_id: str) -> str:
        """The home as the agent reports real paths: unsandboxed, with links resolved."""
        if self.sandboxed:
            return sandbox.home_in_sandbox(project_id)
        return str(self._resolved_projects_root / project_id)

    @contextlib.asynccontextmanager
    async def _lock(self, project_id: str) -> AsyncIterator[None]:
        async with self._locks.hold(project_id, self._rundir(project_id) / "lock"):
            yield

    def _forget(self, project_id: str) -> None:
        """Remove the runtime folder of a project that is not running (lock held)."""
        remove_folder(self._rundir(project_id), self._rundir(project_id) / "lock")

    # -- lifecycle

    async def start(self, spec: ProjectSpec) -> None:
        _check_spec(spec, self.sandboxed)
        self._prepare()
        async with self._lock(spec.project_id):
            existing = load(self._state_path(spec.project_id))
            if existing is not None and existing.alive():
                self._adopt(spec.project_id, existing)
                return
            await self._teardown(spec.project_id, existing)
            await self._launch(spec)

    async def stop(self, project_id: str) -> None:
        _check_id(project_id)
        self._payloads.forget(project_id)
        if not self._rundir(project_id).is_dir():
            return
        async with self._lock(project_id):
            await self._teardown(project_id, load(self._state_path(project_id)))
            self._forget(project_id)

    async def restart(self, spec: ProjectSpec) -> None:
        await self.stop(spec.project_id)
        await self.start(spec)

    async def status(self, project_id: str) -> RuntimeStatus:
        _check_id(project_id)
        state = load(self._state_path(project_id))
        if state is None or not state.alive():
            return RuntimeStatus(running=False, pid=None, memory_bytes=None, started_at=None)
        memory = None
        if state.cgroups and self._cgroups is not None:
            memory = self._cgroups.memory_usage(project_id)
        if memory is None:
            memory = procfs.rss_bytes(procfs.tree(state.pid))
        return RuntimeStatus(
            running=True, pid=state.pid, memory_bytes=memory, started_at=state.started_at
        )

    async def touch(self, project_id: str) -> None:
        _check_id(project_id)
        state = load(self._state_path(project_id))
        if state is not None and state.alive():
            with contextlib.suppress(RuntimeFailure):
                await channel.call(str(self._socket_path(project_id)), {"op": "touch"}, wait_s=5)

    async def close(self) -> None:
        channel.close_kept()
        self._payloads.close()
        for pid in list(self._watched):
            if (watched := self._unwatch(pid)) is not None:
                os.close(watched[0])

    async def clean_leftovers(self) -> None:
        """Unmount the homes of projects that ended while no hub watched them (a crash, an
        idle timeout during an upgrade); a disk image's loop device goes with its mount.
        A project that is running, starting or being read keeps its mount: each is checked
        under its lock."""
        if not self.sandboxed or self.problem is not None:
            return
        try:
            names = sorted(os.listdir(self._mounts_root))
        except FileNotFoundError:
            return
        for project_id in names:
            if not _PROJECT_ID.fullmatch(project_id) or self._alive(project_id):
                continue
            try:
                async with self._lock(project_id):
                    state = load(self._state_path(project_id))
                    if state is None or not state.alive():
                        await self._teardown(project_id, state)
                        self._forget(project_id)
                        log.info("cleaned up after project %s, which ended unwatched", project_id)
            except Exception:
                log.exception("cleaning up after project %s failed", project_id)

    async def _launch(self, spec: ProjectSpec) -> None:
        project_id = spec.project_id
        home = self.projects_root / project_id
        sock_path = self._socket_path(project_id)
        if self.sandboxed:
            # Before anything is launched: what the start leaves running outside the
            # sandbox (pasta), and the sandbox itself once its monitor goes, is then ours
            # to reap (see reaping.py).
            reaping.become_subreaper()
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # The agent writes a byte here once it is set up; the pipe ends without one when
        # the sandbox ends first.
        ready_r, ready_w = os.pipe()
        try:
            listener.bind(str(sock_path))
            listener.listen(1024)
            join_files, covered = self._make_cgroups(spec)
            config = self._agent_config(spec, listener.fileno(), covered)
            config["ready_fd"] = ready_w
            if self.sandboxed:
                # Making or growing a disk image runs tools: not on the event loop.
                source, config["home_is_disk"] = await asyncio.to_thread(self._mount_home, spec)
            else:
                source = self._prepare_home(spec)
            argv = self._agent_command(spec, source, config)
            if self.sandboxed and spec.quota.network:
                # Its own namespace, made and walled in by root before anything of the
                # project runs; bubblewrap then shares it instead of making an empty one.
                netns = network.set_up(self._rundir(project_id), spec.network_rules)
                argv = ["nsenter", f"--net={netns}", "--", *argv]
            proc = _spawn(
                sandbox.with_cgroups(join_files, argv),
                (listener.fileno(), ready_w),
                Path("/") if self.sandboxed else home,
            )
        except BaseException:
            listener.close()
            os.close(ready_r)
            if self._cgroups is not None:
                self._cgroups.remove(project_id)
            if self.sandboxed:
                mounts.remove_mount_point(self._home_mount(project_id))
                network.tear_down(self._rundir(project_id))
            raise
        finally:
            os.close(ready_w)
        # Only the agent holds the socket now, so connections fail fast once it is gone.
        listener.close()
        try:
            await self._wait_ready(proc, ready_r)
            started = procfs.start_time(proc.pid)
            if started is None:
                raise RuntimeFailure("the project exited right after starting")
        except BaseException:
            reaping.end_launched(proc)
            await self._teardown(project_id, None)
            raise
        pid1 = self._sandbox_pid1(proc) if self.sandboxed else None
        pid, started = (pid1[0], pid1[1]) if pid1 is not None else (proc.pid, started)
        state = AgentState(
            pid=pid,
            start_time=started,
            uid=spec.uid,
            started_at=datetime.now(UTC),
            sandboxed=self.sandboxed,
            cgroups=bool(join_files),
        )
        # Recorded before the monitor goes: a hub that dies in between leaves a project the
        # next one finds, not one that runs unknown.
        save(self._state_path(project_id), state)
        self._known[project_id] = state
        if pid1 is None:
            self._watch(project_id, proc.pid, proc)
        else:
            # bubblewrap's monitor only waits for the sandbox now: it goes (a SIGKILLed
            # monitor is gone within a millisecond), and its child becomes this hub's.
            proc.kill()
            proc.wait()
            self._watch(project_id, pid, None, pid1[2])
        log.info("started project %s (pid %s, uid %s)", project_id, pid, spec.uid)

    def _sandbox_pid1(self, proc: subprocess.Popen[bytes]) -> tuple[int, int, int] | None:
        """The sandbox's PID 1 below bubblewrap's monitor `proc` (its only child): its pid,
        start time and a pidfd on it. None where the monitor is to stay the project's
        recorded process: this hub cannot be a subreaper (so could not reap the sandbox),
        or the sandbox has already ended."""
        if not reaping.become_subreaper():
            return None
        found = procfs.children(proc.pid)
        if len(found) != 1 or (pidfd := reaping.pin(found[0], parent=proc.pid)) is None:
            return None
        started = procfs.start_time(found[0])
        if started is None:
            os.close(pidfd)
            return None
        return found[0], started, pidfd

    def _prepare_home(self, spec: ProjectSpec) -> Path:
        home = self.projects_root / spec.project_id
        home.mkdir(mode=0o700, exist_ok=True)
        if self.sandboxed:
            st = home.lstat()
            if (st.st_uid, st.st_gid) != (spec.uid, spec.uid):
                os.chown(home, spec.uid, spec.uid, follow_symlinks=False)
            os.chmod(home, 0o700, follow_symlinks=False)
        return home

    def _make_cgroups(self, spec: ProjectSpec) -> tuple[list[Path], frozenset[str]]:
        if self._cgroups is None or not self._cgroups.controllers:
            return [], frozenset()
        quota = spec.quota
        limits = Limits(quota.memory_mb * MIB, quota.cores, quota.processes)
        try:
            return self._cgroups.create(spec.project_id, limits), self._cgroups.controllers
        except OSError as exc:
            log.warning("cgroups unusable for %s, using rlimits: %s", spec.project_id, exc)
            self._cgroups.remove(spec.project_id)
            return [], frozenset()

    def _agent_config(
        self, spec: ProjectSpec, listen_fd: int, covered: frozenset[str]
    ) -> dict[str, Any]:
        quota = spec.quota
        # A single file can never exceed the disk quota; what cgroups do not cover is
        # approximated per process.
        rlimits = {"fsize": quota.disk_mb * MIB}
        if "memory" not in covered:
            rlimits["as"] = quota.memory_mb * MIB
        if "pids" not in covered:
            rlimits["nproc"] = quota.processes
        lock_path = (
            SANDBOX_QUOTA_LOCK
            if self.sandboxed
            else str(self._rundir(spec.project_id) / "quota.lock")
        )
        return {
            "project_id": spec.project_id,
            "home": self._home_view(spec.project_id),
            "listen_fd": listen_fd,
            "idle_timeout_s": quota.idle_timeout_s,
            "rlimits": rlimits,
            "nested_pidns": self._nested_pidns,
            "die_with_parent": not self.sandboxed,
            "lock_path": lock_path,
            "quiet_s": self._quiet_after_s,
        }

    def _agent_command(self, spec: ProjectSpec, home: Path, config: dict[str, Any]) -> list[str]:
        assert self._agent_home is not None, "the agent is installed before any start"
        if not self.sandboxed:
            launcher = str(self._agent_home / sandbox.AGENT_LAUNCHER)
            return [*sandbox.AGENT_PYTHON, launcher, "serve", json.dumps(config)]
        launcher = f"{sandbox.AGENT_MOUNT}/{sandbox.AGENT_LAUNCHER}"
        command = [*sandbox.AGENT_PYTHON, launcher, "serve", json.dumps(config)]
        return sandbox.bwrap_argv(
            uid=spec.uid,
            project_id=spec.project_id,
            home=home,
            agent_home=self._agent_home,
            network=spec.quota.network,
            allow_user_namespaces=self._nested_pidns,
            command=command,
            tmp_bytes=max(16 * MIB, spec.quota.memory_mb * MIB // 2),
        )

    async def _wait_ready(self, proc: subprocess.Popen[bytes], ready_fd: int) -> None:
        """Wait for the agent's word that it is set up (requests sent from then on wait in
        its socket's backlog until a worker takes them): no polling, and no round trip of
        its own. The pipe ending without a word means the sandbox ended: its stderr says
        why."""
        assert proc.stderr is not None
        stderr = proc.stderr.fileno()
        os.set_blocking(stderr, False)
        errors = bytearray()
        loop = asyncio.get_running_loop()
        answered: asyncio.Future[None] = loop.create_future()

        def drain() -> None:
            # Read as it comes, so that a chatty failure cannot block on a full pipe.
            with contextlib.suppress(OSError):
                chunk = os.read(stderr, STDERR_CAP)
                if not chunk:
                    loop.remove_reader(stderr)
                errors.extend(chunk[: STDERR_CAP - len(errors)])

        def answer() -> None:
            if not answered.done():
                answered.set_result(None)

        loop.add_reader(ready_fd, answer)
        loop.add_reader(stderr, drain)
        try:
            try:
                await asyncio.wait_for(answered, self._start_timeout_s)
            except TimeoutError:
                raise RuntimeFailure(
                    f"project did not start within {self._start_timeout_s:g} seconds"
                ) from None
            if os.read(ready_fd, 1):
                return
            code = await asyncio.to_thread(_exit_code, proc)
            drain()
            detail = errors.decode(errors="replace").strip() or "no message"
            raise SandboxUnavailable(f"project sandbox exited during start (code {code}): {detail}")
        finally:
            loop.remove_reader(ready_fd)
            loop.remove_reader(stderr)
            os.close(ready_fd)
            proc.stderr.close()

    def _adopt(self, project_id: str, state: AgentState) -> None:
        """Take on a sandbox another hub (or an earlier run of this one) started: watch it,
        so that its end is noticed and cleaned up here too."""
        self._known[project_id] = state
        if state.pid not in self._watched:
            pidfd = reaping.pin(state.pid, started=state.start_time)
            if pidfd is not None:
                self._watch(project_id, state.pid, None, pidfd)

    def _watch(
        self,
        project_id: str,
        pid: int,
        proc: subprocess.Popen[bytes] | None,
        pidfd: int | None = None,
    ) -> None:
        """Notice when the sandbox ends (idle timeout, crash) and clean up after it; it is
        also reaped, if it is this hub's child: by `proc`, or through its `pidfd` (which
        this takes over)."""
        try:
            if pidfd is None:
                pidfd = os.pidfd_open(pid)
            loop = asyncio.get_running_loop()
            loop.add_reader(pidfd, self._on_exit, project_id, pid)
        except (OSError, NotImplementedError, RuntimeError):
            if pidfd is not None:
                os.close(pidfd)
            return  # the next start or stop cleans up instead
        self._watched[pid] = (pidfd, proc)

    def _unwatch(self, pid: int) -> tuple[int, subprocess.Popen[bytes] | None] | None:
        """Stop watching `pid`; its pidfd and process, whose reaping (and the closing of
        the pidfd) is now the caller's."""
        watched = self._watched.pop(pid, None)
        if watched is not None:
            asyncio.get_running_loop().remove_reader(watched[0])
        return watched

    def _on_exit(self, project_id: str, pid: int) -> None:
        watched = self._unwatch(pid)
        if watched is not None:
            _reap(*watched)
            os.close(watched[0])
        task = asyncio.get_running_loop().create_task(self._after_exit(project_id, pid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_exit(self, project_id: str, pid: int) -> None:
        # A background task: it must not fail. Whatever it misses, the next start or stop
        # of the project cleans up.
        try:
            async with self._lock(project_id):
                state = load(self._state_path(project_id))
                if state is None or state.pid == pid:
                    log.info("project %s ended", project_id)
                    await self._teardown(project_id, state)
                    self._forget(project_id)
        except Exception:
            log.exception("cleaning up after project %s failed", project_id)

    async def _teardown(self, project_id: str, state: AgentState | None) -> None:
        """Kill whatever is left of the project's sandbox and remove its traces."""
        self._known.pop(project_id, None)
        self._payloads.forget(project_id)
        # The sandbox is reaped here (if it is this hub's child) rather than by its exit
        # watcher: through the watcher's pidfd, or one pinned now.
        watched = self._unwatch(state.pid) if state is not None else None
        if watched is None and state is not None:
            pidfd = reaping.pin(state.pid, started=state.start_time)
            watched = (pidfd, None) if pidfd is not None else None
        cgroups = (
            self._cgroups
            if self._cgroups is not None and self._cgroups.exists(project_id)
            else None
        )
        deadline = time.monotonic() + STOP_WAIT_S
        try:
            while True:
                alive = state is not None and state.alive()
                if alive:
                    assert state is not None
                    # Killing the sandbox's PID 1 ends every process in its namespace.
                    procfs.kill(procfs.tree(state.pid))
                if watched is not None:
                    _reap(*watched)
                members = cgroups.kill(project_id) if cgroups is not None else 0
                if not alive and not members and (cgroups is None or cgroups.remove(project_id)):
                    break
                if time.monotonic() > deadline:
                    log.error("project %s: processes survived the stop", project_id)
                    break
                await asyncio.sleep(0.01)
        finally:
            if watched is not None:
                _reap(*watched)
                os.close(watched[0])
        for path in (self._state_path(project_id), self._socket_path(project_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if self.sandboxed:
            mounts.remove_mount_point(self._home_mount(project_id))
            network.tear_down(self._rundir(project_id))

    # -- talking to the agent

    async def _ensure_running(self, spec: ProjectSpec) -> str:
        state = self._known.get(spec.project_id)
        if state is None or not self._running(state):
            state = load(self._state_path(spec.project_id))
            if state is not None and state.alive():
                self._adopt(spec.project_id, state)
            else:
                await self.start(spec)
        return str(self._socket_path(spec.project_id))

    def _running(self, state: AgentState) -> bool:
        """Whether the sandbox still runs: asked of its pidfd where this object watches it
        (a poll, where /proc costs a file's open, read and parse on every call)."""
        watched = self._watched.get(state.pid)
        if watched is None:
            return state.alive()
        # poll, not select: a busy hub's descriptors go past select's 1024.
        ended = select.poll()
        ended.register(watched[0], select.POLLIN)
        return not ended.poll(0)

    async def _endpoint(self, spec: ProjectSpec, *, fresh: bool = False) -> channel.Endpoint:
        """Where the running project's agent answers (starting the project if need be);
        `fresh` when the last answer did not come, so nothing cached is to be trusted."""
        return await self._ensure_running(spec)

    async def _call(
        self,
        spec: ProjectSpec,
        header: dict[str, Any],
        payload: bytes | None = None,
        *,
        wait_s: float | None = None,
        max_payload: int = 0,
        on_event: channel.EventHandler | None = None,
    ) -> tuple[dict[str, Any], bytes]:
        """With `on_event`, news before the reply goes there (see channel.call), and the
        reply of an agent that does not know the operation is returned, not raised."""
        _check_spec(spec, self.sandboxed)
        wait = self._io_timeout_s if wait_s is None else wait_s
        endpoint = await self._endpoint(spec)
        device = self._file_device(spec.project_id, header)
        kept = self._payloads, spec.project_id
        try:
            reply, data = await _send(
                endpoint, header, payload, wait, max_payload, device, kept, on_event
            )
        except channel.AgentUnreachable:
            # It ended between our check and the call (idle timeout): start it once more.
            self._known.pop(spec.project_id, None)
            endpoint = await self._endpoint(spec, fresh=True)
            device = self._file_device(spec.project_id, header)
            reply, data = await _send(
                endpoint, header, payload, wait, max_payload, device, kept, on_event
            )
        if not reply.get("ok") and not (on_event is not None and unknown_operation(reply)):
            raise agent_error(reply, self._real_home(spec.project_id))
        return reply, data

    def _file_device(self, project_id: str, header: dict[str, Any]) -> int | None:
        """For a read from a running project: the device of its home's file system, on
        which the agent may pass the file it opened rather than its bytes (None: it may
        not)."""
        if header.get("op") != "read":
            return None
        home = self._home_mount(project_id) if self.sandboxed else self.projects_root / project_id
        try:
            return os.stat(home).st_dev
        except OSError:
            return None

    # -- operations

    async def exec(
        self, spec: ProjectSpec, request: ExecRequest, watch: ExecWatch | None = None
    ) -> ExecResult:
        if not request.timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        header = {
            "op": "exec",
            "command": request.command,
            "args": list(request.args),
            "path": request.path,
            "timeout_s": request.timeout_s,
            "max_output": request.max_output,
            "bash": request.bash,
            "env": dict(request.env),
            # The connection is kept for the project's next exec (calchub.runtime.channel).
            "keep": True,
        }
        wait_s = request.timeout_s + EXEC_GRACE_S
        if watch is None:
            reply, _ = await self._call(spec, header, wait_s=wait_s)
        else:
            reply = await self._watched_exec(spec, header, wait_s, watch)
        keep = request.max_output
        stdout, stderr = _text(reply, "stdout"), _text(reply, "stderr")
        script = reply.get("script_path")
        return ExecResult(
            stdout=stdout if keep is None else stdout[:keep],
            stderr=stderr if keep is None else stderr[:keep],
            exit_code=_integer(reply, "exit_code"),
            timed_out=reply.get("timed_out") is True,
            could_not_run=reply.get("could_not_run") is True,
            stdout_truncated=reply.get("stdout_truncated") is True,
            stderr_truncated=reply.get("stderr_truncated") is True,
            script_path=script if isinstance(script, str) else None,
        )

    async def _watched_exec(
        self, spec: ProjectSpec, header: dict[str, Any], wait_s: float, watch: ExecWatch
    ) -> dict[str, Any]:
        """The exec's reply, its news on the way going to `watch`. An agent started before
        it knew watched execs, or a relay (which passes no news), runs it as a plain exec:
        its output then comes at its end, and its pid is not known."""
        events = _ExecEvents(watch, float(header["timeout_s"]))
        try:
            watched = {**header, "op": "exec_watch", "keep": False}
            reply, _ = await self._call(spec, watched, wait_s=wait_s, on_event=events)
        except channel.NoEvents:
            reply = None
        if reply is None or unknown_operation(reply):
            watch.begin(None)
            reply, _ = await self._call(spec, header, wait_s=wait_s)
        return reply

    async def read_file(self, spec: ProjectSpec, path: str, max_bytes: int) -> bytes:
        return (await self.read_file_located(spec, path, max_bytes)).data

    async def read_file_located(self, spec: ProjectSpec, path: str, max_bytes: int) -> FileContents:
        return await self._read(self._call, spec, path, max_bytes)

    async def list_directory(
        self,
        spec: ProjectSpec,
        path: str,
        hidden: bool,
        *,
        max_entries: int = MAX_LISTING_ENTRIES,
    ) -> DirectoryListing:
        return await self._list(self._call, spec, path, hidden, max_entries)

    async def peek_file(self, spec: ProjectSpec, path: str, max_bytes: int) -> FileContents:
        return await self._read(self._peek, spec, path, max_bytes)

    async def peek_directory(
        self,
        spec: ProjectSpec,
        path: str,
        hidden: bool,
        *,
        max_entries: int = MAX_LISTING_ENTRIES,
    ) -> DirectoryListing:
        return await self._list(self._peek, spec, path, hidden, max_entries)

    async def _read(
        self, ask: _AgentAsk, spec: ProjectSpec, path: str, max_bytes: int
    ) -> FileContents:
        """A file read by `ask`: the running agent (which starts the project) or a peek."""
        # The connection is kept for the project's next request (calchub.runtime.channel).
        header = {"op": "read", "path": path, "max_bytes": max_bytes, "keep": True}
        reply, data = await ask(spec, header, max_payload=max_bytes)
        real = relative_to_home(reply.get("real_path"), self._real_home(spec.project_id))
        return FileContents(data, real)

    async def _list(
        self, ask: _AgentAsk, spec: ProjectSpec, path: str, hidden: bool, max_entries: int
    ) -> DirectoryListing:
        if max_entries < 0:
            raise ValueError("max_entries must not be negative")
        header = {"op": "list", "path": path, "hidden": hidden, "max_entries": max_entries}
        reply, _ = await ask(spec, header)
        return parse_listing(reply, self._real_home(spec.project_id), max_entries)

    async def _peek(
        self, spec: ProjectSpec, header: dict[str, Any], *, max_payload: int = 0
    ) -> tuple[dict[str, Any], bytes]:
        """Ask the running agent, or, when the project is stopped, a one-shot reader."""
        _check_spec(spec, self.sandboxed)
        self._prepare()
        project_id = spec.project_id
        wait = self._io_timeout_s
        if self._alive(project_id):
            with contextlib.suppress(channel.AgentUnreachable):
                reply, data = await channel.call(
                    str(self._socket_path(project_id)),
                    header,
                    wait_s=wait,
                    max_payload=max_payload,
                    file_device=self._file_device(project_id, header),
                )
                return self._checked(spec, reply), data
        if self._readers_waiting >= READERS_AT_ONCE + READERS_WAITING:
            raise Busy("too many reads of stopped projects at once; try again shortly")
        self._readers_waiting += 1
        try:
            async with self._readers, self._lock(project_id):
                # Under the lock a start cannot overlap the read; one that came first wins.
                if self._alive(project_id):
                    reply, data = await channel.call(
                        str(self._socket_path(project_id)),
                        header,
                        wait_s=wait,
                        max_payload=max_payload,
                        file_device=self._file_device(project_id, header),
                    )
                else:
                    try:
                        reply, data = await self._read_once(spec, header, max_payload)
                    finally:
                        self._forget(project_id)
        finally:
            self._readers_waiting -= 1
        return self._checked(spec, reply), data

    def _alive(self, project_id: str) -> bool:
        state = load(self._state_path(project_id))
        return state is not None and state.alive()

    def _checked(self, spec: ProjectSpec, reply: dict[str, Any]) -> dict[str, Any]:
        if not reply.get("ok"):
            raise agent_error(reply, self._real_home(spec.project_id))
        return reply

    async def _read_once(
        self, spec: ProjectSpec, header: dict[str, Any], max_payload: int
    ) -> tuple[dict[str, Any], bytes]:
        """Serve one read with a short-lived sandbox as the project's uid: the agent's own
        code, the home bound read-only, no network, small limits; the caller holds the
        project's lock, so the home is not mounted for a start meanwhile."""
        project_id = spec.project_id
        home = self.projects_root / project_id
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            config = self._reader_config(spec, theirs.fileno(), max_payload)
            if self.sandboxed:
                source, _ = await asyncio.to_thread(self._mount_home, spec, reading=True)
            else:
                source = self._prepare_home(spec)
            try:
                proc = _spawn(
                    self._reader_command(spec, source, config),
                    (theirs.fileno(),),
                    Path("/") if self.sandboxed else home,
                )
                theirs.close()
                try:
                    return await channel.call_on(
                        ours, header, wait_s=READER_WAIT_S, max_payload=max_payload
                    )
                except RuntimeFailure as exc:
                    raise RuntimeFailure(f"reading the stopped project failed: {exc}") from None
                finally:
                    await asyncio.to_thread(reaping.end_launched, proc)
                    if proc.stderr is not None:
                        proc.stderr.close()
            finally:
                if self.sandboxed:
                    mounts.remove_mount_point(self._home_mount(project_id))
        finally:
            ours.close()
            theirs.close()

    def _reader_config(self, spec: ProjectSpec, fd: int, max_payload: int) -> dict[str, Any]:
        # Room for the file twice (read, then joined) and the interpreter.
        rlimits = {"as": READER_MEMORY + 2 * max_payload, "cpu": READER_CPU_S, "fsize": 0}
        if self.sandboxed:
            rlimits["nproc"] = 4
        return {
            "project_id": spec.project_id,
            "home": self._home_view(spec.project_id),
            "listen_fd": fd,
            "lock_path": SANDBOX_QUOTA_LOCK,  # unused: a reader writes nothing
            "rlimits": rlimits,
        }

    def _reader_command(self, spec: ProjectSpec, home: Path, config: dict[str, Any]) -> list[str]:
        assert self._agent_home is not None, "the agent is installed before any read"
        if not self.sandboxed:
            launcher = str(self._agent_home / sandbox.AGENT_LAUNCHER)
            return [*sandbox.AGENT_PYTHON, launcher, "once", json.dumps(config)]
        launcher = f"{sandbox.AGENT_MOUNT}/{sandbox.AGENT_LAUNCHER}"
        return sandbox.bwrap_argv(
            uid=spec.uid,
            project_id=spec.project_id,
            home=home,
            agent_home=self._agent_home,
            network=False,
            allow_user_namespaces=False,
            command=[*sandbox.AGENT_PYTHON, launcher, "once", json.dumps(config)],
            tmp_bytes=READER_TMP,
            read_only=True,
        )

    async def write_file(self, spec: ProjectSpec, path: str, data: bytes) -> None:
        header = {
            "op": "write",
            "path": path,
            "size": len(data),
            "quota_bytes": spec.quota.disk_mb * MIB,
            # As a large write goes (write_fd), the connection is kept for the next request.
            "keep": True,
        }
        await self._call(spec, header, data)

    async def jupyter_call(
        self, spec: ProjectSpec, request: dict[str, Any], wait_s: float
    ) -> dict[str, Any]:
        reply, _ = await self._call(spec, {"op": "jupyter", "request": request}, wait_s=wait_s)
        return jupyter_reply(reply)

    async def disk_usage(self, spec: ProjectSpec) -> int:
        reply, _ = await self._call(spec, {"op": "du"})
        return _integer(reply, "bytes")

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
        src_home, dst_home = self._home_view(src.project_id), self._home_view(dst.project_id)
        src_abs, dst_abs = copy.absolute(src_home, src_path), copy.absolute(dst_home, dst_path)
        if not copy.inside(src_abs, src_home):
            raise RuntimeFailure("source path must be contained in project home dir")
        if not copy.inside(dst_abs, dst_home):
            raise RuntimeFailure("target path must be contained in target project home dir")
        if src.project_id == dst.project_id and src_abs == dst_abs:
            return
        looked_up = self._call(src, {"op": "stat", "path": src_abs})
        if source_allowed is None:
            # Two agents (or workers of one) asked side by side; the source's stat speaks
            # first when the source is missing.
            (info, _), needed, used = await _in_order(
                looked_up, self._source_size(src, src_abs), self.disk_usage(dst)
            )
        else:
            info, _ = await looked_up
            # Measured only where the copy will really read.
            src_abs = self._approved_source(src, src_path, info, source_allowed)
            needed, used = await _in_order(self._source_size(src, src_abs), self.disk_usage(dst))
        is_dir = info.get("kind") == "dir"
        dst_is_folder = dst_path.endswith("/") or dst_abs == dst_home
        src_arg, dst_arg, mkdir = copy.targets(src_abs, is_dir, dst_abs, dst_is_folder)
        quota = dst.quota.disk_mb * MIB
        if used + needed > quota:
            raise QuotaExceeded(used, quota, needed)
        flags = copy.rsync_flags(
            overwrite_newer=overwrite_newer,
            delete_missing=delete_missing,
            backup=backup,
            exclude=exclude,
            timeout_s=timeout_s,
        )
        plan = copy.CopyPlan(
            src_socket=await self._ensure_running(src),
            dst_socket=await self._ensure_running(dst),
            src_arg=src_arg,
            dst_arg=dst_arg,
            mkdir=mkdir,
            flags=flags,
            pinned=source_allowed is not None,
            # rsync's patterns are rsync's to match; every other option is moot in a
            # target that does not exist yet.
            streamable=not exclude,
            expected_bytes=needed,
            io_timeout_s=timeout_s or None,
        )
        await asyncio.to_thread(copy.run, plan, on_progress=on_progress)

    async def _source_size(self, spec: ProjectSpec, path: str) -> int:
        reply, _ = await self._call(spec, {"op": "du", "path": path})
        return _integer(reply, "bytes")

    def _approved_source(
        self,
        spec: ProjectSpec,
        src_path: str,
        info: dict[str, Any],
        allowed: Callable[[str], bool],
    ) -> str:
        """Where the source really is, once `allowed` approves it: the copy then reads
        from there, pinned, rather than from a path whose links could change."""
        home = self._real_home(spec.project_id)
        real = relative_to_home(info.get("real_path"), home)
        if real is None or not allowed(real):
            raise PathRefused(f"path '{src_path}' leads where it may not be copied from")
        return f"{home}/{real}" if real else home


# Payloads at least this large go to an agent on this machine as a memory file passed with
# the request: the agent's kernel copies it into place, instead of the hub's event loop
# feeding the connection a socket buffer at a time.
FILE_PAYLOAD_BYTES = 64 * 1024


async def _send(
    endpoint: channel.Endpoint,
    header: dict[str, Any],
    payload: bytes | None,
    wait_s: float,
    max_payload: int,
    file_device: int | None = None,
    kept: tuple[PayloadFiles, str] | None = None,
    on_event: channel.EventHandler | None = None,
) -> tuple[dict[str, Any], bytes]:
    """`kept`: where the memory files of a project's writes are kept between its writes,
    and the project (None: a new file each time)."""
    if (
        payload is not None
        and len(payload) >= FILE_PAYLOAD_BYTES
        and header.get("op") == "write"
        and isinstance(endpoint, str)
    ):
        file = kept[0].take(kept[1], payload) if kept else PayloadFile.holding(payload)
        try:
            reply, data = await channel.call_passing(
                endpoint,
                {**header, "op": "write_fd"},
                file.readable,
                wait_s=wait_s,
                max_payload=max_payload,
            )
        except BaseException:
            file.close()
            raise
        if kept:
            kept[0].give_back(kept[1], file)
        else:
            file.close()
        if not unknown_operation(reply):
            return reply, data
        # An agent started before this hub knew memory files: send the bytes inline.
    return await channel.call(
        endpoint,
        header,
        payload,
        wait_s=wait_s,
        max_payload=max_payload,
        file_device=file_device,
        on_event=on_event,
    )


class _ExecEvents:
    """Takes a watched exec's news from the agent, which is not trusted: what it says goes
    through the watch's bounds, and all its news together may take no more than an honest
    agent's could (every character kept, JSON-escaped, plus a little per event for as long
    as the exec may run), or the exec is given up."""

    def __init__(self, watch: ExecWatch, timeout_s: float) -> None:
        self.watch = watch
        self.left = 2 * 12 * (watch.limit + 1) + (1 << 20) + int(4096 * timeout_s)

    def __call__(self, event: dict[str, Any], size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise RuntimeFailure("the project sent too much while the command ran")
        kind = event.get("event")
        if kind == "output":
            out, err = event.get("stdout"), event.get("stderr")
            self.watch.add_output(
                out if isinstance(out, str) else "", err if isinstance(err, str) else ""
            )
        elif kind == "started":
            self.watch.begin(event.get("pid"))
        elif kind == "stats":
            self.watch.add_sample(event)


async def _in_order(*steps: Awaitable[Any]) -> Any:
    """Run `steps` side by side; their results, or the first failure in their order (not
    in time)."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def _spawn(argv: list[str], fds: tuple[int, ...], cwd: Path) -> subprocess.Popen[bytes]:
    """Launch the sandbox, passing it `fds`. A plain Popen (a quick fork/exec) rather than
    asyncio's, whose child watcher would keep a thread per running project; we reap
    through a pidfd."""
    return subprocess.Popen(
        argv,
        pass_fds=fds,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        cwd=cwd,
        # The server keeps its own files private (umask 077); projects get the usual 022.
        umask=0o022,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
    )


def _reap(pidfd: int, proc: subprocess.Popen[bytes] | None) -> None:
    """Reap a sandbox that has ended, if it is this hub's child: a Popen's through the Popen
    (whose status is its own), any other through its pidfd."""
    if proc is not None:
        proc.poll()
    else:
        reaping.reap(pidfd)


def _exit_code(proc: subprocess.Popen[bytes]) -> int | None:
    """The code of a sandbox whose pipes ended (it is exiting), or None if it lingers."""
    try:
        return proc.wait(timeout=STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        return None


def _check_id(project_id: str) -> None:
    if not _PROJECT_ID.fullmatch(project_id) or ".." in project_id:
        raise ValueError(f"invalid project id {project_id!r}")


def _check_spec(spec: ProjectSpec, sandboxed: bool) -> None:
    _check_id(spec.project_id)
    if sandboxed and spec.uid <= 0:
        raise ValueError("a sandboxed project needs a non-root uid")


def _text(reply: dict[str, Any], key: str) -> str:
    value = reply.get(key)
    return value if isinstance(value, str) else ""


def _integer(reply: dict[str, Any], key: str) -> int:
    value = reply.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RuntimeFailure(f"the project sent a malformed reply (no {key})")
    return value
