"""Asynchronous exec jobs: a command started now and polled later (v2 `exec` with
`async_call`, then `async_get`). Jobs live in the database, so whichever hub a poll reaches
can answer it; the hub that started a job runs it, and writes to its row what the command
did so far (output, pid, resource samples) at most every PROGRESS_S while it runs, so a
poll sees the output grow. Per project at most MAX_RUNNING run at once and MAX_KEPT are
kept, each for KEEP_FOR, with at most MAX_OUTPUT characters per stream. A job whose hub
stopped before it finished is reported lost after its deadline."""

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
from calchub.projects.execution import Command, limited, run_command
from calchub.runtime import ExecWatch

log = logging.getLogger("calchub.projects")

MAX_RUNNING = 10
MAX_KEPT = 100
KEEP_FOR = timedelta(hours=1)
MAX_OUTPUT = 1_048_576
# How long a poll with `async_await` waits for the end, and how often it looks.
AWAIT_MAX_S = 60.0
POLL_S = 0.2
# How often at most a running job's row gets what its command did since.
PROGRESS_S = 1.0
# How long the start waits for the command to start (so that its reply has the pid); a
# project that takes longer to start gets a reply without one.
START_WAIT_S = 30.0
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
    site = await hub.site.all()
    limit = min(cmd.max_output or MAX_OUTPUT, MAX_OUTPUT, int(site["exec_max_output"]))
    cmd = replace(cmd, max_output=limit)
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
    watch = ExecWatch(limit)
    ended = asyncio.Event()
    hub.spawn(_run(hub, actor, project.project_id, job_id, cmd, watch, ended), f"exec job {job_id}")
    # As CoCalc, the reply comes once the command started, with its pid (none: it could not
    # start, or the runtime cannot tell).
    waits = [asyncio.ensure_future(watch.started.wait()), asyncio.ensure_future(ended.wait())]
    try:
        await asyncio.wait(waits, timeout=START_WAIT_S, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    answer: dict[str, Any] = {
        "type": "async",
        "stdout": "",
        "stderr": "",
        "exit_code": 0,
        "start": _ms(now),
        "job_id": job_id,
        "status": "running",
    }
    if watch.pid is not None:
        answer["pid"] = watch.pid
        # At once, so that a poll that follows has it too.
        async with hub.engine.begin() as conn:
            await conn.execute(
                update(exec_jobs).where(exec_jobs.c.job_id == job_id).values(pid=watch.pid)
            )
    return answer


async def _run(
    hub: Hub,
    actor: Actor,
    project_id: str,
    job_id: str,
    cmd: Command,
    watch: ExecWatch,
    ended: asyncio.Event,
) -> None:
    try:
        await _follow(hub, actor, project_id, job_id, cmd, watch)
    finally:
        ended.set()


async def _follow(
    hub: Hub, actor: Actor, project_id: str, job_id: str, cmd: Command, watch: ExecWatch
) -> None:
    """Run the job, writing what its command did so far to its row now and then, and its
    outcome at the end."""
    values: dict[str, Any]
    running = asyncio.ensure_future(
        run_command(hub, actor, project_id, replace(cmd, err_on_exit=False), watch)
    )
    written = 0
    try:
        while not (await asyncio.wait({running}, timeout=PROGRESS_S))[0]:
            if watch.changes != written:
                written = watch.changes
                await _progress(hub, job_id, watch)
    except BaseException:
        running.cancel()
        raise
    try:
        output = running.result()
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
    values.update(_watched(watch))
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(exec_jobs)
            .where(exec_jobs.c.job_id == job_id)
            .values(**values, finished=utcnow())
        )


def _watched(watch: ExecWatch) -> dict[str, Any]:
    return {"pid": watch.pid, "stats": list(watch.samples)}


async def _progress(hub: Hub, job_id: str, watch: ExecWatch) -> None:
    """Write what the command did so far; a failure is only logged (the job goes on)."""
    values = {
        "stdout": limited(watch.stdout(), watch.limit),
        "stderr": limited(watch.stderr(), watch.limit),
        **_watched(watch),
    }
    try:
        async with hub.engine.begin() as conn:
            await conn.execute(
                update(exec_jobs)
                .where(exec_jobs.c.job_id == job_id, exec_jobs.c.status == "running")
                .values(**values)
            )
    except Exception:
        log.exception("exec job %s: could not record its progress", job_id)


async def _load(hub: Hub, job_id: str) -> Any:
    async with hub.engine.connect() as conn:
        return (await conn.execute(select(exec_jobs).where(exec_jobs.c.job_id == job_id))).first()


async def get_job(
    hub: Hub,
    actor: Actor,
    job_id: str,
    *,
    wait: bool = False,
    stats: bool = False,
    project_id: str | None = None,
) -> dict[str, Any]:
    """The job's state; with `wait`, once it ended (or after AWAIT_MAX_S). With
    `project_id` (a project's own API), only that project's jobs are found."""
    if not is_valid_uuid(job_id):
        raise _missing(job_id)
    row = await _load(hub, job_id.lower())
    if row is None or (project_id is not None and row.project_id != project_id.lower()):
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
    if row.pid is not None:
        answer["pid"] = row.pid
    if stats:
        answer["stats"] = list(row.stats or [])
    return answer
