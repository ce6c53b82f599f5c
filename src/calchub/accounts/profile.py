"""What an account shows of itself: its public profile (to anyone who knows its id), its
private one (to itself), its email address (to admins and partners), and the account's own
housekeeping: signing every browser out and asking again to verify its address."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from calchub.accounts.creation import email_challenge, send_verification
from calchub.accounts.sessions import end_all_sessions
from calchub.actor import Actor
from calchub.db.tables import accounts
from calchub.errors import Invalid, NotSignedIn, Refused
from calchub.hub import Hub
from calchub.ids import is_valid_uuid


def _own_account(actor: Actor, refusal: str = "must be signed in") -> str:
    if actor.account_id is None or actor.project_id is not None:
        raise NotSignedIn(refusal)
    return actor.account_id


async def _row(hub: Hub, account_id: str) -> Any:
    a = accounts.c
    async with hub.engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    a.first_name,
                    a.last_name,
                    a.profile,
                    a.name,
                    a.groups,
                    a.email_address,
                    a.passports,
                    a.deleted,
                ).where(a.account_id == account_id)
            )
        ).first()
    if row is None or row.deleted:
        raise Invalid(f"no account with id {account_id}")
    return row


def _public(account_id: str, row: Any) -> dict[str, Any]:
    shown = row.profile or {}
    return {
        "account_id": account_id,
        "first_name": row.first_name if row.first_name is not None else "Anonymous",
        "last_name": row.last_name if row.last_name is not None else "User",
        "image": shown.get("image"),
        "color": shown.get("color"),
        "name": row.name,
    }


async def profile(hub: Hub, actor: Actor, account_id: str | None) -> dict[str, Any]:
    """The public profile of `account_id`, or the caller's private one (nothing for an
    anonymous caller)."""
    if account_id is not None:
        if not is_valid_uuid(account_id):
            raise Invalid(f"no account with id {account_id}")
        wanted = account_id.lower()
        return _public(wanted, await _row(hub, wanted))
    if actor.account_id is None or actor.project_id is not None:
        return {}
    row = await _row(hub, actor.account_id)
    groups = row.groups or []
    return {
        **_public(actor.account_id, row),
        "is_admin": "admin" in groups,
        "is_partner": "partner" in groups,
        "is_anonymous": not row.email_address and not row.passports,
        "email_address": row.email_address,
    }


async def email_address_of(hub: Hub, actor: Actor, account_id: str) -> str | None:
    """Only admins and partners may look up addresses (nobody may harvest them)."""
    caller = _own_account(
        actor, "you must be an admin or partner to get the email address of any account_id"
    )
    async with hub.engine.connect() as conn:
        groups = await conn.scalar(select(accounts.c.groups).where(accounts.c.account_id == caller))
        if not ({"admin", "partner"} & set(groups or [])):
            raise Refused(
                "you must be an admin or partner to get the email address of any account_id"
            )
        if not is_valid_uuid(account_id):
            return None
        found = await conn.scalar(
            select(accounts.c.email_address).where(accounts.c.account_id == account_id.lower())
        )
    return None if found is None else str(found)


async def sign_out_everywhere(hub: Hub, actor: Actor) -> None:
    """End every web session of the caller's account (API keys are not sessions)."""
    caller = _own_account(actor)
    async with hub.engine.begin() as conn:
        await end_all_sessions(conn, caller)


async def resend_verification(hub: Hub, actor: Actor) -> None:
    """A fresh verification link for the caller's address; one already verified, or none at
    all, is refused."""
    caller = _own_account(actor)
    a = accounts.c
    async with hub.engine.begin() as conn:
        row = (
            await conn.execute(
                select(a.email_address, a.email_address_verified).where(a.account_id == caller)
            )
        ).first()
        if row is None or not row.email_address:
            raise Invalid("no email address")
        if row.email_address in (row.email_address_verified or {}):
            raise Invalid("email address is already verified")
        token, challenge = email_challenge(row.email_address, actor.now)
        await conn.execute(
            update(accounts).where(a.account_id == caller).values(email_address_challenge=challenge)
        )
    await send_verification(hub, row.email_address, token)
