"""user_auth: short-lived tokens that sign a browser in as an account."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, insert, select

from calchub.accounts.passwords import verify_password
from calchub.accounts.secret import digest, random_base62
from calchub.accounts.store import AccountRow, get_account
from calchub.actor import Actor
from calchub.db.tables import accounts, auth_tokens, user_auth_failures
from calchub.db.types import utcnow
from calchub.errors import Refused
from calchub.hub import Hub
from calchub.ids import is_valid_uuid
from calchub.logs import log_event

TOKEN_LENGTH = 24
TOKEN_LIFETIME = timedelta(hours=12)
LOCKOUT = timedelta(seconds=60)
LIMIT_WINDOW = timedelta(hours=1)
MAX_FAILURES_PER_TARGET = 20
MAX_FAILURES_PER_CALLER = 30


class AuthRefused(Refused):
    """user_auth said no (locked out, unknown account, wrong password)."""


async def issue_auth_token(hub: Hub, actor: Actor, *, target: str, password: str) -> str:
    caller, caller_is_admin = actor.caller, actor.is_admin
    now = utcnow()
    if not is_valid_uuid(target):
        raise AuthRefused("no such account")
    account, attempt = await _record_attempt(hub, caller, target.lower(), now)
    admin_bypass = password == "" and caller_is_admin
    if not admin_bypass and not await verify_password(account.password_hash, password):
        # The attempt row stays: it is the failure that locks this pair out for a while.
        raise AuthRefused("incorrect password")
    token = random_base62(TOKEN_LENGTH)
    async with hub.engine.begin() as conn:
        await conn.execute(delete(user_auth_failures).where(user_auth_failures.c.id == attempt))
        await conn.execute(
            insert(auth_tokens).values(
                token_hash=digest(token),
                account_id=account.account_id,
                created_by=caller,
                expire=now + TOKEN_LIFETIME,
            )
        )
        await log_event(
            conn,
            "get_user_auth_token",
            {
                "account_id": caller,
                "user_account_id": account.account_id,
                "is_admin": caller_is_admin,
            },
        )
    return token


async def _record_attempt(
    hub: Hub, caller: str, target: str, now: datetime
) -> tuple[AccountRow, int]:
    """Count the attempt as a failure before the password is checked, in one transaction
    that holds the target's row: concurrent guesses see each other, so only one of them is
    ever verified and the rest are locked out (the row is removed again on success)."""
    f = user_auth_failures.c
    async with hub.engine.begin() as conn:
        # PostgreSQL: one attempt per target at a time. SQLite serialises the insert below.
        await conn.execute(
            select(accounts.c.account_id).where(accounts.c.account_id == target).with_for_update()
        )
        attempt = (
            await conn.execute(
                insert(user_auth_failures)
                .values(caller_id=caller, target_id=target, time=now)
                .returning(f.id)
            )
        ).scalar_one()

        async def failures(*where: ColumnElement[bool], within: timedelta) -> int:
            query = (
                select(func.count())
                .select_from(user_auth_failures)
                .where(f.id != attempt, f.time > now - within, *where)
            )
            return int(await conn.scalar(query) or 0)

        if await failures(f.caller_id == caller, f.target_id == target, within=LOCKOUT):
            raise AuthRefused("banned -- please wait at least 60s before trying again")
        # Wider limits: many callers guessing one account, or one caller guessing many.
        if caller != target and (
            await failures(f.target_id == target, within=LIMIT_WINDOW) >= MAX_FAILURES_PER_TARGET
        ):
            raise AuthRefused("too many failed attempts for this account; try again later")
        if await failures(f.caller_id == caller, within=LIMIT_WINDOW) >= MAX_FAILURES_PER_CALLER:
            raise AuthRefused("too many failed attempts; try again later")
        account = await get_account(conn, target)
        if account is None or account.deleted:
            raise AuthRefused("no such account")
    return account, attempt


async def redeem_auth_token(hub: Hub, token: str) -> str | None:
    """The account a token signs in as, if it is valid and unexpired."""
    async with hub.engine.connect() as conn:
        return await conn.scalar(
            select(auth_tokens.c.account_id).where(
                auth_tokens.c.token_hash == digest(token), auth_tokens.c.expire > utcnow()
            )
        )
