"""v1 handlers for the account events."""

from __future__ import annotations

from collections.abc import Awaitable

from calchub.accounts import credentials, reset
from calchub.accounts.auth_tokens import issue_auth_token
from calchub.accounts.creation import CreationFailed, NewAccount, create_account
from calchub.accounts.search import user_search
from calchub.accounts.store import usernames
from calchub.api.v1 import messages as m
from calchub.api.v1.call import Call
from calchub.api.v1.registry import Fields, Reply, handles
from calchub.errors import DomainError


@handles("ping")
async def ping(call: Call, msg: m.Ping) -> Fields:
    return {"now": call.actor.now}


@handles("get_usernames")
async def get_usernames(call: Call, msg: m.GetUsernames) -> Fields:
    return {"usernames": await usernames(call.hub.engine, msg.account_ids)}


@handles("create_account")
async def create_account_handler(call: Call, msg: m.CreateAccount) -> Fields | Reply:
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
            ip=call.actor.ip,
            creator_is_admin=call.actor.is_admin,
            get_api_key=bool(msg.get_api_key),
        )
    except CreationFailed as exc:
        return Reply("account_creation_failed", {"reason": exc.reason})
    reply: Fields = {"account_id": created.account_id}
    if created.api_key:
        reply["api_key"] = created.api_key
    return reply


@handles("delete_account")
async def delete_account(call: Call, msg: m.DeleteAccount) -> Fields:
    await credentials.delete_account(call.hub, call.actor, msg.account_id)
    return {}


async def _error_field(work: Awaitable[None], success: Fields) -> Fields:
    """These events answer their own event with an `error` field, not an error event."""
    try:
        await work
    except DomainError as exc:
        return {"error": exc.detail}
    return success


@handles("change_password")
async def change_password(call: Call, msg: m.ChangePassword) -> Fields:
    work = credentials.change_password(
        call.hub,
        call.actor,
        account_id=msg.account_id,
        old_password=msg.old_password,
        new_password=msg.new_password,
    )
    return await _error_field(work, {})


@handles("change_email_address")
async def change_email_address(call: Call, msg: m.ChangeEmailAddress) -> Fields:
    work = credentials.change_email_address(
        call.hub,
        call.actor,
        account_id=msg.account_id,
        new_email=msg.new_email_address,
        password=msg.password,
    )
    return await _error_field(work, {"error": False})


@handles("forgot_password")
async def forgot_password(call: Call, msg: m.ForgotPassword) -> Fields:
    work = reset.forgot_password(call.hub, call.actor, msg.email_address)
    return await _error_field(work, {"error": False})


@handles("reset_forgot_password")
async def reset_forgot_password(call: Call, msg: m.ResetForgotPassword) -> Fields:
    work = reset.reset_forgot_password(call.hub, msg.reset_code, msg.new_password)
    return await _error_field(work, {"error": False})


@handles("unlink_passport")
async def unlink_passport(call: Call, msg: m.UnlinkPassport) -> Fields:
    await credentials.unlink_passport(call.hub, call.actor, msg.strategy, msg.id)
    return {}


@handles("user_auth")
async def user_auth(call: Call, msg: m.UserAuth) -> Fields:
    token = await issue_auth_token(
        call.hub, call.actor, target=msg.account_id, password=msg.password
    )
    return {"auth_token": token}


@handles("user_search")
async def user_search_handler(call: Call, msg: m.UserSearch) -> Fields:
    results = await user_search(
        call.hub, call.actor, msg.query, admin=msg.admin, active=msg.active, limit=msg.limit
    )
    return {"results": results}
