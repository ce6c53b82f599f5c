"""user_auth: short-lived tokens that sign a browser in as an account."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select

from calchub.accounts.passwords import verify_password
from calchub.accounts.secret import digest, random_base62
from calchub.accounts.store import get_account
from calchub.actor import Actor
from calchub.db.tables import auth_tokens, user_auth_failures
from calchub.db.types import utcnow
from calchub.errors import Refused
from calchub.hub import Hub
from calchub.logs import log_event

TOKEN_LENGTH = 24
TOKEN_LIFETIME = timedelta(hours=12)
LOCKOUT = timedelta(seconds=60)


class AuthRefused(Refused):
    """user_auth said no (locked out, unknown account, wrong password)."""


async def issue_auth_token(hub: Hub, actor: Actor, *, target: str, password: str) -> str:
    caller, caller_is_admin = actor.caller, actor.is_admin
    now = utcnow()
    f = user_auth_failures.c
    async with hub.engine.connect() as conn:
        recent = await conn.scalar(
            select(func.count())
            .select_from(user_auth_failures)
            .where(f.caller_id == caller, f.target_id == target.lower(), f.time > now - LOCKOUT)
        )
        account = await get_account(conn, target)
    if recent:
        raise AuthRefused("banned -- please wait at least 60s before trying again")
    if account is None or account.deleted:
        raise AuthRefused("no such account")
    admin_bypass = password == "" and caller_is_admin
    if not admin_bypass and not await verify_password(account.password_hash, password):
        async with hub.engine.begin() as conn:
            await conn.execute(
                insert(user_auth_failures).values(
                    caller_id=caller, target_id=account.account_id, time=now
                )
            )
        raise AuthRefused("incorrect password")
    token = random_base62(TOKEN_LENGTH)
    async with hub.engine.begin() as conn:
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


async def redeem_auth_token(hub: Hub, token: str) -> str | None:
    """The account a token signs in as, if it is valid and unexpired."""
    async with hub.engine.connect() as conn:
        return await conn.scalar(
            select(auth_tokens.c.account_id).where(
                auth_tokens.c.token_hash == digest(token), auth_tokens.c.expire > utcnow()
            )
        )
