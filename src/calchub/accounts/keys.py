"""API keys, stored only as a SHA-256 digest.

Two formats live side by side. v1 keys (`sk_` + 24 base62 characters) are made when an
account is created through the v1 API. Current keys follow CoCalc's format: `sk-` + 16
alphanumerics + the row id in base62, zero-padded to 6 characters; they may carry a name,
an expiry and a project scope. Both are found by their digest, so lookup is one indexed
read whatever the format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from calchub.access import GROUPS_THAT_WRITE, member_group
from calchub.accounts.secret import digest, random_base62, same
from calchub.db.tables import accounts, api_keys
from calchub.db.types import utcnow

KEY_PREFIX = "sk_"
KEY_RANDOM_CHARS = 24
CURRENT_PREFIX = "sk-"
CURRENT_RANDOM_CHARS = 16
ID_CHARS = 6
# CoCalc's base62 alphabet for the id suffix (digits first, unlike secret.BASE62).
ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_KEY_LENGTH = 200
# Recording last use on every request would turn each read into a write; once a minute is plenty.
_LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class KeyOwner:
    account_id: str
    banned: bool
    is_admin: bool
    # Set for a project-scoped key: the request acts as this project only.
    project_id: str | None = None


@dataclass(frozen=True)
class KeyInfo:
    id: int
    account_id: str
    prefix: str
    name: str
    created: datetime
    last_used: datetime | None
    expire: datetime | None
    project_id: str | None

    @property
    def trunc(self) -> str:
        """CoCalc's display form: first 3 characters, `...`, last 6 (v1 keys only keep their
        first characters, so they show those)."""
        return self.prefix if "..." in self.prefix else self.prefix + "..."


def generate_key() -> str:
    return KEY_PREFIX + random_base62(KEY_RANDOM_CHARS)


def base62_id(key_id: int) -> str:
    digits = ""
    while True:
        key_id, rest = divmod(key_id, 62)
        digits = ID_ALPHABET[rest] + digits
        if key_id == 0:
            return digits.rjust(ID_CHARS, "0")


def current_key(key_id: int) -> str:
    return CURRENT_PREFIX + random_base62(CURRENT_RANDOM_CHARS) + base62_id(key_id)


def truncated(key: str) -> str:
    return key[:3] + "..." + key[-6:]


async def create_api_key(conn: AsyncConnection, account_id: str, name: str = "") -> str:
    """Store a new v1-format key for the account and return it; this is the only time it is
    visible."""
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


async def create_current_key(
    conn: AsyncConnection,
    account_id: str,
    *,
    name: str,
    expire: datetime | None,
    project_id: str | None,
) -> tuple[KeyInfo, str]:
    """Store a new key in CoCalc's current format and return its row and the secret, which
    is visible only now. The id is part of the key, so the row is written first with a
    placeholder digest of a throwaway secret (unique, and matching no key anyone holds)."""
    now = utcnow()
    result = await conn.execute(
        insert(api_keys).values(
            account_id=account_id,
            key_hash=digest(random_base62(40)),
            prefix="",
            name=name,
            created=now,
            expire=expire,
            project_id=project_id,
        )
    )
    primary_key = result.inserted_primary_key
    assert primary_key is not None  # a single-row insert always has one
    key_id = int(primary_key[0])
    key = current_key(key_id)
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(key_hash=digest(key), prefix=truncated(key))
    )
    info = KeyInfo(key_id, account_id, truncated(key), name, now, None, expire, project_id)
    return info, key


def _plausible(key: str) -> bool:
    if len(key) > MAX_KEY_LENGTH:
        return False
    if key.startswith(KEY_PREFIX):
        return True
    # CoCalc's rule for current keys: `sk-`, at least 9 characters, an id in the last 6.
    return key.startswith(CURRENT_PREFIX) and len(key) >= 9


@dataclass(frozen=True)
class LiveKey:
    """A key that works right now: whom it stands for, and what a cache needs to know."""

    owner: KeyOwner
    key_id: int
    expire: datetime | None
    last_used: datetime


async def lookup_api_key(engine: AsyncEngine, key: str) -> KeyOwner | None:
    """The live account owning `key`, with its ban and admin status, and the project it is
    scoped to, if any. Straight from the database: revocation, deletion, expiry, bans, group
    changes and leaving a project take effect on the very next request, on every hub process
    (accounts/key_cache.py keeps answers only while none of those can have happened)."""
    live = await find_live_key(engine, key)
    return None if live is None else live.owner


async def find_live_key(engine: AsyncEngine, key: str) -> LiveKey | None:
    if not _plausible(key):
        return None
    key_hash = digest(key)
    query = (
        select(
            api_keys.c.id,
            api_keys.c.key_hash,
            api_keys.c.last_used,
            api_keys.c.expire,
            api_keys.c.project_id,
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
        still_member = row.project_id is None or (
            await member_group(conn, row.project_id, row.account_id) in GROUPS_THAT_WRITE
        )
    now = utcnow()
    if not still_member or (row.expire is not None and row.expire <= now):
        # As CoCalc does: a key that can never work again is removed at its first refusal.
        async with engine.begin() as conn:
            await conn.execute(delete(api_keys).where(api_keys.c.id == row.id))
        return None
    last_used = row.last_used
    if last_used is None or needs_use_recorded(last_used, now):
        await record_use(engine, row.id, now)
        last_used = now
    owner = KeyOwner(
        account_id=row.account_id,
        banned=bool(row.banned),
        is_admin="admin" in (row.groups or []),
        project_id=row.project_id,
    )
    return LiveKey(owner, row.id, row.expire, last_used)


def needs_use_recorded(last_used: datetime, now: datetime) -> bool:
    return now - last_used > _LAST_USED_RESOLUTION


async def record_use(engine: AsyncEngine, key_id: int, now: datetime) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used=now))


def _info(r: Row[Any]) -> KeyInfo:
    return KeyInfo(
        r.id, r.account_id, r.prefix, r.name, r.created, r.last_used, r.expire, r.project_id
    )


async def list_api_keys(conn: AsyncConnection, account_id: str | None = None) -> list[KeyInfo]:
    query = select(api_keys).order_by(api_keys.c.id)
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    return [_info(r) for r in (await conn.execute(query)).all()]


async def find_keys(
    conn: AsyncConnection,
    *,
    account_id: str | None = None,
    project_id: str | None = None,
    key_id: int | None = None,
) -> list[KeyInfo]:
    """Keys newest first: an account's own (not project-scoped) keys, or all keys of a
    project whoever made them; optionally only the one with `key_id`."""
    query = select(api_keys).order_by(api_keys.c.created.desc(), api_keys.c.id.desc())
    if project_id is not None:
        query = query.where(api_keys.c.project_id == project_id)
    else:
        query = query.where(api_keys.c.account_id == account_id, api_keys.c.project_id.is_(None))
    if key_id is not None:
        query = query.where(api_keys.c.id == key_id)
    return [_info(r) for r in (await conn.execute(query)).all()]


async def keys_made_by(conn: AsyncConnection, account_id: str) -> list[KeyInfo]:
    """Every key the account made, for itself or scoped to a project, newest first."""
    query = (
        select(api_keys)
        .where(api_keys.c.account_id == account_id)
        .order_by(api_keys.c.created.desc(), api_keys.c.id.desc())
    )
    return [_info(r) for r in (await conn.execute(query)).all()]


async def count_keys(conn: AsyncConnection, account_id: str) -> int:
    found = await conn.scalar(
        select(func.count()).select_from(api_keys).where(api_keys.c.account_id == account_id)
    )
    return int(found or 0)


async def get_key(conn: AsyncConnection, key_id: int) -> KeyInfo | None:
    row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
    return None if row is None else _info(row)


async def change_key(conn: AsyncConnection, key_id: int, values: dict[str, object]) -> None:
    await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))


async def revoke_api_key(conn: AsyncConnection, key_id: int) -> bool:
    result = await conn.execute(delete(api_keys).where(api_keys.c.id == key_id))
    return result.rowcount > 0


async def revoke_all_api_keys(conn: AsyncConnection, account_id: str) -> int:
    result = await conn.execute(delete(api_keys).where(api_keys.c.account_id == account_id))
    return result.rowcount
