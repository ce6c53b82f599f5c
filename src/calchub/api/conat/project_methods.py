"""Project bridge methods (`POST /api/conat/project`): each readies the project (access,
start) and makes one domain call. Names are CoCalc's (`conat/project/api/system.ts`)."""

from __future__ import annotations

from typing import Any

from calchub.api.conat.registry import BridgeCall, first_arg, project_method
from calchub.errors import Invalid
from calchub.projects import control, exec_jobs, files
from calchub.projects.execution import Command, checked_env, run_command

DEFAULT_EXEC_TIMEOUT_S = 60
MAX_JOB_ID = 100


def _project(call: BridgeCall) -> str:
    assert call.project_id is not None  # the endpoint always names one
    return call.project_id


def _path(opts: dict[str, Any], key: str = "path") -> str:
    value = opts.get(key)
    if not isinstance(value, str):
        raise Invalid(f"{key} must be a string")
    return value


@project_method("system.ping")
async def ping(call: BridgeCall, args: list[Any]) -> Any:
    await control.open_for_call(call.hub, call.actor, _project(call))
    return {"now": int(call.actor.now.timestamp() * 1000)}


@project_method("system.test")
async def test(call: BridgeCall, args: list[Any]) -> Any:
    project = await control.open_for_call(call.hub, call.actor, _project(call))
    return {"project_id": project.project_id, "server_time": int(call.actor.now.timestamp() * 1000)}


def _strings(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise Invalid(f"{key} must be an array of strings")
    return [str(v) for v in value]


def _number(value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"{key} must be a number")
    return float(value)


@project_method("system.exec")
async def exec_(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    if opts.get("async_get") is not None:
        return await _poll_job(call, opts)
    command = opts.get("command")
    if not isinstance(command, str) or not command:
        raise Invalid("command must be given")
    path = opts.get("cwd") if opts.get("cwd") is not None else opts.get("path", "")
    if not isinstance(path, str):
        raise Invalid("path must be a string")
    timeout = _number(opts.get("timeout"), "timeout")
    max_output = _number(opts.get("max_output"), "max_output")
    bash = opts.get("bash", False)
    if not isinstance(bash, bool):
        raise Invalid("bash must be true or false")
    async_call = _flag(opts, "async_call")
    command_to_run = Command(
        command=command,
        args=_strings(opts.get("args"), "args"),
        path=path,
        timeout=DEFAULT_EXEC_TIMEOUT_S if timeout is None else timeout,
        max_output=None if max_output is None else int(max_output),
        bash=bash,
        env=checked_env(opts.get("env")),
    )
    await control.open_for_call(call.hub, call.actor, _project(call))
    if async_call:
        return await exec_jobs.start_job(call.hub, call.actor, _project(call), command_to_run)
    output = await run_command(call.hub, call.actor, _project(call), command_to_run)
    return {
        "type": "blocking",
        "stdout": output.stdout,
        "stderr": output.stderr,
        "exit_code": output.exit_code,
    }


def _flag(opts: dict[str, Any], key: str) -> bool:
    value = opts.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Invalid(f"{key} must be true or false")
    return value


async def _poll_job(call: BridgeCall, opts: dict[str, Any]) -> Any:
    """`async_get`: a job started through this project's API or REST v2, as §3.1 answers it;
    only this project's jobs are found here."""
    job_id = opts["async_get"]
    if not isinstance(job_id, str) or len(job_id) > MAX_JOB_ID:
        raise Invalid("async_get must be a job id")
    return await exec_jobs.get_job(
        call.hub,
        call.actor,
        job_id,
        wait=_flag(opts, "async_await"),
        stats=_flag(opts, "async_stats"),
        project_id=_project(call),
    )


@project_method("system.listing")
async def listing(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    path = opts.get("path", "")
    if not isinstance(path, str):
        raise Invalid("path must be a string")
    hidden = opts.get("hidden", False)
    if not isinstance(hidden, bool):
        raise Invalid("hidden must be true or false")
    return await control.list_folder_of(call.hub, call.actor, _project(call), path, hidden)


@project_method("system.readTextFileFromProject")
async def read_text_file(call: BridgeCall, args: list[Any]) -> Any:
    path = _path(first_arg(args))
    await control.open_for_call(call.hub, call.actor, _project(call))
    return await files.read_text(call.hub, call.actor, _project(call), path)


@project_method("system.writeTextFileToProject")
async def write_text_file(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    path = _path(opts)
    content = opts.get("content")
    if not isinstance(content, str):
        raise Invalid("content must be a string")
    await control.open_for_call(call.hub, call.actor, _project(call))
    await files.write_text(call.hub, call.actor, _project(call), path, content)
    return None
