"""The hub's cache of execute results, keyed as CoCalc keys it: a repeated request (same
history, input, kernel, project and path) is answered without running, even for code
whose result would differ; `noCache` runs it again."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.db.tables import jupyter_api_cache
from calchub.db.types import utcnow
from calchub.hub import Hub

KEEP = timedelta(days=30)


@dataclass(frozen=True)
class CachedResult:
    id: int
    output: list[dict[str, Any]]
    created: datetime


def cache_key(
    history: list[str] | None, input: str, kernel: str, project_id: str | None, path: str | None
) -> str:
    """sha1 of JavaScript's JSON.stringify([history trimmed, input trimmed, kernel lower-case
    and trimmed, project_id, path]), absent values as null."""
    parts = [
        None if history is None else [h.strip() for h in history],
        input.strip(),
        kernel.lower().strip(),
        project_id,
        path,
    ]
    text = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


async def lookup(engine: AsyncEngine, key: str, now: datetime) -> CachedResult | None:
    """The cached result (its expiry pushed back), or None."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(select(jupyter_api_cache).where(jupyter_api_cache.c.hash == key))
        ).first()
        if row is None:
            return None
        if row.expire <= now:
            await conn.execute(delete(jupyter_api_cache).where(jupyter_api_cache.c.id == row.id))
            return None
        await conn.execute(
            update(jupyter_api_cache)
            .where(jupyter_api_cache.c.id == row.id)
            .values(last_active=now, expire=now + KEEP)
        )
    return CachedResult(row.id, list(row.output), row.created)


async def store(engine: AsyncEngine, key: str, output: list[dict[str, Any]], now: datetime) -> None:
    """Remember a result (replacing an older one for the same key)."""
    values = {"output": output, "created": now, "last_active": now, "expire": now + KEEP}
    async with engine.begin() as conn:
        changed = await conn.execute(
            update(jupyter_api_cache).where(jupyter_api_cache.c.hash == key).values(**values)
        )
        if changed.rowcount:
            return
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(jupyter_api_cache).values(hash=key, **values))
    except IntegrityError:
        pass  # another hub stored the same request's result meanwhile


async def forget_expired(engine: AsyncEngine, now: datetime) -> int:
    async with engine.begin() as conn:
        done = await conn.execute(
            delete(jupyter_api_cache).where(jupyter_api_cache.c.expire <= now)
        )
    return int(done.rowcount or 0)


async def forget_expired_results(hub: Hub) -> None:
    """The scheduler's duty: drop results nobody asked for in a month."""
    await forget_expired(hub.engine, utcnow())
