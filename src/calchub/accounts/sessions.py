"""Signing a browser in with an email address and password: rate-limited attempts, and
sessions whose token (held in a cookie) is stored only as a digest, expire, and end at
sign-out, at a password change or reset, and when the account is deleted (a ban suspends
them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.accounts.passwords import hash_password, verify_password
from calchub.accounts.secret import digest, random_base62
from calchub.accounts.store import AccountRow, is_valid_email
from calchub.actor import Actor
from calchub.db.tables import accounts, sign_in_failures, web_sessions
from calchub.db.types import utcnow
from calchub.errors import Invalid, LimitExceeded, Refused
from calchub.hub import Hub
from calchub.logs import log_event

TOKEN_LENGTH = 40
ID_LENGTH = 20
SESSION_LIFETIME = timedelta(days=7)
MAX_PASSWORD_LENGTH = 1024
# CoCalc's sign-in limits, counted in the database so that every hub sees every attempt.
PER_ADDRESS = ((timedelta(minutes=1), 5), (timedelta(hours=1), 50))
PER_IP = ((timedelta(minutes=1), 30), (timedelta(hours=1), 200))

WRONG = "The email address or the password is not right."
BANNED = "This account is banned. If this is a mistake, please contact {help_email}."
TOO_MANY_FOR_ADDRESS = (
    'Too many attempts {per} to sign in as "{email}". Wait {wait}, then try again.'
)
TOO_MANY_FROM_IP = (
    "Too many attempts {per} to sign in from your computer. Wait {wait}, then try again."
)


_STAND_IN: list[str] = []


async def _stand_in_hash() -> str:
    """A hash no password matches, checked when the address has no account (or no password),
    so that an answer's timing does not tell which addresses have accounts."""
    if not _STAND_IN:
        _STAND_IN.append(await hash_password(random_base62(32)))
    return _STAND_IN[0]


@dataclass(frozen=True)
class Session:
    id: str
    account_id: str
    email_address: str | None
    first_name: str | None
    last_name: str | None
    is_admin: bool
    expire: datetime

    def actor(self, ip: str) -> Actor:
        return Actor(account_id=self.account_id, is_admin=self.is_admin, ip=ip)


def _words(within: timedelta) -> tuple[str, str]:
    if within <= timedelta(minutes=1):
        return "per minute", "one minute"
    return "per hour", "about an hour"


async def _record_attempt(conn: AsyncConnection, email: str, ip: str, now: datetime) -> int:
    """Count the attempt as a failure before the password is checked: concurrent guesses see
    each other. The row is removed again when the password is right."""
    f = sign_in_failures.c
    attempt = (
        await conn.execute(
            insert(sign_in_failures)
            .values(email_address=email, ip_address=ip, time=now)
            .returning(f.id)
        )
    ).scalar_one()

    async def failures(where: ColumnElement[bool], within: timedelta) -> int:
        query = (
            select(func.count())
            .select_from(sign_in_failures)
            .where(f.id != attempt, f.time > now - within, where)
        )
        return int(await conn.scalar(query) or 0)

    for within, limit in PER_ADDRESS:
        if await failures(f.email_address == email, within) >= limit:
            per, wait = _words(within)
            raise LimitExceeded(TOO_MANY_FOR_ADDRESS.format(per=per, email=email, wait=wait))
    for within, limit in PER_IP:
        if await failures(f.ip_address == ip, within) >= limit:
            per, wait = _words(within)
            raise LimitExceeded(TOO_MANY_FROM_IP.format(per=per, wait=wait))
    return int(attempt)


