"""Kernel listings and a project's kernel processes."""

from __future__ import annotations

import time
from typing import Any

from calchub.actor import Actor
from calchub.errors import Invalid
from calchub.hub import Hub
from calchub.jupyter import global_pool
from calchub.jupyter.errors import jupyter_error
from calchub.jupyter.projects import running, usable_project
from calchub.runtime import RuntimeFailure
from calchub.runtime import jupyter as kernels

# Kernel listings change only when an operator installs kernels: keep them a while.
SPECS_TTL_S = 30.0
_specs: dict[str, tuple[float, list[dict[str, Any]]]] = {}


async def kernel_specs(hub: Hub, actor: Actor, project_id: str | None) -> list[dict[str, Any]]:
    """The kernels a project offers (the global pool's without a project), with CoCalc's
    fields, sorted by display name."""
    if project_id is None:
        project = await global_pool.pool_project(hub, actor)
    else:
        project = await usable_project(hub, actor, project_id)
    cached = _specs.get(project.project_id)
    if cached is not None and time.monotonic() - cached[0] < SPECS_TTL_S:
        return cached[1]
    spec = await running(hub, project)
    try:
        found = await kernels.kernel_specs(hub.runtime, spec)
    except RuntimeFailure as exc:
        raise jupyter_error(exc) from None
    _specs[project.project_id] = (time.monotonic(), found)
    return found


async def kernel_processes(hub: Hub, actor: Actor, project_id: str) -> list[dict[str, Any]]:
    """Every kernel the project runs (idle pool kernels and sessions included), as the
    project API's listJupyterKernels gives them, plus whether each is `ready` (a pool
    kernel may still be starting)."""
    project = await usable_project(hub, actor, project_id)
    spec = await running(hub, project)
    try:
        found = await kernels.list_kernels(hub.runtime, spec)
    except RuntimeFailure as exc:
        raise jupyter_error(exc) from None
    return [
        {"pid": k.pid, "connectionFile": k.connection_file, "ready": k.ready}
        | ({"kernel_name": k.kernel_name} if k.kernel_name else {})
        for k in found
    ]


async def stop_kernel_process(hub: Hub, actor: Actor, project_id: str, pid: Any) -> bool:
    """Kill one of the project's kernels; False when there is none with that pid."""
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 < pid < 2**31:
        raise Invalid("pid must be a positive integer")
    project = await usable_project(hub, actor, project_id)
    spec = await running(hub, project)
    try:
        return await kernels.stop_kernel(hub.runtime, spec, pid)
    except RuntimeFailure as exc:
        raise jupyter_error(exc) from None
