"""Asynchronous exec jobs: a command started now and polled later (v2 `exec` with
`async_call`, then `async_get`). Jobs live in the database, so whichever hub a poll reaches
can answer it; the hub that started a job runs it. Per project at most MAX_RUNNING run at
once and MAX_KEPT are kept, each for KEEP_FOR, with at most MAX_OUTPUT characters per
stream. A job whose hub stopped before it finished is reported lost after its deadline."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from calchub.actor import Actor
from calchub.db.tables import exec_jobs
from calchub.db.types import utcnow
from calchub.errors import DomainError, LimitExceeded, NotFound
from calchub.hub import Hub
from calchub.ids import is_valid_uuid, new_id
from calchub.projects.access import require_project
from calchub.projects.execution import Command, run_command

log = logging.getLogger("calchub.projects")

MAX_RUNNING = 10
MAX_KEPT = 100
KEEP_FOR = timedelta(hours=1)
MAX_OUTPUT = 1_048_576
# How long a poll with `async_await` waits for the end, and how often it looks.
AWAIT_MAX_S = 60.0
POLL_S = 0.2
# A running job whose hub went away is reported lost this long after its timeout.
SLACK = timedelta(seconds=30)
LOST = "the job was lost: the server that ran it stopped"


def _missing(job_id: str) -> NotFound:
    # CoCalc's words; the same for a job of a project the caller may not use.
    return NotFound(
        "Error executing command 'undefined' with args 'undefined' -- "
        f"Error: Async operation '{job_id}' does not exist."
    )


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


async def start_job(hub: Hub, actor: Actor, project_id: str, cmd: Command) -> dict[str, Any]:
    """Record the job and start it on this hub; its first state."""
    project = await require_project(hub, actor, project_id, write=True)
    cmd = replace(cmd, max_output=min(cmd.max_output or MAX_OUTPUT, MAX_OUTPUT))
    now = actor.now
    job_id = new_id()
    async with hub.engine.begin() as conn:
        j = exec_jobs.c
        await conn.execute(
            delete(exec_jobs).where(j.project_id == project.project_id, j.start < now - KEEP_FOR)
        )
        running = await conn.scalar(
            select(func.count())
            .select_from(exec_jobs)
            .where(j.project_id == project.project_id, j.status == "running", j.deadline > now)
        )
        if int(running or 0) >= MAX_RUNNING:
            raise LimitExceeded(
                f"too many exec jobs running in this project (at most {MAX_RUNNING})"
            )
        await conn.execute(
            insert(exec_jobs).values(
                job_id=job_id,
                project_id=project.project_id,
                command=cmd.command,
                args=list(cmd.args),
                status="running",
                stdout="",
                stderr="",
                exit_code=0,
                start=now,
                deadline=now + timedelta(seconds=cmd.timeout) + SLACK,
            )
        )
        # Keep the newest MAX_KEPT; older finished ones go.
        old = (
            select(j.job_id)
            .where(j.project_id == project.project_id, j.status != "running")
            .order_by(j.start.desc())
            .offset(MAX_KEPT)
        )
        await conn.execute(delete(exec_jobs).where(j.job_id.in_(old.scalar_subquery())))
    hub.spawn(_run(hub, actor, project.project_id, job_id, cmd), f"exec job {job_id}")
    return {
        "type": "async",
        "stdout": "",
        "stderr": "",
        "exit_code": 0,
        "start": _ms(now),
        "job_id": job_id,
        "status": "running",
    }


async def _run(hub: Hub, actor: Actor, project_id: str, job_id: str, cmd: Command) -> None:
    values: dict[str, Any]
    try:
        output = await run_command(hub, actor, project_id, replace(cmd, err_on_exit=False))
    except DomainError as exc:
        values = {"status": "error", "stdout": "", "stderr": exc.message, "exit_code": 1}
    except Exception:
        log.exception("exec job %s failed", job_id)
        values = {"status": "error", "stdout": "", "stderr": "internal error", "exit_code": 1}
    else:
        if output.exit_code != 0 and cmd.err_on_exit:
            # As CoCalc: the error keeps stderr, drops stdout, and reports exit code 1.
            values = {"status": "error", "stdout": "", "stderr": output.stderr, "exit_code": 1}
        else:
            values = {
                "status": "completed",
                "stdout": output.stdout,
                "stderr": output.stderr,
                "exit_code": output.exit_code,
            }
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(exec_jobs)
            .where(exec_jobs.c.job_id == job_id)
            .values(**values, finished=utcnow())
        )


async def _load(hub: Hub, job_id: str) -> Any:
    async with hub.engine.connect() as conn:
        return (await conn.execute(select(exec_jobs).where(exec_jobs.c.job_id == job_id))).first()


async def get_job(
    hub: Hub, actor: Actor, job_id: str, *, wait: bool = False, stats: bool = False
) -> dict[str, Any]:
    """The job's state; with `wait`, once it ended (or after AWAIT_MAX_S)."""
    if not is_valid_uuid(job_id):
        raise _missing(job_id)
    row = await _load(hub, job_id.lower())
    if row is None:
        raise _missing(job_id)
    try:
        await require_project(hub, actor, row.project_id, write=True)
    except DomainError:
        raise _missing(job_id) from None
    began = time.monotonic()
    while wait and row.status == "running" and time.monotonic() - began < AWAIT_MAX_S:
        if utcnow() > row.deadline:
            break
        await asyncio.sleep(POLL_S)
        row = await _load(hub, row.job_id)
        if row is None:
            raise _missing(job_id)
    status, stderr, exit_code = row.status, row.stderr, row.exit_code
    if status == "running" and utcnow() > row.deadline:
        status, stderr, exit_code = "error", LOST, 1
    end = row.finished or utcnow()
    answer: dict[str, Any] = {
        "type": "async",
        "job_id": row.job_id,
        "command": row.command,
        "args": row.args,
        "status": status,
        "stdout": row.stdout,
        "stderr": stderr,
        "exit_code": exit_code,
        "start": _ms(row.start),
        "elapsed_s": (end - row.start).total_seconds(),
    }
    if stats:
        # Resource samples of the job's processes are not collected on this server.
        answer["stats"] = []
    return answer
