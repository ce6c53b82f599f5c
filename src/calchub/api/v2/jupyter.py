"""`jupyter/*`: CoCalc's execute and kernels, and calchub's persistent sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from calchub.api.v2.registry import (
    V2Call,
    optional_number,
    optional_str,
    required_str,
    v2_route,
)
from calchub.errors import Invalid
from calchub.jupyter import kernels, sessions
from calchub.jupyter.execute import ExecuteCall, ExecuteOutcome, cached, execute


def outcome_json(outcome: ExecuteOutcome) -> dict[str, Any]:
    reply: dict[str, Any] = {"output": outcome.output, "created": iso_utc(outcome.created)}
    if outcome.cache_id is not None:
        reply["id"] = outcome.cache_id
    return reply


def iso_utc(moment: datetime) -> str:
    """JavaScript's Date.toJSON: UTC, milliseconds and a Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _history(body: dict[str, Any]) -> list[str] | None:
    history = body.get("history")
    if history is None:
        return None
    if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        raise Invalid("history must be an array of strings")
    return history


@v2_route("jupyter/execute", public=True)
async def jupyter_execute(call: V2Call, body: dict[str, Any]) -> Any:
    digest = optional_str(body, "hash")
    if digest is not None:
        hit = await cached(call.hub, digest, call.actor.now)
        if hit is not None:
            return {**outcome_json(hit), "success": True}
        if body.get("input") is None:
            return {"success": True}
    request = ExecuteCall(
        input=required_str(body, "input"),
        kernel=optional_str(body, "kernel") or "",
        history=_history(body),
        project_id=optional_str(body, "project_id"),
        path=optional_str(body, "path"),
        timeout_s=optional_number(body, "timeout"),
        no_cache=body.get("noCache") is True,
        session=optional_str(body, "session"),
    )
    outcome = await execute(call.hub, call.actor, request)
    return {**outcome_json(outcome), "success": True}


@v2_route("jupyter/kernels", public=True)
async def jupyter_kernels(call: V2Call, body: dict[str, Any]) -> Any:
    project_id = optional_str(body, "project_id")
    found = await kernels.kernel_specs(call.hub, call.actor, project_id)
    return {"kernels": found, "success": True}


@v2_route("jupyter/sessions/create")
async def session_create(call: V2Call, body: dict[str, Any]) -> Any:
    made = await sessions.create_session(
        call.hub,
        call.actor,
        required_str(body, "project_id"),
        required_str(body, "kernel"),
        optional_str(body, "path"),
    )
    return {"session": made, "success": True}


@v2_route("jupyter/sessions/list")
async def session_list(call: V2Call, body: dict[str, Any]) -> Any:
    found = await sessions.list_sessions(call.hub, call.actor, required_str(body, "project_id"))
    return {"sessions": found, "success": True}


@v2_route("jupyter/sessions/execute")
async def session_execute(call: V2Call, body: dict[str, Any]) -> Any:
    output = await sessions.execute_in_session(
        call.hub,
        call.actor,
        required_str(body, "project_id"),
        required_str(body, "session_id"),
        required_str(body, "input"),
        _history(body),
        optional_number(body, "timeout"),
    )
    return {"output": output, "success": True}


@v2_route("jupyter/sessions/delete")
async def session_delete(call: V2Call, body: dict[str, Any]) -> Any:
    deleted = await sessions.delete_session(
        call.hub, call.actor, required_str(body, "project_id"), required_str(body, "session_id")
    )
    return {"deleted": deleted, "success": True}
