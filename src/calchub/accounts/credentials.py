"""Changing a password or email address, and deleting an account."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from calchub.accounts.creation import has_control_characters
from calchub.accounts.keys import revoke_all_api_keys
from calchub.accounts.passwords import hash_password, password_problem, verify_password
from calchub.accounts.store import get_account, is_valid_email
from calchub.db.tables import accounts, auth_tokens, password_reset
from calchub.hub import Hub
from calchub.logs import log_event
from calchub.projects.collaborators import run_creation_actions


async def _password_matches(password_hash: str | None, given: str) -> bool:
    # An account without a password (e.g. created by an admin for SSO) accepts any password,
    # as CoCalc does; the change then sets one.
    if password_hash is None:
        return True
    return await verify_password(password_hash, given)


async def change_password(
    hub: Hub, *, caller: str, account_id: str, old_password: str, new_password: str, ip: str
) -> str | dict[str, str] | None:
    """None on success, else the error for the `changed_password` event."""
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
        return "invalid old password"
    problem = password_problem(new_password)
    if problem:
        return {"new_password": problem}
    new_hash = await hash_password(new_password)
    async with hub.engine.begin() as conn:
        await conn.execute(
            update(accounts).where(accounts.c.account_id == caller).values(password_hash=new_hash)
        )
        # A password change signs out every browser session made from tokens.
        await conn.execute(delete(auth_tokens).where(auth_tokens.c.account_id == caller))
        await log_event(conn, "change_password", {"account_id": caller, "ip_address": ip})
    return None


async def change_email_address(
    hub: Hub, *, caller: str, account_id: str, new_email: str, password: str, ip: str
) -> str | None:
    """None on success, else the error string for `changed_email_address`."""
    new_email = new_email.lower()
    if not is_valid_email(new_email) or has_control_characters(new_email):
        return "email_invalid"
    if account_id.lower() != caller:
        return "account_id in mesg is not what user is signed in as"
    async with hub.engine.connect() as conn:
        account = await get_account(conn, caller)
    if account is None or not await _password_matches(account.password_hash, password):
        return "invalid_password"
    if account.email_address == new_email:
        return None
    values: dict[str, object] = {"email_address": new_email}
    if account.password_hash is None and password and password_problem(password) is None:
        values["password_hash"] = await hash_password(password)
    try:
        async with hub.engine.begin() as conn:
            taken = await conn.scalar(
                select(accounts.c.account_id).where(accounts.c.email_address == new_email)
            )
            if taken:
                return "email_already_taken"
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
        return "email_already_taken"
    await run_creation_actions(hub.engine, caller, new_email)
    return None


async def delete_account(hub: Hub, account_id: str) -> None:
    """Mark deleted, free the address, and revoke every credential at once."""
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
        if account.email_address:
            await conn.execute(
                delete(password_reset).where(
                    password_reset.c.email_address == account.email_address
                )
            )
        await log_event(conn, "delete_account", {"account_id": account.account_id})
