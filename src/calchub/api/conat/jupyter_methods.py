"""Jupyter on the bridges: the hub's `jupyter.kernels` / `jupyter.execute` and the project
API's kernel calls (`system.jupyterExecute`, `listJupyterKernels`, `stopJupyterKernel`).
Each makes one call into calchub.jupyter. Beyond CoCalc, both executes take an optional
`session` (see calchub.jupyter.sessions), so state can persist between calls."""

from __future__ import annotations

from typing import Any

from calchub.api.conat.registry import Auth, BridgeCall, first_arg, hub_method, project_method
from calchub.errors import Invalid
from calchub.jupyter import kernels
from calchub.jupyter.execute import ExecuteCall, cached, execute, execute_in_project
from calchub.projects import control


def _text(opts: dict[str, Any], key: str) -> str | None:
    value = opts.get(key)
    if value is not None and not isinstance(value, str):
        raise Invalid(f"{key} must be a string")
    return value


def _timeout(call: BridgeCall, opts: dict[str, Any]) -> float:
    """The caller's deadline in seconds: `timeout` among the arguments (cocalc-api sends
    it there in seconds too), else the bridge request's."""
    value = opts.get("timeout")
    if value is None:
        return call.timeout_s
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("timeout must be a number")
    return min(float(value), call.timeout_s) if value > 0 else call.timeout_s


def _history(opts: dict[str, Any]) -> list[str] | None:
    history = opts.get("history")
    if history is not None and (
        not isinstance(history, list) or not all(isinstance(h, str) for h in history)
    ):
        raise Invalid("history must be an array of strings")
    return history


def _call(call: BridgeCall, opts: dict[str, Any], project_id: str | None) -> ExecuteCall:
    code = opts.get("input")
    if not isinstance(code, str):
        raise Invalid("input must be a string")
    return ExecuteCall(
        input=code,
        kernel=_text(opts, "kernel") or "",
        history=_history(opts),
        project_id=project_id,
        path=_text(opts, "path"),
        timeout_s=_timeout(call, opts),
        no_cache=opts.get("noCache") is True,
        session=_text(opts, "session"),
    )


@hub_method("jupyter.kernels", Auth.AUTH_FIRST)
async def hub_kernels(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    return await kernels.kernel_specs(call.hub, call.actor, _text(opts, "project_id"))


@hub_method("jupyter.execute", Auth.AUTH_FIRST)
async def hub_execute(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    digest = _text(opts, "hash")
    if digest is not None:
        hit = await cached(call.hub, digest, call.actor.now)
        if hit is not None:
            return {"output": hit.output, "created": hit.created, "id": hit.cache_id}
        if opts.get("input") is None:
            return None
    outcome = await execute(call.hub, call.actor, _call(call, opts, _text(opts, "project_id")))
    reply: dict[str, Any] = {"output": outcome.output, "created": outcome.created}
    if outcome.cache_id is not None:
        reply["id"] = outcome.cache_id
    return reply


def _project(call: BridgeCall) -> str:
    assert call.project_id is not None  # the endpoint always names one
    return call.project_id


@project_method("system.jupyterExecute")
async def project_execute(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    project_id = _project(call)
    await control.open_for_call(call.hub, call.actor, project_id)
    return await execute_in_project(call.hub, call.actor, _call(call, opts, project_id))


@project_method("system.listJupyterKernels")
async def project_kernels(call: BridgeCall, args: list[Any]) -> Any:
    project_id = _project(call)
    await control.open_for_call(call.hub, call.actor, project_id)
    return await kernels.kernel_processes(call.hub, call.actor, project_id)


@project_method("system.stopJupyterKernel")
async def project_stop_kernel(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    project_id = _project(call)
    await control.open_for_call(call.hub, call.actor, project_id)
    stopped = await kernels.stop_kernel_process(call.hub, call.actor, project_id, opts.get("pid"))
    return {"success": stopped}
