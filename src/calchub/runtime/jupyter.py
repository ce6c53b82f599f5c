"""Jupyter kernels in a project, over any backend's `jupyter_call`: the requests the
project's kernel manager understands (see calchub.runtime.agent.kernels) and checks on its
replies, which come from inside the sandbox and are trusted for nothing but their shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from calchub.runtime.base import JupyterFailure, ProjectRuntime, ProjectSpec, RuntimeFailure

# A kernel may take this long to start; the manager gives up on it after 60 seconds.
KERNEL_START_S = 60.0
# What an interrupt may add to a cell's time (three tries, then a kill), plus slack.
INTERRUPT_GRACE_S = 30.0
QUICK_CALL_S = 90.0


@dataclass(frozen=True)
class ExecuteLimits:
    """CoCalc's limits of one execute (0: none): times in milliseconds, output sizes in
    characters of each output item's JSON."""

    timeout_ms: int = 45_000
    timeout_ms_per_cell: int = 30_000
    max_output: int = 5_000_000
    max_output_per_cell: int = 1_000_000

    def to_json(self) -> dict[str, int]:
        return {
            "timeout_ms": self.timeout_ms,
            "timeout_ms_per_cell": self.timeout_ms_per_cell,
            "max_output": self.max_output,
            "max_output_per_cell": self.max_output_per_cell,
        }

    def longest_s(self) -> float:
        """How long an execute may run, at most, before its kernel is interrupted."""
        if self.timeout_ms:
            return self.timeout_ms / 1000
        if self.timeout_ms_per_cell:
            return 3 * self.timeout_ms_per_cell / 1000  # directory change, history, input
        return 24 * 3600.0


@dataclass(frozen=True)
class PoolSettings:
    """Pre-started kernels kept per kernel name, and how long a pool may sit unused
    before it shrinks to one kernel."""

    size: int = 2
    idle_timeout_s: float = 3600.0


@dataclass(frozen=True)
class ExecuteRequest:
    """Run `history` silently, then `input`, in a fresh kernel from the pool (or, with
    `session`, in that session's kernel, keeping its state). `path`: the working directory,
    relative to the home or absolute; None leaves the kernel in a scratch folder."""

    kernel: str
    input: str
    history: list[str] = field(default_factory=list)
    path: str | None = None
    limits: ExecuteLimits = ExecuteLimits()
    pool: PoolSettings = PoolSettings()
    session: str | None = None


@dataclass(frozen=True)
class KernelProcess:
    pid: int
    connection_file: str
    kernel_name: str | None
    session: str | None
    # Started and warmed up (a pool kernel still starting is listed too, not ready).
    ready: bool = False


@dataclass(frozen=True)
class KernelSession:
    """A persistent kernel: `created` in seconds since the epoch, `idle_s` since it was
    last used."""

    id: str
    kernel: str
    pid: int
    path: str | None
    created: float
    idle_s: float
    idle_timeout_s: float
    alive: bool


def jupyter_reply(agent_reply: dict[str, Any]) -> dict[str, Any]:
    """The manager's reply inside the agent's, or its failure raised."""
    reply = agent_reply.get("reply")
    if not isinstance(reply, dict):
        raise RuntimeFailure("the project sent a malformed reply")
    failure = reply.get("failure")
    if failure is not None:
        if not isinstance(failure, dict):
            raise RuntimeFailure("the project sent a malformed reply")
        kind = failure.get("kind")
        message = failure.get("message")
        raise JupyterFailure(
            kind if isinstance(kind, str) else "internal",
            message if isinstance(message, str) else "the Jupyter request failed",
        )
    return reply


async def kernel_specs(runtime: ProjectRuntime, spec: ProjectSpec) -> list[dict[str, Any]]:
    """The kernels installed for the project (system-wide ones and the project's own), with
    CoCalc's fields, sorted by display name."""
    reply = await runtime.jupyter_call(spec, {"op": "specs"}, QUICK_CALL_S)
    specs = reply.get("specs")
    if not isinstance(specs, list) or not all(
        isinstance(s, dict) and isinstance(s.get("name"), str) for s in specs
    ):
        raise RuntimeFailure("the project sent a malformed kernel list")
    return specs


