"""user_search: find accounts by name prefix or exact email address."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, LargeBinary, and_, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.accounts.store import is_valid_email
from calchub.actor import Actor
from calchub.db.tables import accounts
from calchub.db.types import utcnow
from calchub.errors import Invalid, Refused
from calchub.hub import Hub
from calchub.ids import is_valid_uuid

MAX_LIMIT = 50
# Larger limits mean "all" (SQL LIMIT must fit the database's integer type).
SQL_MAX_LIMIT = 2**31 - 1
# Name terms per query: bounds the size of the SQL expression (SQLite caps its depth at
# 1000, asyncpg a statement's parameters at 32767). Email addresses do not count.
MAX_NAME_TERMS = 200
# Longer than any name; also keeps each LIKE pattern far below SQLite's 50,000-byte limit.
MAX_TERM_LENGTH = 256
# Name prefixes that match more accounts than this are searched along the recency index
# rather than the name indexes. Where the two cost the same depends on the site's size; for
# 10^5-10^6 accounts and limits of 50 it lies in the low thousands.
DENSE_PREFIX = 2000
_SPLIT_ITEMS = re.compile(r"[\n,;]")
_INTERVAL = re.compile(r"^\s*(\d+)\s*(second|minute|hour|day|week|month|year)s?\s*$", re.I)
_UNIT_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 604800,
    "month": 30 * 86400,
    "year": 365 * 86400,
}


ADMIN_ONLY = "must be logged in and a member of the admin group"


class SearchError(Invalid):
    """The query cannot be searched for (bad interval, too many names)."""


@dataclass
class ParsedQuery:
    names: list[list[str]] = field(default_factory=list)  # items of terms
    emails: list[str] = field(default_factory=list)


def parse_query(query: str) -> ParsedQuery:
    parsed = ParsedQuery()
    for raw in _SPLIT_ITEMS.split(query):
        item = raw.strip().lower()
        if not item:
            continue
        if "@" not in item:
            parsed.names.append(item.split())
            continue
        for piece in item.split():
            candidate = piece.strip("<>")
            if is_valid_email(candidate):
                parsed.emails.append(candidate)
    return parsed


def parse_interval(active: str) -> timedelta:
    match = _INTERVAL.match(active)
    if match is None:
        raise SearchError(f"invalid active interval '{active}' (use e.g. '3 days' or '1 week')")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()])


def _since(active: str) -> datetime | None:
    if not active.strip():
        return None
    try:
        return utcnow() - parse_interval(active)
    except OverflowError:
        return None  # further back than any date: every account qualifies


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _after_prefix(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`, in code point order
    (UTF-8 byte order); None if there is none."""
    while prefix and prefix[-1] == chr(sys.maxunicode):
        prefix = prefix[:-1]
    if not prefix:
        return None
    following = ord(prefix[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters
        following = 0xE000
    return prefix[:-1] + chr(following)


def _prefix_range(term: str, column: Any, dialect: str) -> ColumnElement[bool]:
    """lower(column) starts with `term`, as a range that the name indexes answer (migration
    0020). It holds for exactly the rows the LIKE of the same term matches."""
    lowered: ColumnElement[Any] = func.lower(column)
    if dialect == "postgresql":
        lowered = lowered.collate("C")  # the indexes' byte order, as on SQLite
    after = _after_prefix(term)
    return lowered >= term if after is None else and_(lowered >= term, lowered < after)


def _term_match(
    term: str, columns: list[Any], dialect: str, *, substring: bool
) -> ColumnElement[bool]:
    pattern = ("%" if substring else "") + _like_escape(term) + "%"
    return or_(*(_lower_like(column, pattern, dialect, term.isascii()) for column in columns))


def _lower_like(
    column: Any, pattern: str, dialect: str, ascii_pattern: bool
) -> ColumnElement[bool]:
    """lower(column) LIKE pattern. On SQLite, lower() is a Python function (db/engine.py:
    SQLite's own folds ASCII only), called for each row a search reads: most of the cost of
    a search that reads thousands. SQLite's LIKE folds ASCII itself, so for a pattern of
    ASCII it gives the same answer for any name that is ASCII too (Python lowers ASCII as
    SQLite does, and only a name with other characters can lower into an ASCII match, as
    the Kelvin sign does into `k`); lower() is left for names with other characters, those
    whose length in characters and in bytes differ."""
    lowered = func.lower(column).like(pattern, escape="\\")
    if dialect != "sqlite" or not ascii_pattern:
        return lowered
    not_ascii = func.length(column) != func.length(cast(column, LargeBinary))
    return or_(column.like(pattern, escape="\\"), and_(not_ascii, lowered))


def _term_range(term: str, columns: list[Any], dialect: str) -> ColumnElement[bool]:
    return or_(*(_prefix_range(term, column, dialect) for column in columns))


async def _rarest_terms(
    conn: AsyncConnection, items: list[list[str]], columns: list[Any]
) -> list[str] | None:
    """Each item's term that the fewest accounts match, by a count through the name indexes
    that stops at DENSE_PREFIX; None when every item is a single term and together they
    match DENSE_PREFIX accounts or more: reading the accounts newest first (the recency
    index) then finds the newest few sooner than collecting and sorting every match."""
    dialect = conn.dialect.name
    terms = list(dict.fromkeys(term for item in items for term in item))
    counts = [
        select(func.count())
        .select_from(
            select(literal(1))
            .where(_prefix_range(term, column, dialect))
            .limit(DENSE_PREFIX)
            .subquery()
        )
        .scalar_subquery()
        for term in terms
        for column in columns
    ]
    row = (await conn.execute(select(*counts))).one()
    width = len(columns)
    matches = {term: sum(row[n * width : (n + 1) * width]) for n, term in enumerate(terms)}
    if all(len(item) == 1 for item in items) and sum(matches[i[0]] for i in items) >= DENSE_PREFIX:
        return None
    return [min(item, key=lambda term: (matches[term], -len(term))) for item in items]


async def _prefix_clauses(
    conn: AsyncConnection, items: list[list[str]], columns: list[Any]
) -> list[ColumnElement[bool]]:
    """One condition per item: all its terms match as name prefixes, written so that the
    database can use the name indexes where they help."""
    dialect = conn.dialect.name
    # A term that another term of its item starts with is matched wherever that one is:
    # "danto dan" asks no more than "danto", and is searched as the single term it is.
    items = [
        [t for t in item if not any(o != t and o.startswith(t) for o in item)] for item in items
    ]
    if dialect == "postgresql":
        # Ranges in place of the LIKEs they equal: PostgreSQL estimates each range from its
        # statistics and picks ranges, their intersection or the recency index; a LIKE
        # beside its own range would count twice and make a common prefix look rare.
        return [and_(*(_term_range(term, columns, dialect) for term in item)) for item in items]
    # SQLite keeps no statistics: calchub counts, and gives each item one range at most.
    rarest = await _rarest_terms(conn, items, columns)
    if rarest is None:
        # Every item one common term: read along the recency index.
        return [_term_match(term, columns, dialect, substring=False) for (term,) in items]
    return [_ranged_item(item, term, columns) for item, term in zip(items, rarest, strict=True)]


def _ranged_item(item: list[str], rarest: str, columns: list[Any]) -> ColumnElement[bool]:
    """On SQLite, all of the item's terms as prefixes of the two names, through the range of
    its rarest term in each name's index, which holds the other name (migration 0027).

    When the rarest term starts one name, a term it starts with is matched already, and any
    other term must start the other name: two prefixes of one name start each other. Only
    a term that extends the rarest may start either (none does as chosen: it would be as
    rare and longer). So each range's condition reads the index alone, and the table is
    read only for the accounts that match: for a first name and the start of a last name,
    a few hundred rows where a range of the first name alone read ten thousand."""
    ranges = []
    for ranged, other in (columns, columns[::-1]):
        conditions = [_prefix_range(rarest, ranged, "sqlite")]
        for term in item:
            if rarest.startswith(term):
                continue
            pattern = _like_escape(term) + "%"
            on_other = _lower_like(other, pattern, "sqlite", term.isascii())
            if term.startswith(rarest):
                on_other = or_(on_other, _lower_like(ranged, pattern, "sqlite", term.isascii()))
            conditions.append(on_other)
        ranges.append(and_(*conditions))
    return or_(*ranges)


_PUBLIC = [
    accounts.c.account_id,
    accounts.c.first_name,
    accounts.c.last_name,
    accounts.c.last_active,
    accounts.c.created,
]
_BY_EMAIL = [
    *_PUBLIC[:3],
    accounts.c.email_address,
    *_PUBLIC[3:],
    accounts.c.email_address_verified,
]
_ADMIN = [*_PUBLIC, accounts.c.email_address, accounts.c.banned]


def _distinct_items(items: list[list[str]]) -> list[list[str]]:
    """Drop repeated terms within an item and repeated items; refuse oversized queries."""
    distinct: dict[tuple[str, ...], None] = {}
    for terms in items:
        key = tuple(dict.fromkeys(terms))
        if key:
            distinct[key] = None
    if sum(len(terms) for terms in distinct) > MAX_NAME_TERMS:
        raise SearchError(f"too many names in the query (at most {MAX_NAME_TERMS} words)")
    if any(len(term) > MAX_TERM_LENGTH for terms in distinct for term in terms):
        raise SearchError(f"a name in the query is too long (at most {MAX_TERM_LENGTH} characters)")
    return [list(terms) for terms in distinct]


def _sort_key(row: dict[str, Any]) -> tuple[str, float]:
    name = f"{row.get('first_name') or ''} {row.get('last_name') or ''}".lower()
    recent: datetime | None = row.get("last_active") or row.get("created")
    return name, -(recent.timestamp() if recent else 0.0)


async def user_search(
    hub: Hub, actor: Actor, query: str, *, admin: bool, active: str, limit: int
) -> list[dict[str, Any]]:
    """user_search for `actor`: admin mode (email addresses, banned accounts, substrings) only
    for admins."""
    if admin and not actor.is_admin:
        raise Refused(ADMIN_ONLY)
    async with hub.engine.connect() as conn:
        return await search_accounts(conn, query, admin=admin, active=active, limit=limit)


async def search_accounts(
    conn: AsyncConnection, query: str, *, admin: bool, active: str, limit: int
) -> list[dict[str, Any]]:
    """Results in CoCalc's shape. `admin` is admin mode (the caller is known to be an admin)."""
    since = _since(active)
    limit = min(limit, SQL_MAX_LIMIT)
    parsed = parse_query(query)
    found: dict[str, dict[str, Any]] = {}

    if admin:
        whole = query.strip().lower()
        if is_valid_uuid(whole) or is_valid_email(whole):
            column = accounts.c.account_id if is_valid_uuid(whole) else accounts.c.email_address
            rows = (await conn.execute(select(*_ADMIN).where(column == whole))).mappings().all()
            return [dict(r) for r in rows]
        name_items = _distinct_items(parsed.names + [[email] for email in parsed.emails])
        columns = [accounts.c.first_name, accounts.c.last_name, accounts.c.email_address]
        await _name_search(
            conn,
            found,
            name_items,
            columns,
            _ADMIN,
            since,
            limit,
            substring=True,
            public_only=False,
        )
    else:
        limit = min(limit, MAX_LIMIT)
        name_items = _distinct_items(parsed.names)
        if parsed.emails:
            rows = (
                (
                    await conn.execute(
                        select(*_BY_EMAIL).where(
                            accounts.c.email_address.in_(parsed.emails),
                            accounts.c.deleted.is_(False),
                        )
                    )
                )
                .mappings()
                .all()
            )
            for row in rows:
                found[row["account_id"]] = dict(row)
        await _name_search(
            conn,
            found,
            name_items,
            [accounts.c.first_name, accounts.c.last_name],
            _PUBLIC,
            since,
            limit,
            substring=False,
            public_only=True,
        )
    return sorted(found.values(), key=_sort_key)


async def _name_search(
    conn: AsyncConnection,
    found: dict[str, dict[str, Any]],
    items: list[list[str]],
    columns: list[Any],
    selected: list[Any],
    since: datetime | None,
    limit: int,
    *,
    substring: bool,
    public_only: bool,
) -> None:
    if not items or limit <= 0:
        return
    items = [terms for terms in items if terms]
    dialect = conn.dialect.name
    if substring:
        item_clauses = [
            and_(*(_term_match(term, columns, dialect, substring=True) for term in terms))
            for terms in items
        ]
    else:
        item_clauses = await _prefix_clauses(conn, items, columns)
    where: list[ColumnElement[bool]] = [or_(*item_clauses)]
    if public_only:
        where += [accounts.c.deleted.is_(False), accounts.c.unlisted.is_(False)]
    if since is not None:
        where.append(or_(accounts.c.last_active >= since, accounts.c.created >= since))
    query = (
        select(*selected)
        .where(*where)
        .order_by(accounts.c.last_active.desc().nulls_last(), accounts.c.created.desc())
        .limit(limit)
    )
    for row in (await conn.execute(query)).mappings().all():
        found.setdefault(row["account_id"], dict(row))
