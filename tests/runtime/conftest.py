"""Fixtures for the runtime tests: real sandboxes, real processes.

These tests need root and bubblewrap. Without them the whole folder is skipped, with the
reason, except when CI=true: there a missing sandbox is a failure, not a skip."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from calchub.runtime import ExecRequest, ExecResult, LocalRuntime, ProjectSpec, Quota, procfs
from tests.runtime.slurm_cluster import SlurmCluster, missing_tools
from tests.scratch import scratch_folder

FIRST_UID, LAST_UID = 61000, 64999
UID_LOCKS = Path("/tmp/calchub-test-uids")


class UidPool:
    """Project uids from a test range. Test sessions may run side by side on one machine
    (xdist workers, other checkouts): each uid is claimed with an flock held for the whole
    session, so no two sessions ever share one."""

    def __init__(self) -> None:
        self._held: list[int] = []
        self._next = FIRST_UID

    def take(self) -> int:
        UID_LOCKS.mkdir(mode=0o700, exist_ok=True)
        while self._next <= LAST_UID:
            uid, self._next = self._next, self._next + 1
            fd = os.open(UID_LOCKS / str(uid), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if not processes_of(uid):
                self._held.append(fd)
                return uid
            os.close(fd)
        raise RuntimeError("no free test uid left")


_uids = UidPool()


def sandbox_problem() -> str | None:
    if os.geteuid() != 0:
        return "runtime tests need root (each project runs as its own uid)"
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (apt-get install -y bubblewrap)"
    if shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    return None


@pytest.fixture(scope="session", autouse=True)
def _require_sandbox() -> None:
    problem = sandbox_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and sandboxing is unavailable: {problem}")
    pytest.skip(problem)


@pytest.fixture(scope="session")
def roots() -> tuple[Path, Path]:
    # Removed, sandboxes stopped, at the end of the session (tests/scratch.py).
    return scratch_folder("p"), scratch_folder("r")


def cgroups_of(project_id: str) -> list[Path]:
    return list(Path("/sys/fs/cgroup").glob(f"*/calchub/{project_id}"))


class Projects:
    """Creates project specs with fresh ids and uids, and stops them all at the end."""

    def __init__(self) -> None:
        self.started: list[tuple[LocalRuntime, str]] = []
        self.uids: list[int] = []

    def spec(self, rt: LocalRuntime, quota: Quota | None = None) -> ProjectSpec:
        spec = ProjectSpec(str(uuid.uuid4()), _uids.take(), quota or Quota())
        self.started.append((rt, spec.project_id))
        # A Slurm project runs on a node, whose orphans are the node's to reap: here the
        # test cluster runs below this process, which, a subreaper, inherits them.
        if type(rt) is LocalRuntime:
            self.uids.append(spec.uid)
        return spec

    async def stop_all(self) -> None:
        for rt, project_id in self.started:
            await rt.stop(project_id)
        # A stopped project leaves no cgroup behind, and no process unreaped.
        left = [group for _, project_id in self.started for group in cgroups_of(project_id)]
        assert not left, f"cgroups left after stop: {left}"
        for uid in self.uids:
            await no_zombies_of(uid)


@pytest_asyncio.fixture(scope="session")
async def runtime(roots: tuple[Path, Path]) -> AsyncIterator[LocalRuntime]:
    rt = LocalRuntime(*roots)
    yield rt
    await rt.close()


@pytest_asyncio.fixture
async def projects() -> AsyncIterator[Projects]:
    made = Projects()
    yield made
    await made.stop_all()


@pytest_asyncio.fixture
async def project(runtime: LocalRuntime, projects: Projects) -> ProjectSpec:
    spec = projects.spec(runtime)
    await runtime.start(spec)
    return spec


Shell = Callable[..., Awaitable[ExecResult]]


@pytest.fixture
def sh(runtime: LocalRuntime) -> Shell:
    """Run a bash script in a project."""

    def run(
        spec: ProjectSpec,
        script: str,
        timeout: float = 20.0,
        path: str = "",
        max_output: int | None = None,
    ) -> Awaitable[ExecResult]:
        return runtime.exec(spec, ExecRequest(script, [], path, timeout, max_output, True))

    return run


def host_exists(path: str | Path) -> bool:
    """Whether `path` exists on the host (outside every sandbox)."""
    return os.path.lexists(path)


def processes_of(uid: int) -> list[str]:
    """Command lines of the host's live processes running as `uid`."""
    return list(live_processes_of(uid).values())


def live_processes_of(uid: int) -> dict[int, str]:
    """The host's live processes running as `uid`: their command lines by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "").strip().startswith("Z"):
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            found[int(entry.name)] = cmdline
    return found


def zombies_of(uid: int, parent: int | None = None) -> list[int]:
    """The zombies that ran as `uid` and are children of `parent` (this process, the hub
    of the runtime tests, by default): ended, and not reaped by it."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        ours = int(fields.get("PPid", "-1")) == parent
        zombie = fields.get("State", "").strip().startswith("Z")
        if ours and zombie and int(fields.get("Uid", "-1").split()[0]) == uid:
            found.append(int(entry.name))
    return found


async def no_zombies_of(uid: int, wait_s: float = 5.0) -> None:
    """Wait until every ended process of `uid` that is this process's child has been reaped
    (by its exit watcher, say); fail if some is still a zombie after `wait_s`."""
    deadline = time.monotonic() + wait_s
    while found := zombies_of(uid):
        if time.monotonic() > deadline:
            names = [_read(Path(f"/proc/{pid}/comm")).strip() for pid in found]
            raise AssertionError(f"unreaped processes of uid {uid}: {found} {names}")
        await asyncio.sleep(0.05)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def outside_of(runtime: LocalRuntime, project_id: str, uid: int) -> list[str]:
    """Command lines of the live processes of `uid` that are not below the project's
    recorded process (as state.json names it): what the project costs beside its tree."""
    state = json.loads((runtime.runtime_root / project_id / "state.json").read_text())
    root = int(state["pid"])
    outside = []
    for pid, command in live_processes_of(uid).items():
        ancestor: int | None = pid
        while ancestor not in (None, 0, 1, root):
            ancestor = procfs.parent(ancestor)
        if ancestor != root and procfs.parent(pid) is not None:  # gone meanwhile: moot
            outside.append(command)
    return outside


@pytest.fixture(scope="session")
def cluster() -> Iterator[SlurmCluster]:
    """A Slurm cluster on this machine (tests/runtime/slurm_cluster.py), stopped and removed
    at the end of the session, failed or not. Without Slurm and munge installed the tests
    that use it are skipped, except under CI=true."""
    if missing := missing_tools():
        problem = f"Slurm tests need {', '.join(missing)} (apt-get install slurm-wlm munge)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    made = SlurmCluster(scratch_folder("c"))
    try:
        made.start()
        yield made
    finally:
        made.stop()
