"""A project that fills its memory, or its /tmp (which is memory too), loses its own
commands, never its agent: the next command runs, in the same sandbox."""

from __future__ import annotations

import asyncio

from calchub.runtime import LocalRuntime, Quota
from tests.runtime.conftest import Projects, Shell

MEMORY_MB = 256
HOG = "python3 -c 'b = bytearray(2 * {mb} * 1024 * 1024); print(len(b))'"


async def test_filling_tmp_ends_in_enospc_and_commands_still_run(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    spec = projects.spec(runtime, Quota(memory_mb=MEMORY_MB))
    await runtime.start(spec)
    before = (await runtime.status(spec.project_id)).pid
    filled = await sh(spec, "head -c 1G /dev/zero > /tmp/big; echo $?; du -m /tmp/big | cut -f1")
    code, size = filled.stdout.split()
    assert code != "0"
    assert "No space left on device" in filled.stderr, filled.stderr
    assert int(size) <= MEMORY_MB // 2
    for _ in range(5):
        again = await sh(spec, "echo ok")
        assert (again.exit_code, again.stdout) == (0, "ok\n"), again.stderr
    assert (await runtime.status(spec.project_id)).pid == before


async def test_memory_hogs_are_killed_not_the_agent(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    spec = projects.spec(runtime, Quota(memory_mb=MEMORY_MB))
    await runtime.start(spec)
    before = (await runtime.status(spec.project_id)).pid
    # Many at once, each wanting twice the project's memory.
    hogs = await asyncio.gather(*(sh(spec, HOG.format(mb=MEMORY_MB)) for _ in range(16)))
    assert all(h.exit_code != 0 for h in hogs), [h.stdout for h in hogs]
    for _ in range(5):
        again = await sh(spec, "echo ok")
        assert (again.exit_code, again.stdout) == (0, "ok\n"), again.stderr
    assert (await runtime.status(spec.project_id)).pid == before
    scores = await sh(spec, "cat /proc/1/oom_score_adj /proc/self/oom_score_adj")
    agent, command = scores.stdout.split()
    # Below zero where the server may lower scores (CAP_SYS_RESOURCE), else zero.
    assert int(agent) <= 0 < int(command)
