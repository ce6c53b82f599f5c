"""Quotas enforced on a running project: processes, memory (cgroups, or rlimits where
cgroups are not used), and the host staying healthy while a project misbehaves."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from calchub.runtime import ExecRequest, LocalRuntime, Quota
from tests.runtime.conftest import Projects, Shell, host_exists, processes_of

FORK_BOMB = ":(){ :|:& };:"


def host_can_spawn() -> bool:
    return subprocess.run(["true"], check=False).returncode == 0


def _bash(script: str) -> ExecRequest:
    return ExecRequest(script, [], "", 20, None, True)


ALLOCATE = 'python3 -c \'b = b"x" * ({mb} * 1024 * 1024); print("allocated")\''


async def test_fork_bomb_is_contained(runtime: LocalRuntime, projects: Projects, sh: Shell) -> None:
    spec = projects.spec(runtime, Quota(processes=64))
    await runtime.start(spec)
    started = time.monotonic()
    result = await sh(spec, FORK_BOMB, timeout=3)
    assert result.timed_out or result.exit_code != 0
    assert time.monotonic() - started < 30
    assert len(processes_of(spec.uid)) <= 64, processes_of(spec.uid)
    # The host can still start processes, and so can the project once the bomb is gone.
    assert host_can_spawn()
    assert (await sh(spec, "echo alive")).stdout == "alive\n"


async def test_memory_limit(runtime: LocalRuntime, projects: Projects, sh: Shell) -> None:
    spec = projects.spec(runtime, Quota(memory_mb=200))
    within = await sh(spec, ALLOCATE.format(mb=50))
    assert within.stdout == "allocated\n", within.stderr
    over = await sh(spec, ALLOCATE.format(mb=400))
    assert over.exit_code != 0
    assert "allocated" not in over.stdout
    assert (await sh(spec, "echo alive")).stdout == "alive\n"


async def test_rlimits_when_cgroups_are_not_used(
    roots: tuple[Path, Path], projects: Projects
) -> None:
    rt = LocalRuntime(*roots, use_cgroups=False)
    spec = projects.spec(rt, Quota(memory_mb=200, processes=40))
    try:
        result = await rt.exec(spec, _bash("ulimit -v; ulimit -u"))
        assert result.stdout.split() == [str(200 * 1024), "40"]
        over = await rt.exec(spec, _bash(ALLOCATE.format(mb=400)))
        assert over.exit_code != 0 and "MemoryError" in over.stderr
        assert not host_exists(f"/sys/fs/cgroup/memory/calchub/{spec.project_id}")
    finally:
        await rt.stop(spec.project_id)
        await rt.close()


async def test_a_single_file_cannot_exceed_the_disk_quota(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    spec = projects.spec(runtime, Quota(disk_mb=2))
    result = await sh(spec, "head -c 3000000 /dev/zero > big; echo $?; stat -c %s big")
    # The writer gets SIGXFSZ (128 + 25) at the limit, as with any file size rlimit.
    assert result.stdout.split() == ["153", str(2 * 1024 * 1024)]
