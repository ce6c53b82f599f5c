"""Hub bridge methods (`POST /api/conat/hub`): each translates its arguments into one domain
call. Names and auth rules are CoCalc's (`conat/hub/api/*.ts`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from calchub.accounts import api_keys
from calchub.accounts.names import names_of
from calchub.accounts.search import user_search
from calchub.api.conat.registry import Auth, BridgeCall, first_arg, hub_method
from calchub.errors import Invalid
from calchub.files import copies
from calchub.files.copies import CopyOrder
from calchub.projects import control
from calchub.projects.collaborators import (
    add_collaborators,
    add_request,
    remove_collaborator,
)
from calchub.projects.creation import create_project
from calchub.sync.history import document_history
from calchub.userquery.engine import run_query


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _text(opts: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = opts.get(key, default)
    if value is not None and not isinstance(value, str):
        raise Invalid(f"{key} must be a string")
    return value


def _flag(opts: dict[str, Any], key: str) -> bool:
    value = opts.get(key, False)
    if not isinstance(value, bool):
        raise Invalid(f"{key} must be true or false")
    return value


def _inner_opts(args: list[Any]) -> dict[str, Any]:
    """`[{"opts": {...}}]`, the shape of the collaborator methods."""
    opts = first_arg(args).get("opts")
    if not isinstance(opts, dict):
        raise Invalid("opts must be an object")
    return opts


# --- system ------------------------------------------------------------------------------


@hub_method("system.ping", Auth.NO_AUTH)
async def ping(call: BridgeCall, args: list[Any]) -> Any:
    return {"now": _ms(call.actor.now)}


@hub_method("system.test", Auth.AUTH_FIRST)
async def test(call: BridgeCall, args: list[Any]) -> Any:
    return {"account_id": call.actor.account_id, "server_time": _ms(call.actor.now)}


@hub_method("system.getNames", Auth.REQUIRE_ACCOUNT)
async def get_names(call: BridgeCall, args: list[Any]) -> Any:
    ids = args[0] if args else []
    if not isinstance(ids, list):
        raise Invalid("account_ids must be an array")
    return await names_of(call.hub, ids)


@hub_method("system.userSearch", Auth.AUTH_FIRST)
async def user_search_method(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    query = _text(opts, "query")
    if query is None:
        raise Invalid("query must be given")
    limit = opts.get("limit", 20)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise Invalid("limit must be a positive integer")
    admin = _flag(opts, "admin")
    if not admin:
        limit = min(limit, 50)
    found = await user_search(call.hub, call.actor, query, admin=admin, active="", limit=limit)
    # The current API gives these times in milliseconds (v1: ISO text).
    return [{k: _ms(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in found]


@hub_method("system.manageApiKeys", Auth.AUTH_FIRST)
async def manage_api_keys(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    action = opts.get("action")
    project_id = _text(opts, "project_id")
    key_id = opts.get("id")
    if key_id is not None and (isinstance(key_id, bool) or not isinstance(key_id, int)):
        raise Invalid("id must be an integer")
    expire = _expiry(opts.get("expire"))
    if action == "get":
        return await api_keys.get(call.hub, call.actor, project_id=project_id, key_id=key_id)
    if action == "create":
        created = await api_keys.create(
            call.hub, call.actor, name=_text(opts, "name"), expire=expire, project_id=project_id
        )
        return [created]
    if key_id is None:
        raise Invalid("id must be given")
    if action == "delete":
        await api_keys.delete(call.hub, call.actor, key_id, project_id=project_id)
        return None
    if action == "edit":
        changes = {k: v for k, v in (("name", opts.get("name")),) if k in opts}
        if "expire" in opts:
            changes["expire"] = expire
        await api_keys.edit(call.hub, call.actor, key_id, project_id=project_id, changes=changes)
        return None
    raise Invalid(f"unknown action {action}")


def _expiry(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("expire must be an ISO 8601 date or null")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"invalid expire date {value}") from None
    if moment.tzinfo is None:
        raise Invalid("expire must carry a time zone")
    return moment


@hub_method("system.getCustomize", Auth.NO_AUTH)
async def get_customize(call: BridgeCall, args: list[Any]) -> Any:
    site = await call.hub.site.all()
    return {"site_name": site.get("site_name"), "help_email": site.get("help_email")}


for _quiet in ("system.userTracking", "system.logClientError", "system.webappError"):

    async def _nothing(call: BridgeCall, args: list[Any]) -> Any:
        return None

    hub_method(_quiet, Auth.AUTH_FIRST)(_nothing)


# --- projects ----------------------------------------------------------------------------


@hub_method("projects.createProject", Auth.AUTH_FIRST)
async def create_project_method(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    if opts.get("project_id") is not None and not call.actor.is_admin:
        raise Invalid("only admins can specify the project_id")
    if opts.get("project_id") is not None:
        raise Invalid("specifying the project_id is not supported on this server")
    return await create_project(
        call.hub,
        call.actor,
        title=_text(opts, "title") or "No Title",
        description=_text(opts, "description") or "",
        image=_text(opts, "image"),
        license=_text(opts, "license"),
        start=_flag(opts, "start"),
    )


@hub_method("projects.copyPathBetweenProjects", Auth.AUTH_FIRST)
async def copy_path(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    src_project_id = _text(opts, "src_project_id")
    src_path = _text(opts, "src_path")
    if src_project_id is None or src_path is None:
        raise Invalid("src_project_id and src_path must be given")
    exclude = opts.get("exclude")
    if exclude is not None and not (
        isinstance(exclude, list) and all(isinstance(e, str) for e in exclude)
    ):
        raise Invalid("exclude must be an array of strings")
    timeout = opts.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)):
        raise Invalid("timeout must be a number of seconds")
    order = CopyOrder(
        src_project_id=src_project_id,
        src_path=src_path,
        target_project_id=_text(opts, "target_project_id") or src_project_id,
        target_path=_text(opts, "target_path"),
        overwrite_newer=_flag(opts, "overwrite_newer"),
        delete_missing=_flag(opts, "delete_missing"),
        backup=_flag(opts, "backup"),
        timeout=timeout,
        exclude=exclude,
    )
    copy_id = await copies.copy_between_projects(call.hub, call.actor, order)
    await copies.wait_for_copy(call.hub, copy_id)
    return None


@hub_method("projects.addCollaborator", Auth.AUTH_FIRST)
async def add_collaborator(call: BridgeCall, args: list[Any]) -> Any:
    opts = _inner_opts(args)
    token_id = opts.get("token_id")
    account_id = opts.get("account_id")
    if account_id is None:
        raise Invalid("account_id must be given")
    request = add_request(call.actor, account_id, opts.get("project_id"), token_id)
    project_ids = await add_collaborators(call.hub.engine, request)
    if token_id is not None and not isinstance(token_id, list):
        return {"project_id": project_ids[0]}
    return {"project_id": project_ids}


@hub_method("projects.removeCollaborator", Auth.AUTH_FIRST)
async def remove_collaborator_method(call: BridgeCall, args: list[Any]) -> Any:
    opts = _inner_opts(args)
    project_id, account_id = opts.get("project_id"), opts.get("account_id")
    if not isinstance(project_id, str) or not isinstance(account_id, str):
        raise Invalid("project_id and account_id must be given")
    await remove_collaborator(call.hub, call.actor, project_id, account_id)
    return None


def _project_id(args: list[Any]) -> Any:
    return first_arg(args).get("project_id")


@hub_method("projects.start", Auth.AUTH_FIRST)
async def start(call: BridgeCall, args: list[Any]) -> Any:
    await control.start(call.hub, call.actor, _project_id(args))
    return None


@hub_method("projects.stop", Auth.AUTH_FIRST)
async def stop(call: BridgeCall, args: list[Any]) -> Any:
    await control.stop(call.hub, call.actor, _project_id(args))
    return None


@hub_method("projects.touch", Auth.AUTH_FIRST)
async def touch(call: BridgeCall, args: list[Any]) -> Any:
    await control.touch(call.hub, call.actor, _project_id(args))
    return None


@hub_method("projects.deleteProject", Auth.AUTH_FIRST)
async def delete_project(call: BridgeCall, args: list[Any]) -> Any:
    await control.delete(call.hub, call.actor, _project_id(args))
    return None


@hub_method("projects.state", Auth.AUTH_FIRST)
async def state(call: BridgeCall, args: list[Any]) -> Any:
    return await control.state(call.hub, call.actor, _project_id(args))


@hub_method("projects.status", Auth.AUTH_FIRST)
async def status(call: BridgeCall, args: list[Any]) -> Any:
    return await control.status(call.hub, call.actor, _project_id(args))


# --- db ----------------------------------------------------------------------------------


@hub_method("db.userQuery", Auth.AUTH_FIRST)
async def user_query(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    if "query" not in opts:
        raise Invalid("query must be given")
    options = opts.get("options")
    return await run_query(call.hub, call.actor, opts["query"], options, None, None)


# --- purchases: this server does not sell anything ------------------------------------------


for _balance in ("purchases.getBalance", "purchases.getMinBalance"):

    async def _zero(call: BridgeCall, args: list[Any]) -> Any:
        return 0

    hub_method(_balance, Auth.AUTH_FIRST)(_zero)


# --- sync --------------------------------------------------------------------------------


@hub_method("sync.history", Auth.AUTH_FIRST)
async def history(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    return await document_history(call.hub, call.actor, opts.get("project_id"), opts.get("path"))