async def sign_in(hub: Hub, *, email: str, password: str, ip: str) -> tuple[str, Session]:
    """A new session for the account with this address and password: its token (for the
    cookie, never stored) and what it signs in as. Raises Invalid, Refused or LimitExceeded."""
    email = email.strip().lower()
    if not is_valid_email(email):
        raise Invalid("Enter a valid email address.")
    if not password or len(password) > MAX_PASSWORD_LENGTH:
        raise Refused(WRONG)
    ip = ip[:64]
    now = utcnow()
    async with hub.engine.begin() as conn:
        # PostgreSQL: attempts on one address wait for each other (SQLite serialises writes).
        await conn.execute(
            select(accounts.c.account_id).where(accounts.c.email_address == email).with_for_update()
        )
        attempt = await _record_attempt(conn, email, ip, now)
        row = (
            await conn.execute(
                select(
                    accounts.c.account_id,
                    accounts.c.password_hash,
                    accounts.c.first_name,
                    accounts.c.last_name,
                    accounts.c.groups,
                    accounts.c.banned,
                ).where(accounts.c.email_address == email, accounts.c.deleted.is_(False))
            )
        ).first()
    stored = row.password_hash if row is not None and row.password_hash else None
    matches = await verify_password(stored or await _stand_in_hash(), password)
    if row is None or stored is None or not matches:
        # The attempt row stays: it counts against the address and the client.
        raise Refused(WRONG)
    if row.banned:
        raise Refused(BANNED.format(help_email=await hub.site.get("help_email")))
    token = random_base62(TOKEN_LENGTH)
    session_id = random_base62(ID_LENGTH)
    expire = now + SESSION_LIFETIME
    async with hub.engine.begin() as conn:
        await conn.execute(delete(sign_in_failures).where(sign_in_failures.c.id == attempt))
        # Sessions of this account that ran out, and failures nobody counts any more.
        await conn.execute(
            delete(web_sessions).where(
                web_sessions.c.account_id == row.account_id, web_sessions.c.expire <= now
            )
        )
        await conn.execute(
            delete(sign_in_failures).where(
                sign_in_failures.c.email_address == email,
                sign_in_failures.c.time <= now - PER_ADDRESS[-1][0],
            )
        )
        await conn.execute(
            insert(web_sessions).values(
                token_hash=digest(token),
                id=session_id,
                account_id=row.account_id,
                created=now,
                expire=expire,
                ip_address=ip,
            )
        )
        await log_event(conn, "sign_in", {"account_id": row.account_id, "ip_address": ip})
    session = Session(
        id=session_id,
        account_id=row.account_id,
        email_address=email,
        first_name=row.first_name,
        last_name=row.last_name,
        is_admin="admin" in (row.groups or []),
        expire=expire,
    )
    return token, session


async def session_for(hub: Hub, token: str) -> Session | None:
    """The live session a cookie's token stands for, if any."""
    if not token or len(token) > 2 * TOKEN_LENGTH:
        return None
    s, a = web_sessions.c, accounts.c
    async with hub.engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    s.id,
                    s.account_id,
                    s.expire,
                    a.email_address,
                    a.first_name,
                    a.last_name,
                    a.groups,
                )
                .select_from(web_sessions.join(accounts, a.account_id == s.account_id))
                .where(
                    s.token_hash == digest(token),
                    s.expire > utcnow(),
                    a.deleted.is_(False),
                    a.banned.is_(False),
                )
            )
        ).first()
    if row is None:
        return None
    return Session(
        id=row.id,
        account_id=row.account_id,
        email_address=row.email_address,
        first_name=row.first_name,
        last_name=row.last_name,
        is_admin="admin" in (row.groups or []),
        expire=row.expire,
    )


async def sign_out(hub: Hub, token: str) -> None:
    async with hub.engine.begin() as conn:
        await conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == digest(token)))


@dataclass(frozen=True)
class SessionListing:
    """What is stored about one of an account's sessions (never its token or digest)."""

    id: str
    created: datetime
    expire: datetime
    ip_address: str


async def live_sessions(hub: Hub, account_id: str) -> list[SessionListing]:
    """The account's sessions that have not run out, newest first."""
    s = web_sessions.c
    async with hub.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(s.id, s.created, s.expire, s.ip_address)
                .where(s.account_id == account_id, s.expire > utcnow())
                .order_by(s.created.desc(), s.id)
            )
        ).all()
    return [SessionListing(r.id, r.created, r.expire, r.ip_address) for r in rows]


async def end_session(hub: Hub, account_id: str, session_id: str) -> bool:
    """Sign one of the account's browsers out; False when the account has no such session
    (another account's session is left alone, and said about the same way)."""
    s = web_sessions.c
    async with hub.engine.begin() as conn:
        result = await conn.execute(
            delete(web_sessions).where(s.account_id == account_id, s.id == session_id)
        )
    return bool(result.rowcount)


async def end_other_sessions(hub: Hub, account_id: str, keep_id: str) -> int:
    """Sign every browser of the account out but the one whose session is `keep_id`."""
    s = web_sessions.c
    async with hub.engine.begin() as conn:
        result = await conn.execute(
            delete(web_sessions).where(s.account_id == account_id, s.id != keep_id)
        )
    return int(result.rowcount or 0)


async def end_all_sessions(conn: AsyncConnection, account_id: str) -> None:
    """Sign every browser of the account out (its password changed, or it is gone)."""
    await conn.execute(delete(web_sessions).where(web_sessions.c.account_id == account_id))


async def forget_old_sessions(hub: Hub) -> None:
    """Remove expired sessions and failed sign-ins no limit counts any more (a scheduled
    duty: deleting the same rows twice is harmless, so every hub may do it)."""
    now = utcnow()
    oldest_counted = now - max(PER_ADDRESS[-1][0], PER_IP[-1][0])
    async with hub.engine.begin() as conn:
        await conn.execute(delete(web_sessions).where(web_sessions.c.expire <= now))
        await conn.execute(
            delete(sign_in_failures).where(sign_in_failures.c.time <= oldest_counted)
        )


def display_name(account: AccountRow | Session) -> str:
    name = " ".join(p for p in (account.first_name, account.last_name) if p)
    return name or account.email_address or account.account_id
