"""Handlers for the account events: thin translations between messages and the domain."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update

from calchub.accounts import credentials, reset
from calchub.accounts.auth_tokens import AuthRefused, issue_auth_token
from calchub.accounts.creation import CreationFailed, NewAccount, create_account
from calchub.accounts.search import SearchError, search_accounts
from calchub.accounts.store import is_valid_uuid
from calchub.api import messages as m
from calchub.api.call import Call
from calchub.api.errors import HandlerError
from calchub.api.registry import handles
from calchub.db.tables import accounts
from calchub.db.types import utcnow


@handles("ping")
async def ping(call: Call, msg: m.Ping) -> dict[str, Any]:
    return {"event": "pong", "now": utcnow()}


@handles("get_usernames")
async def get_usernames(call: Call, msg: m.GetUsernames) -> dict[str, Any]:
    for account_id in msg.account_ids:
        if not is_valid_uuid(account_id):
            listed = json.dumps(msg.account_ids, separators=(",", ":"))
            raise HandlerError(f"invalid uuid {account_id} in account_ids -- {listed}")
    wanted = {a.lower() for a in msg.account_ids}
    usernames: dict[str, dict[str, Any]] = {a: {} for a in msg.account_ids}
    if wanted:
        async with call.hub.engine.connect() as conn:
            rows = await conn.execute(
                select(accounts.c.account_id, accounts.c.first_name, accounts.c.last_name).where(
                    accounts.c.account_id.in_(wanted)
                )
            )
            names = {
                r.account_id: {"first_name": r.first_name, "last_name": r.last_name} for r in rows
            }
        usernames = {a: names.get(a.lower(), {}) for a in msg.account_ids}
    return {"event": "usernames", "usernames": usernames}


@handles("create_account")
async def create_account_handler(call: Call, msg: m.CreateAccount) -> dict[str, Any]:
    new = NewAccount(
        first_name=msg.first_name,
        last_name=msg.last_name,
        email_address=msg.email_address,
        password=msg.password,
        agreed_to_terms=msg.agreed_to_terms,
        token=msg.token,
        usage_intent=msg.usage_intent,
    )
    try:
        created = await create_account(
            call.hub,
            new,
            ip=call.ip,
            creator_is_admin=await call.is_admin(),
            get_api_key=bool(msg.get_api_key),
        )
    except CreationFailed as exc:
        return {"event": "account_creation_failed", "reason": exc.reason}
    reply: dict[str, Any] = {"event": "account_created", "account_id": created.account_id}
    if created.api_key:
        reply["api_key"] = created.api_key
    return reply


@handles("delete_account")
async def delete_account(call: Call, msg: m.DeleteAccount) -> dict[str, Any]:
    if msg.account_id.lower() != call.caller and not await call.is_admin():
        raise HandlerError("you may delete only your own account unless you are an admin")
    await credentials.delete_account(call.hub, msg.account_id)
    return {"event": "account_deleted"}


@handles("change_password")
async def change_password(call: Call, msg: m.ChangePassword) -> dict[str, Any]:
    error = await credentials.change_password(
        call.hub,
        caller=call.caller,
        account_id=msg.account_id,
        old_password=msg.old_password,
        new_password=msg.new_password,
        ip=call.ip,
    )
    return {"event": "changed_password"} | ({"error": error} if error else {})


@handles("change_email_address")
async def change_email_address(call: Call, msg: m.ChangeEmailAddress) -> dict[str, Any]:
    error = await credentials.change_email_address(
        call.hub,
        caller=call.caller,
        account_id=msg.account_id,
        new_email=msg.new_email_address,
        password=msg.password,
        ip=call.ip,
    )
    return {"event": "changed_email_address", "error": error or False}


@handles("forgot_password")
async def forgot_password(call: Call, msg: m.ForgotPassword) -> dict[str, Any]:
    error = await reset.forgot_password(call.hub, msg.email_address, call.ip)
    return {"event": "forgot_password_response", "error": error or False}


@handles("reset_forgot_password")
async def reset_forgot_password(call: Call, msg: m.ResetForgotPassword) -> dict[str, Any]:
    error = await reset.reset_forgot_password(call.hub, msg.reset_code, msg.new_password)
    return {"event": "reset_forgot_password_response", "error": error or False}


@handles("unlink_passport")
async def unlink_passport(call: Call, msg: m.UnlinkPassport) -> dict[str, Any]:
    key = f"{msg.strategy}-{msg.id}"
    async with call.hub.engine.begin() as conn:
        current = await conn.scalar(
            select(accounts.c.passports)
            .where(accounts.c.account_id == call.caller)
            .with_for_update()
        )
        if current and key in current:
            remaining = {k: v for k, v in current.items() if k != key}
            await conn.execute(
                update(accounts)
                .where(accounts.c.account_id == call.caller)
                .values(passports=remaining or None)
            )
    return {"event": "success", "id": msg.id}


@handles("user_auth")
async def user_auth(call: Call, msg: m.UserAuth) -> dict[str, Any]:
    try:
        token = await issue_auth_token(
            call.hub,
            caller=call.caller,
            caller_is_admin=await call.is_admin(),
            target=msg.account_id,
            password=msg.password,
        )
    except AuthRefused as exc:
        raise HandlerError(str(exc)) from None
    return {"event": "user_auth_token", "auth_token": token}


@handles("user_search")
async def user_search(call: Call, msg: m.UserSearch) -> dict[str, Any]:
    if msg.admin and not await call.is_admin():
        raise HandlerError("must be logged in and a member of the admin group")
    try:
        async with call.hub.engine.connect() as conn:
            results = await search_accounts(
                conn, msg.query, admin=msg.admin, active=msg.active, limit=msg.limit
            )
    except SearchError as exc:
        raise HandlerError(str(exc)) from None
    return {"event": "user_search_results", "results": results}