@dataclass(frozen=True)
class ExecuteResult:
    """The outputs of the input, in CoCalc's format; `timed_out` when a cell ran out of time
    and was interrupted (its outputs then usually end with a KeyboardInterrupt error)."""

    output: list[dict[str, Any]]
    timed_out: bool


async def execute(
    runtime: ProjectRuntime, spec: ProjectSpec, request: ExecuteRequest
) -> list[dict[str, Any]]:
    """The outputs of `request.input`, in CoCalc's format."""
    return (await execute_fully(runtime, spec, request)).output


async def execute_fully(
    runtime: ProjectRuntime, spec: ProjectSpec, request: ExecuteRequest
) -> ExecuteResult:
    """As execute, also saying whether a cell timed out."""
    body: dict[str, Any] = {
        "op": "execute",
        "kernel": request.kernel,
        "input": request.input,
        "history": list(request.history),
        "path": request.path,
        "limits": request.limits.to_json(),
        "pool": {"size": request.pool.size, "timeout_s": request.pool.idle_timeout_s},
        "session": request.session,
    }
    wait = KERNEL_START_S + request.limits.longest_s() + INTERRUPT_GRACE_S
    reply = await runtime.jupyter_call(spec, body, wait)
    output = reply.get("output")
    if not isinstance(output, list) or not all(isinstance(item, dict) for item in output):
        raise RuntimeFailure("the project sent a malformed Jupyter output")
    return ExecuteResult(output, reply.get("timed_out") is True)


async def list_kernels(runtime: ProjectRuntime, spec: ProjectSpec) -> list[KernelProcess]:
    """Every kernel the project's manager runs, idle pool kernels included."""
    reply = await runtime.jupyter_call(spec, {"op": "list"}, QUICK_CALL_S)
    kernels = reply.get("kernels")
    if not isinstance(kernels, list):
        raise RuntimeFailure("the project sent a malformed kernel list")
    found = []
    for item in kernels:
        if not isinstance(item, dict) or not _int(item.get("pid")):
            raise RuntimeFailure("the project sent a malformed kernel list")
        found.append(
            KernelProcess(
                pid=item["pid"],
                connection_file=_str(item.get("connectionFile")) or "unknown",
                kernel_name=_str(item.get("kernel_name")),
                session=_str(item.get("session")),
                ready=item.get("ready") is True,
            )
        )
    return found


async def stop_kernel(runtime: ProjectRuntime, spec: ProjectSpec, pid: int) -> bool:
    """Kill one of the project's kernels; False when it has none with that pid."""
    reply = await runtime.jupyter_call(spec, {"op": "stop", "pid": pid}, QUICK_CALL_S)
    return reply.get("success") is True


async def create_session(
    runtime: ProjectRuntime,
    spec: ProjectSpec,
    kernel: str,
    path: str | None,
    idle_timeout_s: float,
) -> KernelSession:
    body = {
        "op": "session_create",
        "kernel": kernel,
        "path": path,
        "idle_timeout_s": idle_timeout_s,
    }
    reply = await runtime.jupyter_call(spec, body, KERNEL_START_S + QUICK_CALL_S)
    return _session(reply.get("session"))


async def list_sessions(runtime: ProjectRuntime, spec: ProjectSpec) -> list[KernelSession]:
    reply = await runtime.jupyter_call(spec, {"op": "session_list"}, QUICK_CALL_S)
    sessions = reply.get("sessions")
    if not isinstance(sessions, list):
        raise RuntimeFailure("the project sent a malformed session list")
    return [_session(s) for s in sessions]


async def delete_session(runtime: ProjectRuntime, spec: ProjectSpec, session_id: str) -> bool:
    body = {"op": "session_delete", "id": session_id}
    reply = await runtime.jupyter_call(spec, body, QUICK_CALL_S)
    return reply.get("success") is True


def _session(raw: Any) -> KernelSession:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not _int(raw.get("pid")):
        raise RuntimeFailure("the project sent a malformed session")
    return KernelSession(
        id=raw["id"],
        kernel=_str(raw.get("kernel")) or "",
        pid=raw["pid"],
        path=_str(raw.get("path")),
        created=_float(raw.get("created")),
        idle_s=_float(raw.get("idle_s")),
        idle_timeout_s=_float(raw.get("idle_timeout_s")),
        alive=raw.get("alive") is True,
    )


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 0.0
