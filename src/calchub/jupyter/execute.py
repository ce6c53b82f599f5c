"""Executing code: the hub's paths (with the result cache and, without a project, the
global pool) and the project API's (no cache), in a fresh pool kernel or a session."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from calchub.actor import Actor
from calchub.errors import Invalid
from calchub.hub import Hub
from calchub.jupyter import cache, global_pool
from calchub.jupyter.errors import jupyter_error
from calchub.jupyter.projects import running, usable_project
from calchub.jupyter.settings import (
    HUB_LIMITS,
    PROJECT_LIMITS,
    SESSION_LIMITS,
    pool_settings,
    within,
)
from calchub.projects.store import ProjectRow
from calchub.runtime import RuntimeFailure
from calchub.runtime import jupyter as kernels

MAX_CODE_CHARS = 1_000_000
MAX_HISTORY_CELLS = 10_000
MAX_KERNEL_NAME = 200


@dataclass(frozen=True)
class ExecuteCall:
    """One execute as a caller asks for it. `history` runs silently before `input`;
    `timeout_s` cuts the limits down; `no_cache` runs even when a result is cached;
    `session` runs in that persistent session (never cached)."""

    input: str
    kernel: str
    history: list[str] | None = None
    project_id: str | None = None
    path: str | None = None
    timeout_s: float | None = None
    no_cache: bool = False
    session: str | None = None


@dataclass(frozen=True)
class ExecuteOutcome:
    """The outputs, when they were made, and the cache entry's id on a cache hit."""

    output: list[dict[str, Any]]
    created: datetime
    cache_id: int | None = None


async def execute(hub: Hub, actor: Actor, call: ExecuteCall) -> ExecuteOutcome:
    """The hub's jupyter.execute and REST jupyter/execute."""
    check_call(call)
    if call.project_id is None and call.session is not None:
        raise Invalid("a session needs its project_id")
    if call.project_id is None:
        project = await global_pool.pool_project(hub, actor)
    else:
        project = await usable_project(hub, actor, call.project_id)
    if call.session is not None:
        output = await _run(hub, project, call, SESSION_LIMITS)
        return ExecuteOutcome(output, actor.now)
    key = cache.cache_key(call.history, call.input, call.kernel, call.project_id, call.path)
    if not call.no_cache and (hit := await cache.lookup(hub.engine, key, actor.now)):
        return ExecuteOutcome(hit.output, hit.created, hit.id)
    if call.project_id is None:
        await global_pool.check_quota(hub, actor)
    limits = HUB_LIMITS if call.project_id is not None else global_pool.LIMITS
    began = time.monotonic()
    result = await _run_fully(hub, project, call, limits)
    await global_pool.log_run(hub, actor, call, key, time.monotonic() - began)
    if not result.timed_out:
        await cache.store(hub.engine, key, result.output, actor.now)
    return ExecuteOutcome(result.output, actor.now)


async def cached(hub: Hub, key: str, now: datetime) -> ExecuteOutcome | None:
    """A result looked up by its cache key alone (CoCalc's `hash` argument)."""
    if not isinstance(key, str) or len(key) != 40:
        return None
    hit = await cache.lookup(hub.engine, key.lower(), now)
    return None if hit is None else ExecuteOutcome(hit.output, hit.created, hit.id)


async def execute_in_project(hub: Hub, actor: Actor, call: ExecuteCall) -> list[dict[str, Any]]:
    """The project API's system.jupyterExecute: no cache, the project's own limits."""
    check_call(call)
    if call.project_id is None:
        raise Invalid("project_id must be given")
    project = await usable_project(hub, actor, call.project_id)
    limits = SESSION_LIMITS if call.session is not None else PROJECT_LIMITS
    return await _run(hub, project, call, limits)


async def _run(
    hub: Hub, project: ProjectRow, call: ExecuteCall, limits: kernels.ExecuteLimits
) -> list[dict[str, Any]]:
    return (await _run_fully(hub, project, call, limits)).output


async def _run_fully(
    hub: Hub, project: ProjectRow, call: ExecuteCall, limits: kernels.ExecuteLimits
) -> kernels.ExecuteResult:
    spec = await running(hub, project)
    request = kernels.ExecuteRequest(
        kernel=call.kernel.strip().lower(),
        input=call.input,
        history=list(call.history or []),
        path=call.path,
        limits=within(limits, call.timeout_s),
        pool=await pool_settings(hub),
        session=call.session,
    )
    try:
        return await kernels.execute_fully(hub.runtime, spec, request)
    except RuntimeFailure as exc:
        raise jupyter_error(exc) from None


def check_call(call: ExecuteCall) -> None:
    if not isinstance(call.input, str):
        raise Invalid("input must be a string")
    if len(call.input) > MAX_CODE_CHARS:
        raise Invalid(f"input must be at most {MAX_CODE_CHARS} characters")
    if call.session is None:
        if not isinstance(call.kernel, str) or not call.kernel.strip():
            raise Invalid("kernel must be specified")
        if len(call.kernel) > MAX_KERNEL_NAME:
            raise Invalid("kernel name is too long")
    elif not isinstance(call.session, str) or len(call.session) > 100:
        raise Invalid("session must be a session id")
    if call.history is not None:
        if not isinstance(call.history, list) or not all(isinstance(h, str) for h in call.history):
            raise Invalid("history must be a list of strings")
        if len(call.history) > MAX_HISTORY_CELLS:
            raise Invalid(f"history may have at most {MAX_HISTORY_CELLS} cells")
        if sum(len(h) for h in call.history) > MAX_CODE_CHARS:
            raise Invalid(f"history must be at most {MAX_CODE_CHARS} characters")
    if call.path is not None and (not isinstance(call.path, str) or "\0" in call.path):
        raise Invalid("path must be a string")
    if call.timeout_s is not None and (
        isinstance(call.timeout_s, bool) or not isinstance(call.timeout_s, int | float)
    ):
        raise Invalid("timeout must be a number")
