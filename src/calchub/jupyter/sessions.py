"""Persistent sessions: a kernel kept for many executes, so that `x = 1` then `x + 1`
works. A session lives in its project's kernel manager: it ends when deleted, after
`jupyter_session_idle_timeout_s` unused, or when the project stops. Any collaborator of
the project may use its sessions, as they may use its files."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from calchub.actor import Actor
from calchub.errors import Invalid
from calchub.hub import Hub
from calchub.jupyter.errors import jupyter_error
from calchub.jupyter.execute import ExecuteCall, check_call, execute_in_project
from calchub.jupyter.projects import running, usable_project
from calchub.runtime import RuntimeFailure
from calchub.runtime import jupyter as kernels


def describe(session: kernels.KernelSession, project_id: str) -> dict[str, Any]:
    created = datetime.fromtimestamp(session.created, UTC)
    return {
        "session_id": session.id,
        "project_id": project_id,
        "kernel": session.kernel,
        "path": session.path,
        "pid": session.pid,
        "created": created.isoformat().replace("+00:00", "Z"),
        "idle_s": round(session.idle_s, 3),
        "idle_timeout_s": session.idle_timeout_s,
    }


async def create_session(
    hub: Hub, actor: Actor, project_id: str, kernel: str, path: str | None = None
) -> dict[str, Any]:
    check_call(ExecuteCall(input="", kernel=kernel, path=path))
    project = await usable_project(hub, actor, project_id)
    idle = float(await hub.site.get_int("jupyter_session_idle_timeout_s"))
    spec = await running(hub, project)
    try:
        session = await kernels.create_session(
            hub.runtime, spec, kernel.strip().lower(), path, max(0.0, idle)
        )
    except RuntimeFailure as exc:
        raise jupyter_error(exc) from None
    return describe(session, project.project_id)


async def list_sessions(hub: Hub, actor: Actor, project_id: str) -> list[dict[str, Any]]:
    project = await usable_project(hub, actor, project_id)
    spec = await running(hub, project)
    try:
        found = await kernels.list_sessions(hub.runtime, spec)
    except RuntimeFailure as exc:
        raise jupyter_error(exc) from None
    return [describe(s, project.project_id) for s in found]


async def delete_session(hub: Hub, actor: Actor, project_id: str, session_id: str) -> bool:
    _check_id(session_id)
    project = await usable_project(hub, actor, project_id)
    spec = await running(hub, project)
    try:
        return await kernels.delete_session(hub.runtime, spec, session_id)
    except RuntimeFailure as exc:
        raise jupyter_error(exc) from None


async def execute_in_session(
    hub: Hub,
    actor: Actor,
    project_id: str,
    session_id: str,
    input: str,
    history: list[str] | None = None,
    timeout_s: float | None = None,
) -> list[dict[str, Any]]:
    _check_id(session_id)
    call = ExecuteCall(
        input=input,
        kernel="",
        history=history,
        project_id=project_id,
        timeout_s=timeout_s,
        session=session_id,
    )
    return await execute_in_project(hub, actor, call)


def _check_id(session_id: Any) -> None:
    if not isinstance(session_id, str) or not 0 < len(session_id) <= 100:
        raise Invalid("session_id must be a session id")
