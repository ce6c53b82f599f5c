"""Finding licenses by words from their id, title, description, info or managers."""

from __future__ import annotations

import json
import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.tables import accounts, site_licenses
from calchub.ids import is_valid_uuid

# A quoted phrase is one term, as in CoCalc's search boxes.
_TERM = re.compile(r'"([^"]*)"|(\S+)')


def search_terms(search: str) -> list[str]:
    return [(phrase or word).lower() for phrase, word in _TERM.findall(search) if phrase or word]


async def matching_licenses(conn: AsyncConnection, search: str, limit: int) -> list[str]:
    """Ids of the licenses matching every term, most recently used first."""
    if is_valid_uuid(search.strip()):
        found = await conn.scalar(
            select(site_licenses.c.id).where(site_licenses.c.id == search.strip().lower())
        )
        return [found] if found and limit > 0 else []
    rows = list(
        await conn.execute(
            select(
                site_licenses.c.id,
                site_licenses.c.title,
                site_licenses.c.description,
                site_licenses.c.info,
                site_licenses.c.managers,
            ).order_by(site_licenses.c.last_used.desc().nulls_last(), site_licenses.c.id)
        )
    )
    people = await _manager_words(conn, {m for row in rows for m in (row.managers or [])})
    terms = search_terms(search)
    matches: list[str] = []
    for row in rows:
        if len(matches) >= limit:
            break
        words = [row.id, row.title or "", row.description or ""]
        if row.info is not None:
            words.append(json.dumps(row.info, ensure_ascii=False))
        words.extend(people.get(manager, "") for manager in row.managers or [])
        text = " ".join(words).lower()
        if all(term in text for term in terms):
            matches.append(row.id)
    return matches


async def _manager_words(conn: AsyncConnection, account_ids: set[str]) -> dict[str, str]:
    """account id -> "first last email" of the given accounts."""
    if not account_ids:
        return {}
    rows = await conn.execute(
        select(
            accounts.c.account_id,
            accounts.c.first_name,
            accounts.c.last_name,
            accounts.c.email_address,
        ).where(accounts.c.account_id.in_(account_ids))
    )
    return {
        row.account_id: " ".join(
            part or "" for part in (row.first_name, row.last_name, row.email_address)
        )
        for row in rows
    }
