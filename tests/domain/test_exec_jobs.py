"""Asynchronous exec jobs on each runtime: the start answers once the command started, with
its pid, and a poll sees its output grow while it runs, within its output limit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from calchub.hub import Hub
from calchub.projects import exec_jobs
from calchub.projects.execution import Command, run_command
from tests.domain.conftest import Person

WAIT = "while [ ! -e {name} ]; do sleep 0.02; done"


async def _poll(hub: Hub, person: Person, job_id: str, done: Callable[[Any], bool]) -> Any:
    async with asyncio.timeout(30):
        while True:
            got = await exec_jobs.get_job(hub, person.actor, job_id)
            if done(got):
                return got
            assert got["status"] == "running", got
            await asyncio.sleep(0.05)


async def test_a_job_shows_its_output_while_it_runs(hub: Hub, owner: Person, project: str) -> None:
    script = f"echo first; {WAIT.format(name='go')}; echo second"
    started = await exec_jobs.start_job(
        hub, owner.actor, project, Command(script, [], bash=True, timeout=60)
    )
    assert isinstance(started["pid"], int) and started["status"] == "running"
    partial = await _poll(hub, owner, started["job_id"], lambda got: got["stdout"] == "first\n")
    assert partial["pid"] == started["pid"]
    await run_command(hub, owner.actor, project, Command("touch go", [], bash=True))
    done = await exec_jobs.get_job(hub, owner.actor, started["job_id"], wait=True)
    assert (done["status"], done["stdout"], done["exit_code"]) == (
        "completed",
        "first\nsecond\n",
        0,
    )


async def test_a_job_keeps_to_its_output_limit_while_it_runs(
    hub: Hub, owner: Person, project: str
) -> None:
    script = f"printf '%020d' 0 >&2; {WAIT.format(name='go')}"
    command = Command(script, [], bash=True, timeout=60, max_output=5)
    started = await exec_jobs.start_job(hub, owner.actor, project, command)
    cut = "00000 (truncated at 5 characters)"
    await _poll(hub, owner, started["job_id"], lambda got: got["stderr"] == cut)
    await run_command(hub, owner.actor, project, Command("touch go", [], bash=True))
    done = await exec_jobs.get_job(hub, owner.actor, started["job_id"], wait=True)
    assert (done["status"], done["stderr"]) == ("completed", cut)
