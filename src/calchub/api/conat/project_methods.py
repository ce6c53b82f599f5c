"""Project bridge methods (`POST /api/conat/project`): each readies the project (access,
start) and makes one domain call. Names are CoCalc's (`conat/project/api/system.ts`)."""

from __future__ import annotations

from typing import Any

from calchub.api.conat.registry import BridgeCall, first_arg, project_method
from calchub.errors import Invalid
from calchub.projects import control, files
from calchub.projects.execution import Command, run_command

DEFAULT_EXEC_TIMEOUT_S = 60


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


MAX_ENV_VARIABLES = 1000
MAX_ENV_CHARS = 1_000_000


def _env(value: Any) -> dict[str, str]:
    """Variables for a command: names and values are strings, without NUL or `=` in names."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_ENV_VARIABLES:
        raise Invalid(f"env must be an object of at most {MAX_ENV_VARIABLES} strings")
    size = 0
    for name, text in value.items():
        if not isinstance(text, str) or not name or "=" in name or "\0" in name + text:
            raise Invalid(f"env: invalid variable {name!r}")
        size += len(name) + len(text)
    if size > MAX_ENV_CHARS:
        raise Invalid(f"env may hold at most {MAX_ENV_CHARS} characters")
    return dict(value)


@project_method("system.exec")
async def exec_(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    if opts.get("async_call") or opts.get("async_get"):
        raise Invalid("async exec jobs are not supported by this server's project API")
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
    env = _env(opts.get("env"))
    await control.open_for_call(call.hub, call.actor, _project(call))
    output = await run_command(
        call.hub,
        call.actor,
        _project(call),
        Command(
            command=command,
            args=_strings(opts.get("args"), "args"),
            path=path,
            timeout=DEFAULT_EXEC_TIMEOUT_S if timeout is None else timeout,
            max_output=None if max_output is None else int(max_output),
            bash=bash,
            env=env,
        ),
    )
    return {
        "type": "blocking",
        "stdout": output.stdout,
        "stderr": output.stderr,
        "exit_code": output.exit_code,
    }


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
