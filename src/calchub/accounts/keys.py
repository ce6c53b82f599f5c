"""API keys: `sk_` + 24 base62 characters, stored as a SHA-256 digest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from calchub.accounts.secret import digest, random_base62, same
from calchub.db.tables import accounts, api_keys
from calchub.db.types import utcnow

KEY_PREFIX = "sk_"
KEY_RANDOM_CHARS = 24
# Recording last use on every request would turn each read into a write; once a minute is plenty.
_LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class KeyOwner:
    account_id: str
    banned: bool
    is_admin: bool


@dataclass(frozen=True)
class KeyInfo:
    id: int
    account_id: str
    prefix: str
    name: str
    created: datetime
    last_used: datetime | None


def generate_key() -> str:
    return KEY_PREFIX + random_base62(KEY_RANDOM_CHARS)


async def create_api_key(conn: AsyncConnection, account_id: str, name: str = "") -> str:
    """Store a new key for the account and return it; this is the only time it is visible."""
    key = generate_key()
    await conn.execute(
        insert(api_keys).values(
            account_id=account_id,
            key_hash=digest(key),
            prefix=key[: len(KEY_PREFIX) + 4],
            name=name,
            created=utcnow(),
        )
    )
    return key


async def lookup_api_key(engine: AsyncEngine, key: str) -> KeyOwner | None:
    """The live account owning `key`, with its ban and admin status. Never cached, so
    revocation, deletion, bans and group changes take effect on the very next request, on
    every hub process."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    key_hash = digest(key)
    query = (
        select(
            api_keys.c.id,
            api_keys.c.key_hash,
            api_keys.c.last_used,
            accounts.c.account_id,
            accounts.c.banned,
            accounts.c.groups,
        )
        .join(accounts, accounts.c.account_id == api_keys.c.account_id)
        .where(api_keys.c.key_hash == key_hash, accounts.c.deleted.is_(False))
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None or not same(row.key_hash, key_hash):
        return None
    now = utcnow()
    if row.last_used is None or now - row.last_used > _LAST_USED_RESOLUTION:
        async with engine.begin() as conn:
            await conn.execute(
                update(api_keys).where(api_keys.c.id == row.id).values(last_used=now)
            )
    return KeyOwner(
        account_id=row.account_id,
        banned=bool(row.banned),
        is_admin="admin" in (row.groups or []),
    )


async def list_api_keys(conn: AsyncConnection, account_id: str | None = None) -> list[KeyInfo]:
    query = select(api_keys).order_by(api_keys.c.id)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    rows = (await conn.execute(query)).all()
    return [KeyInfo(r.id, r.account_id, r.prefix, r.name, r.created, r.last_used) for r in rows]


async def revoke_api_key(conn: AsyncConnection, key_id: int) -> bool:
    result = await conn.execute(delete(api_keys).where(api_keys.c.id == key_id))
    return result.rowcount > 0


async def revoke_all_api_keys(conn: AsyncConnection, account_id: str) -> int:
    result = await conn.execute(delete(api_keys).where(api_keys.c.account_id == account_id))
    return result.rowcount
