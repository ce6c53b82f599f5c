"""Starting, stopping, restarting and finding running projects."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from calchub.runtime import (
    ExecRequest,
    LocalRuntime,
    ProjectSpec,
    Quota,
    RuntimeFailure,
    SandboxUnavailable,
    procfs,
    sandbox,
)
from calchub.runtime.base import MIB
from tests.runtime.conftest import (
    Projects,
    Shell,
    live_processes_of,
    no_zombies_of,
    outside_of,
    processes_of,
    zombies_of,
)

CGROUP = Path("/sys/fs/cgroup")


def cgroup_dirs(project_id: str) -> list[Path]:
    return [CGROUP / c / "calchub" / project_id for c in ("memory", "pids", "cpu")]


async def test_sandboxing_is_available(runtime: LocalRuntime) -> None:
    check = runtime.check_available()
    assert check.available, check.reason


async def test_start_status_stop(runtime: LocalRuntime, projects: Projects) -> None:
    spec = projects.spec(runtime)
    assert not (await runtime.status(spec.project_id)).running
    await runtime.start(spec)
    status = await runtime.status(spec.project_id)
    assert status.running
    assert status.pid is not None and status.pid > 0
    assert status.memory_bytes is not None and status.memory_bytes > 0
    assert status.started_at is not None
    await runtime.start(spec)  # already running: nothing changes
    assert (await runtime.status(spec.project_id)).pid == status.pid
    assert processes_of(spec.uid)
    # The project's processes are the agent's tree, whose top, the sandbox's PID 1, is
    # this hub's child: bubblewrap's monitor, which only waited for it, has gone.
    assert procfs.parent(status.pid) == os.getpid()
    assert "agent/__main__.py serve" in live_processes_of(spec.uid)[status.pid]
    assert outside_of(runtime, spec.project_id, spec.uid) == []

    await runtime.stop(spec.project_id)
    assert not (await runtime.status(spec.project_id)).running
    assert processes_of(spec.uid) == []
    assert zombies_of(spec.uid) == []  # reaped by the stop itself
    assert not any(d.exists() for d in cgroup_dirs(spec.project_id))
    # Nothing of it is left in the runtime folder.
    assert not (runtime.runtime_root / spec.project_id).exists()
    assert not (runtime.runtime_root / ".homes" / spec.project_id).exists()
    await runtime.stop(spec.project_id)  # stopping a stopped project is fine
    assert not (runtime.runtime_root / spec.project_id).exists()


async def test_restart_gives_a_new_sandbox(runtime: LocalRuntime, project: ProjectSpec) -> None:
    before = await runtime.status(project.project_id)
    await runtime.restart(project)
    after = await runtime.status(project.project_id)
    assert after.running and after.pid != before.pid


async def test_home_belongs_to_the_project_uid(runtime: LocalRuntime, project: ProjectSpec) -> None:
    home = runtime.projects_root / project.project_id
    st = home.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (project.uid, project.uid, 0o700)


async def test_operations_start_a_stopped_project(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    spec = projects.spec(runtime)
    result = await sh(spec, "echo started")
    assert result.stdout == "started\n"
    assert (await runtime.status(spec.project_id)).running


async def test_another_hub_process_finds_the_running_project(
    runtime: LocalRuntime, project: ProjectSpec, roots: tuple[Path, Path]
) -> None:
    other = LocalRuntime(*roots)
    try:
        mine = await runtime.status(project.project_id)
        theirs = await other.status(project.project_id)
        assert theirs.running and theirs.pid == mine.pid
        result = await other.exec(
            project, ExecRequest("echo", ["from", "other"], "", 10, None, False)
        )
        assert result.stdout == "from other\n"
        assert (await runtime.status(project.project_id)).pid == mine.pid  # not restarted
        await other.stop(project.project_id)
        assert not (await runtime.status(project.project_id)).running
    finally:
        await other.close()


async def test_cgroup_limits_follow_the_quota(runtime: LocalRuntime, projects: Projects) -> None:
    spec = projects.spec(runtime, Quota(memory_mb=300, cores=0.5, processes=100))
    await runtime.start(spec)
    memory, pids, cpu = cgroup_dirs(spec.project_id)
    assert int((memory / "memory.limit_in_bytes").read_text()) // MIB == 300
    assert (pids / "pids.max").read_text().strip() == "100"
    quota = int((cpu / "cpu.cfs_quota_us").read_text())
    assert quota / int((cpu / "cpu.cfs_period_us").read_text()) == 0.5
    status = await runtime.status(spec.project_id)
    assert status.pid is not None
    members = {int(p) for p in (pids / "cgroup.procs").read_text().split()}
    assert status.pid in members


async def test_idle_project_stops_itself(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    spec = projects.spec(runtime, Quota(idle_timeout_s=2))
    # A running exec is activity: the project must not stop under it.
    result = await sh(spec, "sleep 3; echo done")
    assert result.stdout == "done\n"
    assert (await runtime.status(spec.project_id)).running
    deadline = time.monotonic() + 15
    while (await runtime.status(spec.project_id)).running:
        assert time.monotonic() < deadline, "the idle project kept running"
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)  # the exit watcher cleans up
    assert processes_of(spec.uid) == []
    await no_zombies_of(spec.uid)  # and reaps the sandbox
    assert not any(d.exists() for d in cgroup_dirs(spec.project_id))


async def test_touch_postpones_the_idle_stop(runtime: LocalRuntime, projects: Projects) -> None:
    spec = projects.spec(runtime, Quota(idle_timeout_s=2))
    await runtime.start(spec)
    for _ in range(6):
        await asyncio.sleep(0.6)
        await runtime.touch(spec.project_id)
    assert (await runtime.status(spec.project_id)).running


async def test_a_killed_sandbox_is_noticed_and_restarted(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    status = await runtime.status(project.project_id)
    assert status.pid is not None
    os.kill(status.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (await runtime.status(project.project_id)).running:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await no_zombies_of(project.uid)
    result = await sh(project, "echo back")
    assert result.stdout == "back\n"


async def test_a_sandbox_that_died_unnoticed_is_restarted_by_the_next_call(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    """A call asks the watched sandbox's pidfd whether it still runs: one that ended before
    the event loop ran its exit watcher is started again, not called."""
    await runtime.write_file(project, "kept.txt", b"kept")
    status = await runtime.status(project.project_id)
    assert status.pid is not None
    os.kill(status.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    # Waited for without letting the event loop run, so its exit watcher has not run yet.
    while procfs.is_alive(status.pid, procfs.start_time(status.pid) or 0):
        assert time.monotonic() < deadline
        time.sleep(0.01)  # noqa: ASYNC251
    assert await runtime.read_file(project, "kept.txt", 100) == b"kept"
    assert (await runtime.status(project.project_id)).pid != status.pid
    assert (await sh(project, "echo back")).stdout == "back\n"


def agent_replaced(runtime: LocalRuntime, script: str) -> Callable[..., list[str]]:
    """The sandbox's command line with a shell script where the agent would run."""
    real = runtime._agent_command

    def command(spec: ProjectSpec, home: Path, config: dict[str, Any]) -> list[str]:
        argv = real(spec, home, config)
        agent = len(argv) - 1 - argv[::-1].index(sandbox.SYSTEM_PYTHON)
        return [*argv[:agent], "/bin/sh", "-c", script]

    return command


