"""Changing a password or email address, unlinking a sign-in method, and deleting an account."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from calchub.access import may_act_for_account
from calchub.accounts.creation import email_challenge, has_control_characters, send_verification
from calchub.accounts.keys import revoke_all_api_keys
from calchub.accounts.passwords import hash_password, password_problem, verify_password
from calchub.accounts.sessions import end_all_sessions
from calchub.accounts.store import get_account, is_valid_email
from calchub.actor import Actor
from calchub.db.tables import accounts, auth_tokens, password_reset
from calchub.errors import Conflict, Invalid, Refused
from calchub.hub import Hub
from calchub.logs import log_event

EMAIL_TAKEN = "email_already_taken"


async def _password_matches(password_hash: str | None, given: str) -> bool:
    # An account without a password (e.g. created by an admin for SSO) accepts any password,
    # as CoCalc does; the change then sets one.
    if password_hash is None:
        return True
    return await verify_password(password_hash, given)


async def change_password(
    hub: Hub, actor: Actor, *, account_id: str, old_password: str, new_password: str
) -> None:
    """Raises Refused ("invalid old password") or Invalid (`detail` {"new_password": ...})."""
    caller, ip = actor.caller, actor.ip
    async with hub.engine.connect() as conn:
        account = await get_account(conn, caller)
    if (
        account is None
        or account_id.lower() != caller
        or not await _password_matches(account.password_hash, old_password)
    ):
        async with hub.engine.begin() as conn:
            await log_event(
                conn,
                "change_password",
                {"account_id": caller, "ip_address": ip, "error": "invalid old password"},
            )
        raise Refused("invalid old password")
    problem = password_problem(new_password)
    if problem:
        raise Invalid(problem, detail={"new_password": problem})
    new_hash = await hash_password(new_password)
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(accounts).where(accounts.c.account_id == caller).values(password_hash=new_hash)
        )
        # A password change signs out every browser session, made from tokens or in pages.
        await conn.execute(delete(auth_tokens).where(auth_tokens.c.account_id == caller))
        await end_all_sessions(conn, caller)
        await log_event(conn, "change_password", {"account_id": caller, "ip_address": ip})


async def change_email_address(
    hub: Hub, actor: Actor, *, account_id: str, new_email: str, password: str
) -> None:
    """Raises Invalid, Refused or Conflict with CoCalc's error codes as messages."""
    caller, ip = actor.caller, actor.ip
    new_email = new_email.lower()
    if not is_valid_email(new_email) or has_control_characters(new_email):
        raise Invalid("email_invalid")
    if account_id.lower() != caller:
        raise Refused("account_id in mesg is not what user is signed in as")
    async with hub.engine.connect() as conn:
        account = await get_account(conn, caller)
    if account is None or not await _password_matches(account.password_hash, password):
        raise Refused("invalid_password")
    if account.email_address == new_email:
        return
    verify_token, challenge = email_challenge(new_email, actor.now)
    values: dict[str, object] = {"email_address": new_email, "email_address_challenge": challenge}
    if account.password_hash is None and password and password_problem(password) is None:
        values["password_hash"] = await hash_password(password)
    try:
        async with hub.engine.begin() as conn:
            taken = await conn.scalar(
                select(accounts.c.account_id).where(accounts.c.email_address == new_email)
            )
            if taken:
                raise Conflict(EMAIL_TAKEN)
            await conn.execute(
                update(accounts).where(accounts.c.account_id == caller).values(**values)
            )
            if account.email_address:
                # Reset codes sent to the old address must not outlive the change.
                await conn.execute(
                    delete(password_reset).where(
                        password_reset.c.email_address == account.email_address
                    )
                )
            await log_event(
                conn,
                "change_email_address",
                {"account_id": caller, "client_ip_address": ip, "new_email_address": new_email},
            )
    except IntegrityError:
        raise Conflict(EMAIL_TAKEN) from None
    # Invitations to the new address wait until its owner confirms it (verify_email).
    await send_verification(hub, new_email, verify_token)


async def unlink_passport(hub: Hub, actor: Actor, strategy: str, passport_id: str | int) -> None:
    """Forget one external sign-in method of the caller's account (nothing if unknown)."""
    caller = actor.caller
    key = f"{strategy}-{passport_id}"
    async with hub.engine.begin() as conn:
        current = await conn.scalar(
            select(accounts.c.passports).where(accounts.c.account_id == caller).with_for_update()
        )
        if current and key in current:
            remaining = {k: v for k, v in current.items() if k != key}
            await conn.execute(
                update(accounts)
                .where(accounts.c.account_id == caller)
                .values(passports=remaining or None)
            )


async def delete_account(hub: Hub, actor: Actor, account_id: str) -> None:
    """Mark deleted, free the address, and revoke every credential at once. Only the account
    itself or an admin may."""
    if not may_act_for_account(actor, account_id):
        raise Refused("you may delete only your own account unless you are an admin")
    async with hub.engine.begin() as conn:
        account = await get_account(conn, account_id)
        if account is None or account.deleted:
            return
        await conn.execute(
            update(accounts)
            .where(accounts.c.account_id == account.account_id)
            .values(
                deleted=True,
                email_address_before_delete=account.email_address,
                email_address=None,
                passports=None,
                password_hash=None,
                email_address_challenge=None,
            )
        )
        await revoke_all_api_keys(conn, account.account_id)
        await conn.execute(
            delete(auth_tokens).where(auth_tokens.c.account_id == account.account_id)
        )
        await end_all_sessions(conn, account.account_id)
        if account.email_address:
            await conn.execute(
                delete(password_reset).where(
                    password_reset.c.email_address == account.email_address
                )
            )
        await log_event(conn, "delete_account", {"account_id": account.account_id})
