"""Hub bridge methods of CoCalc's `org.*` and `messages.*` (`conat/hub/api/org.ts`,
`messages.ts`): each translates its options into one domain call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from calchub.api.conat.registry import Auth, BridgeCall, first_arg, hub_method
from calchub.errors import Invalid
from calchub.messages.get import get_messages
from calchub.messages.send import send_message
from calchub.organizations import orgs


def _string(opts: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = opts.get(key)
    if value is None:
        if required:
            raise Invalid(f"{key} must be specified")
        return None
    if not isinstance(value, str):
        raise Invalid(f"{key} must be a string")
    return value


def _required(opts: dict[str, Any], key: str) -> str:
    value = _string(opts, key)
    assert value is not None
    return value


def _integer(opts: dict[str, Any], key: str, default: int) -> int:
    value = opts.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{key} must be an integer")
    return value


# --- org -----------------------------------------------------------------------------------


@hub_method("org.getAll", Auth.AUTH_FIRST)
async def org_get_all(call: BridgeCall, args: list[Any]) -> Any:
    return await orgs.get_all(call.hub, call.actor)


@hub_method("org.create", Auth.AUTH_FIRST)
async def org_create(call: BridgeCall, args: list[Any]) -> Any:
    return await orgs.create(call.hub, call.actor, _required(first_arg(args), "name"))


@hub_method("org.get", Auth.AUTH_FIRST)
async def org_get(call: BridgeCall, args: list[Any]) -> Any:
    return await orgs.get(call.hub, call.actor, _required(first_arg(args), "name"))


@hub_method("org.set", Auth.AUTH_FIRST)
async def org_set(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    changes = {
        field: _string(opts, field, required=False)
        for field in ("title", "description", "link", "email_address")
    }
    await orgs.set_fields(call.hub, call.actor, _required(opts, "name"), changes)


def _member_method(name: str, operation: Any) -> None:
    async def handler(call: BridgeCall, args: list[Any]) -> Any:
        opts = first_arg(args)
        await operation(call.hub, call.actor, _required(opts, "name"), _required(opts, "user"))

    hub_method(name, Auth.AUTH_FIRST)(handler)


_member_method("org.addAdmin", orgs.add_admin)
_member_method("org.addUser", orgs.add_user)
_member_method("org.removeUser", orgs.remove_user)
_member_method("org.removeAdmin", orgs.remove_admin)


@hub_method("org.createUser", Auth.AUTH_FIRST)
async def org_create_user(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    return await orgs.create_user(
        call.hub,
        call.actor,
        _required(opts, "name"),
        _required(opts, "email"),
        first_name=_string(opts, "firstName", required=False),
        last_name=_string(opts, "lastName", required=False),
        password=_string(opts, "password", required=False),
    )


@hub_method("org.createToken", Auth.AUTH_FIRST)
async def org_create_token(call: BridgeCall, args: list[Any]) -> Any:
    return await orgs.create_token(call.hub, call.actor, _required(first_arg(args), "user"))


@hub_method("org.expireToken", Auth.AUTH_FIRST)
async def org_expire_token(call: BridgeCall, args: list[Any]) -> Any:
    await orgs.expire_token(call.hub, call.actor, _required(first_arg(args), "token"))


@hub_method("org.getUsers", Auth.AUTH_FIRST)
async def org_get_users(call: BridgeCall, args: list[Any]) -> Any:
    return await orgs.get_users(call.hub, call.actor, _required(first_arg(args), "name"))


@hub_method("org.message", Auth.AUTH_FIRST)
async def org_message(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    await orgs.message(
        call.hub,
        call.actor,
        _required(opts, "name"),
        _required(opts, "subject"),
        _required(opts, "body"),
    )


# --- messages ------------------------------------------------------------------------------


def recipients(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise Invalid("to_ids must be an array of account ids or email addresses")
    return value


def cutoff_of(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("cutoff must be an ISO date")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid("cutoff must be an ISO date") from None
    if moment.tzinfo is None:
        raise Invalid("cutoff must name its time zone")
    return moment


@hub_method("messages.send", Auth.AUTH_FIRST)
async def messages_send(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    reply_id = opts.get("reply_id")
    if reply_id is not None and (isinstance(reply_id, bool) or not isinstance(reply_id, int)):
        raise Invalid("reply_id must be an integer")
    return await send_message(
        call.hub,
        call.actor,
        recipients(opts.get("to_ids")),
        _required(opts, "subject"),
        _required(opts, "body"),
        reply_id,
    )


@hub_method("messages.get", Auth.AUTH_FIRST)
async def messages_get(call: BridgeCall, args: list[Any]) -> Any:
    opts = first_arg(args)
    return await get_messages(
        call.hub,
        call.actor,
        limit=_integer(opts, "limit", 100),
        offset=_integer(opts, "offset", 0),
        kind=_string(opts, "type", required=False) or "received",
        cutoff=cutoff_of(opts.get("cutoff")),
    )