async def test_a_sandbox_that_ends_during_start_says_why(
    runtime: LocalRuntime, projects: Projects, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = projects.spec(runtime)
    script = "echo the agent could not start >&2; exit 3"
    monkeypatch.setattr(runtime, "_agent_command", agent_replaced(runtime, script))
    with pytest.raises(SandboxUnavailable, match="the agent could not start"):
        await runtime.start(spec)
    assert not (await runtime.status(spec.project_id)).running
    assert processes_of(spec.uid) == []
    assert zombies_of(spec.uid) == []
    assert not any(d.exists() for d in cgroup_dirs(spec.project_id))


async def test_a_sandbox_that_never_gets_ready_is_ended(
    runtime: LocalRuntime, projects: Projects, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = projects.spec(runtime)
    monkeypatch.setattr(runtime, "_agent_command", agent_replaced(runtime, "sleep 60"))
    monkeypatch.setattr(runtime, "_start_timeout_s", 0.5)
    with pytest.raises(RuntimeFailure, match="did not start within"):
        await runtime.start(spec)
    assert processes_of(spec.uid) == []
    assert zombies_of(spec.uid) == []
    assert not any(d.exists() for d in cgroup_dirs(spec.project_id))


async def test_runtime_folders_project_uids_cannot_reach_are_reported(tmp_path: Path) -> None:
    # The runtime root is where sandboxes find their homes and the agent: it must be
    # reachable. (The projects root need not be: tests/runtime/test_private_roots.py.)
    hidden = Path(tempfile.mkdtemp(prefix="/tmp/chx"))
    try:
        check = LocalRuntime(tmp_path / "projects", hidden / "run").check_available()
    finally:
        shutil.rmtree(hidden)
    assert not check.available
    assert "not traversable" in check.reason


async def test_start_refuses_when_sandboxing_is_unavailable(tmp_path: Path) -> None:
    hidden = Path(tempfile.mkdtemp(prefix="/tmp/chx"))
    rt = LocalRuntime(tmp_path / "projects", hidden / "run")
    try:
        with pytest.raises(SandboxUnavailable, match="not traversable"):
            await rt.start(ProjectSpec("never-started", 64999, Quota()))
    finally:
        await rt.close()
        shutil.rmtree(hidden)


def test_overlong_runtime_root_is_refused() -> None:
    with pytest.raises(ValueError, match="too long"):
        LocalRuntime(Path("/tmp/p"), Path("/tmp/" + "x" * 80))


async def test_invalid_specs_are_refused(runtime: LocalRuntime) -> None:
    with pytest.raises(ValueError):
        await runtime.start(ProjectSpec("../etc", 61999, Quota()))
    with pytest.raises(ValueError):
        await runtime.start(ProjectSpec("ok-id", 0, Quota()))
