"""Listings of a table whose rows carry a version a trigger moves at every change they could
show (`projects.row_version`, migration 0026), answered from the rows the database wrote
for an earlier listing while their versions are unchanged.

A listing first reads each row's id and version only; the rows this hub holds at that
version are reused as written, and only the others are written again, in one statement
that also gives the version each was written at. The versions come from the database at
every listing, so a change made through any hub, or straight in the database, is seen by
the next listing; nothing is kept but the texts and their versions. A row is the same for
every caller (json_rows.row_json takes the fields, not the caller): who may see which rows
is decided by the listing's own conditions, which both statements apply.

Without an order, the database gives the ids and the versions as two texts; a listing
whose texts are the same as an earlier one's (the same rows, at the same versions, in the same
order) is the same JSON, kept whole and sent again as it is.

Gets run on a connection of their own that writes nothing (userquery/engine.py), so every
version read here was committed, and a version number is never given twice to different
contents of a row.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Hashable
from typing import Any, NamedTuple

from sqlalchemy import Column, Select, Text, cast, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from calchub.db import json_sql
from calchub.db.driver_reads import read_plain_rows
from calchub.db.json_ops import one_of_json
from calchub.json_text import JsonText
from calchub.userquery.json_rows import json_array
from calchub.userquery.schema import TableSpec

VERSION_COLUMN = "row_version"
# Rows written again by their ids: up to this many. Beyond it, the whole listing is written
# again in one statement.
FEW_MISSING = 64
# What the texts may take, counted by their length plus a dict entry's own cost; when full,
# the oldest half goes. 1,000 projects of a listing of four fields take about 0.3 MB.
MAX_BYTES = 64 * 2**20
ENTRY_OVERHEAD = 200
# Field lists kept apart; a caller trying every order of every field only empties them.
MAX_FIELD_LISTS = 64
# Plans of listings kept (ListingPlan): each is a few statements, some kilobytes.
MAX_PLANS = 512
# Whole listings kept as sent, by the ids and versions of their rows: at most this many
# bytes (their texts and keys), the oldest going first. A listing of 1,000 projects and
# four fields takes about 0.23 MB.
MAX_LISTING_BYTES = 16 * 2**20


def row_key(row_id: str, version: int | str) -> str:
    """`id:version`: the key a text is kept by."""
    return f"{row_id}:{version}"


class Rows:
    """One field list's rows: texts by row_key, so that a listing looks each of its rows up
    in one step; and each id's current key, to drop a text when a newer one comes."""

    __slots__ = ("keys", "texts")

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.keys: dict[str, str] = {}


