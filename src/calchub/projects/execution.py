"""project_exec: CoCalc's rules for bash mode, timeouts, output limits and error texts."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from typing import Any

from calchub import metrics
from calchub.actor import Actor
from calchub.errors import Failed, Invalid
from calchub.hub import Hub
from calchub.projects.access import require_project
from calchub.projects.lifecycle import ensure_running
from calchub.projects.runtime_errors import domain_error
from calchub.runtime import ExecRequest, ExecResult, ExecWatch, RuntimeFailure

REFUSED = {
    "smc-jupyter": "do not run smc-jupyter directly",
    "ipython-notebook": "ipython-notebook is not supported; use jupyter",
}
NETWORK_HINT = (
    "-- Email {help_email} if you need full internet access, which is disabled by default."
)


class ExecFailed(Failed):
    """A command that failed under err_on_exit. `reason` is the bare account of what
    happened (the project API's error text); the message adds v1's framing around it."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ExecLimits:
    max_timeout_s: float
    max_output: int


@dataclass(frozen=True)
class ExecOutput:
    stdout: str
    stderr: str
    exit_code: int


@dataclass(frozen=True)
class Command:
    """A command as the caller gives it (CoCalc's project_exec fields)."""

    command: str
    args: list[str]
    path: str = ""
    timeout: float = 10
    max_output: int | None = None
    bash: bool = False
    err_on_exit: bool = True
    # Seconds within which identical commands share one run (CoCalc's `aggregate`).
    aggregate: Any = None
    # Variables set over the project's environment for this command.
    env: dict[str, str] | None = None


async def run_command(
    hub: Hub, actor: Actor, project_id: str, cmd: Command, watch: ExecWatch | None = None
) -> ExecOutput:
    """Run `cmd` in the project (started on demand) with CoCalc's semantics; with `watch`,
    the runtime reports there as it runs (and the run is its own, never shared by
    `aggregate`: each watcher sees its own command)."""
    project = await require_project(hub, actor, project_id, write=True)
    site = await hub.site.all()
    limits = ExecLimits(
        max_timeout_s=float(site["exec_max_timeout_s"]), max_output=int(site["exec_max_output"])
    )
    request, requested = plan_exec(
        command=cmd.command,
        args=cmd.args,
        path=cmd.path,
        timeout=cmd.timeout,
        max_output=cmd.max_output,
        bash=cmd.bash,
        limits=limits,
        env=cmd.env,
    )

    async def run() -> Any:
        spec = await ensure_running(hub, project, site)
        began = time.monotonic()
        result = await hub.runtime.exec(spec, request, watch)
        metrics.observe_exec(time.monotonic() - began, result.exit_code == 0)
        return result

    try:
        if cmd.aggregate is None or watch is not None:
            result = await run()
        else:
            key = (
                project.project_id,
                request.command,
                tuple(request.args),
                request.path,
                request.timeout_s,
                request.max_output,
                request.bash,
            )
            result = await hub.aggregator.run(key, cmd.aggregate, run)
    except RuntimeFailure as exc:
        kind = type(domain_error(exc))
        raise kind(
            f"Error executing command '{cmd.command}' with args '{','.join(cmd.args)}' -- "
            f"error {exc}"
        ) from None
    return exec_reply(
        original_command=cmd.command,
        original_args=cmd.args,
        request=request,
        result=result,
        requested_max_output=requested,
        err_on_exit=cmd.err_on_exit,
        help_email=site["help_email"],
    )


MAX_ENV_VARIABLES = 1000
MAX_ENV_CHARS = 1_000_000


def checked_env(value: Any) -> dict[str, str]:
    """Variables a caller sets over the project's environment for one command: names and
    values are strings, without NUL, and names without `=`; bounded in number and size."""
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


def plan_exec(
    *,
    command: str,
    args: list[str],
    path: str,
    timeout: float,
    max_output: int | None,
    bash: bool,
    limits: ExecLimits,
    env: dict[str, str] | None = None,
) -> tuple[ExecRequest, int | None]:
    """The runtime request, and the output limit the caller asked for (None: site cap only)."""
    if command.strip() in REFUSED:
        raise Invalid(REFUSED[command.strip()])
    if not args and any(ch.isspace() for ch in command):
        bash = True
    if bash and args:
        command = " ".join([command, *(shlex.quote(arg) for arg in args)])
        args = []
    # 0 means "no limit"; the site maximum still applies so that no request runs forever.
    timeout_s = limits.max_timeout_s if timeout <= 0 else min(timeout, limits.max_timeout_s)
    requested = None if max_output is None else min(max_output, limits.max_output)
    keep = limits.max_output if requested is None else requested
    request = ExecRequest(
        command=command,
        args=list(args),
        path=path,
        timeout_s=timeout_s,
        max_output=keep,
        bash=bash,
        env=dict(env or {}),
    )
    return request, requested


def _limit(text: str, truncated: bool, limit: int) -> str:
    # CoCalc appends the note whenever the output reaches the limit.
    if truncated or len(text) >= limit:
        return text[:limit] + f" (truncated at {limit} characters)"
    return text


def limited(text: str, limit: int) -> str:
    """Output so far (at most `limit`+1 characters of it), noted as the final output is
    when it reaches the limit."""
    return _limit(text, len(text) > limit, limit)


def exec_reply(
    *,
    original_command: str,
    original_args: list[str],
    request: ExecRequest,
    result: ExecResult,
    requested_max_output: int | None,
    err_on_exit: bool,
    help_email: str,
) -> ExecOutput:
    """The command's output, or raise the CoCalc-formatted error."""
    limit = request.max_output if request.max_output is not None else len(result.stdout)
    if requested_max_output is not None or result.stdout_truncated:
        stdout = _limit(result.stdout, result.stdout_truncated, limit)
    else:
        stdout = result.stdout
    if requested_max_output is not None or result.stderr_truncated:
        stderr = _limit(result.stderr, result.stderr_truncated, limit)
    else:
        stderr = result.stderr
    exit_code = result.exit_code
    if result.timed_out:
        exit_code = 1
    failed = result.timed_out or result.could_not_run or result.exit_code != 0
    if not (failed and err_on_exit):
        return ExecOutput(stdout=stdout, stderr=stderr, exit_code=exit_code)

    if request.bash and result.script_path:
        cmd, cmd_args = "bash", [result.script_path]
    else:
        cmd, cmd_args = request.command, request.args
    spaced = " ".join(cmd_args)
    if result.timed_out:
        inner = f"killed command '{' '.join([cmd, *cmd_args])}'"
    elif result.could_not_run:
        inner = f"command '{cmd}' (args={spaced}) was not able to run -- stderr='{stderr}'"
    else:
        inner = (
            f"command '{cmd}' (args={spaced}) exited with nonzero code "
            f"{result.exit_code} -- stderr='{stderr}'"
        )
    error = (
        f"Error executing command '{original_command}' with args "
        f"'{','.join(original_args)}' -- {inner}, {stdout}, {stderr}"
    )
    if "Connection refused" in error:
        error += " " + NETWORK_HINT.format(help_email=help_email)
    raise ExecFailed(error, _reason(request, result, cmd, cmd_args, stderr))


def _reason(
    request: ExecRequest, result: ExecResult, cmd: str, cmd_args: list[str], stderr: str
) -> str:
    """The project API's words: the bash text itself, or `'<cmd>' (args=<a b>)`, and
    stderr cut at 1024 characters."""
    shown = request.command if request.bash else f"{cmd}' (args={' '.join(cmd_args)})"
    quoted = f"'{shown}'" if request.bash else f"'{shown}"
    if result.timed_out:
        return f"killed command '{' '.join([cmd, *cmd_args])}'"
    if result.could_not_run:
        return f"command {quoted} was not able to run -- stderr='{stderr[:1024]}'"
    return (
        f"command {quoted} exited with nonzero code {result.exit_code} -- stderr='{stderr[:1024]}'"
    )