class RenderedRows:
    """The rows one hub's listings wrote, by table and field list, with their versions."""

    def __init__(self, max_bytes: int = MAX_BYTES, max_listing_bytes: int = MAX_LISTING_BYTES):
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lists: dict[tuple[str, tuple[str, ...]], Rows] = {}
        self._max_listing_bytes = max_listing_bytes
        self._listing_bytes = 0
        self._listings: dict[tuple[str, tuple[str, ...], str], bytes] = {}
        self._plans: dict[Hashable, ListingPlan] = {}

    @property
    def size(self) -> int:
        """Bytes counted against the bound."""
        return self._bytes

    def rows(self, table: str, fields: tuple[str, ...]) -> Rows:
        key = (table, fields)
        found = self._lists.get(key)
        if found is None:
            if len(self._lists) >= MAX_FIELD_LISTS:
                self.clear()
            found = self._lists[key] = Rows()
        return found

    def keep(self, rows: Rows, row_id: str, version: int, text: str) -> None:
        old = rows.keys.pop(row_id, None)
        if old is not None:
            self._bytes -= len(rows.texts.pop(old)) + ENTRY_OVERHEAD
        key = rows.keys[row_id] = row_key(row_id, version)
        rows.texts[key] = text
        self._bytes += len(text) + ENTRY_OVERHEAD
        if self._bytes > self._max_bytes:
            self._shed()

    def listing(self, table: str, fields: tuple[str, ...], keys: str) -> bytes | None:
        """A whole listing kept by `keep_listing`: the JSON array of exactly the rows
        whose ids and versions are `keys` (`_listing_key`)."""
        return self._listings.get((table, fields, keys))

    def keep_listing(self, table: str, fields: tuple[str, ...], keys: str, body: bytes) -> None:
        size = len(keys) + len(body)
        if size > self._max_listing_bytes:
            return
        old = self._listings.pop((table, fields, keys), None)
        if old is not None:
            self._listing_bytes -= len(keys) + len(old)
        while self._listings and self._listing_bytes + size > self._max_listing_bytes:
            oldest = next(iter(self._listings))
            self._listing_bytes -= len(oldest[2]) + len(self._listings.pop(oldest))
        self._listings[(table, fields, keys)] = body
        self._listing_bytes += size

    def plan(self, key: Hashable) -> ListingPlan | None:
        """A plan kept by `keep_plan`: `key` must name everything the plan was built from."""
        return self._plans.get(key)

    def keep_plan(self, key: Hashable, plan: ListingPlan) -> None:
        if len(self._plans) >= MAX_PLANS:
            del self._plans[next(iter(self._plans))]
        self._plans[key] = plan

    def clear(self) -> None:
        self._plans.clear()
        self._lists.clear()
        self._bytes = 0
        self._listings.clear()
        self._listing_bytes = 0

    def _shed(self) -> None:
        """The oldest half of each field list's rows (dicts keep insertion order, and a row
        written again moves to the end)."""
        for rows in self._lists.values():
            for row_id in list(rows.keys)[: (len(rows.keys) + 1) // 2]:
                self._bytes -= len(rows.texts.pop(rows.keys.pop(row_id))) + ENTRY_OVERHEAD


class _VersionSql(NamedTuple):
    """The parts of a listing's statements that depend only on the table and the dialect,
    built once: building an expression costs more than the rest of the statement."""

    # Always true (versions start at 0 and only grow): it leads SQLite, which keeps no
    # statistics, to the index of ids and versions instead of reading each row.
    any_version: ColumnElement[bool]
    # The rows' ids, and their versions, each joined by commas. Two aggregates of one
    # select take the same rows in the same order (both backends feed every aggregate of a
    # group in one pass); joining them apart spares the database a text per row, about a
    # third of the statement.
    joined_ids: ColumnElement[Any]
    joined_versions: ColumnElement[Any]


_VERSION_SQL: dict[tuple[str, str], _VersionSql] = {}


def _version_sql(row_id: Column[Any], version: Column[Any], dialect: str) -> _VersionSql:
    index = (row_id.table.name, dialect)
    found = _VERSION_SQL.get(index)
    if found is None:
        found = _VERSION_SQL[index] = _VersionSql(
            version >= 0,
            json_sql.joined(row_id, dialect),
            json_sql.joined(cast(version, Text), dialect),
        )
    return found


def reusable(spec: TableSpec) -> bool:
    """Whether the table's rows carry a version (and one id) to reuse them by."""
    return VERSION_COLUMN in spec.storage.c and len(spec.primary_key) == 1


class ListingPlan(NamedTuple):
    """A listing's statements: what the rows are (conditions, order, limit) and how each is
    written (`row`), without anything the database holds. Built by `plan_listing`; one plan
    serves every listing of the same inputs."""

    table: str
    fields: tuple[str, ...]
    dialect: str
    row_id: Column[Any]
    # Without an order: the ids and the versions, each joined into one text. With one: the
    # ids and versions row by row.
    keys: Select[Any]
    ordered: bool
    # The rows written with their ids and versions; `whole` in order and within the limit.
    written: Select[Any]
    whole: Select[Any]


def plan_listing(
    spec: TableSpec,
    fields: tuple[str, ...],
    row: ColumnElement[Any],
    where: list[Any],
    order: ColumnElement[Any] | None,
    limit: int | None,
    dialect: str,
) -> ListingPlan:
    """The plan of a listing of the rows `where` selects, in `order` (when given), each
    written as `row` (json_rows.row_json of `fields`)."""
    table = spec.storage
    row_id: Column[Any] = table.c[spec.primary_key[0]]
    version: Column[Any] = table.c[VERSION_COLUMN]
    parts = _version_sql(row_id, version, dialect)
    keys: Select[Any]
    if order is None:
        keys = _joined_keys(row_id, version, parts, where, limit, dialect)
    else:
        # Row by row: neither backend promises an aggregate its input's order.
        in_order: Select[Any] = (
            select(row_id, version).where(*where, parts.any_version).order_by(order)
        )
        keys = in_order if limit is None else in_order.limit(limit)
    written = select(row_id, version, row.label("row")).where(*where)
    whole = written if order is None else written.order_by(order)
    if limit is not None:
        whole = whole.limit(limit)
    return ListingPlan(spec.name, fields, dialect, row_id, keys, order is not None, written, whole)


def _joined_keys(
    row_id: Column[Any],
    version: Column[Any],
    parts: _VersionSql,
    where: list[Any],
    limit: int | None,
    dialect: str,
) -> Select[Any]:
    """The ids of the listing's rows (no order asked) and their versions, each joined by
    the database into one text: two values to fetch instead of a row for each."""
    if limit is None:
        return select(parts.joined_ids, parts.joined_versions).where(*where, parts.any_version)
    inner = select(row_id, version).where(*where, parts.any_version).limit(limit).subquery()
    return select(
        json_sql.joined(inner.c[row_id.name], dialect),
        json_sql.joined(cast(inner.c[version.name], Text), dialect),
    )


async def listing(conn: AsyncConnection, store: RenderedRows, plan: ListingPlan) -> JsonText:
    """The JSON array of the plan's rows as they are now."""
    table, fields = plan.table, plan.fields
    joined: str | None = None
    if plan.ordered:
        keys = [row_key(key, at) for key, at in await read_plain_rows(conn, plan.keys)]
    else:
        ids, versions = (await read_plain_rows(conn, plan.keys))[0]
        joined = _listing_key(ids or "", versions or "")
        body = store.listing(table, fields, joined)
        if body is not None:
            return JsonText(body)
        keys = list(map(row_key, ids.split(","), versions.split(","))) if ids else []
    kept = store.rows(table, fields)
    texts = list(map(kept.texts.get, keys))
    missing = [place for place, text in enumerate(texts) if text is None]
    if not missing:
        body = json_array(typing.cast(list[str], texts))
        if joined is not None:
            store.keep_listing(table, fields, joined, body)
        return JsonText(body)
    if len(missing) > FEW_MISSING:
        # Mostly new rows: the whole listing written again, as it is now, in one statement.
        rows = await read_plain_rows(conn, plan.whole)
        for key, at, text in rows:
            store.keep(kept, key, at, text)
        return JsonText(json_array([text for _, _, text in rows]))
    ids_missing = [keys[place].rpartition(":")[0] for place in missing]
    written = plan.written.where(one_of_json(plan.row_id, json.dumps(ids_missing), plan.dialect))
    fresh = {key: (at, text) for key, at, text in await read_plain_rows(conn, written)}
    for key, (at, text) in fresh.items():
        store.keep(kept, key, at, text)
    # Whether the answer holds exactly the rows of `keys`: none gone, none newer than read.
    exact = True
    for place, key in zip(missing, ids_missing, strict=True):
        # A row gone since the ids were read (deleted, or no longer the caller's) is left
        # out; one changed since is given as it is now.
        now = fresh.get(key)
        texts[place] = None if now is None else now[1]
        exact = exact and now is not None and row_key(key, now[0]) == keys[place]
    body = json_array([text for text in texts if text is not None])
    if joined is not None and exact:
        store.keep_listing(table, fields, joined, body)
    return JsonText(body)


def _listing_key(ids: str, versions: str) -> str:
    """The ids and versions of a listing's rows, each joined by commas in its order, as one
    key. Ids are uuids: none holds a comma or a slash."""
    return f"{ids}/{versions}"
