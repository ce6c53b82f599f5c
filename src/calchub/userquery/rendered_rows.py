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

Gets run on a connection of their own that writes nothing (userquery/engine.py), so every
version read here was committed, and a version number is never given twice to different
contents of a row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from calchub.db.driver_reads import read_plain_rows
from calchub.json_text import JsonText
from calchub.userquery.json_rows import json_array
from calchub.userquery.schema import TableSpec

VERSION_COLUMN = "row_version"
# Rows written again by their ids: up to this many. Beyond it, the whole listing is written
# again in one statement (a list of ids costs more, and a new statement for each length).
FEW_MISSING = 64
# What the texts may take, counted by their length plus a dict entry's own cost; when full,
# the oldest half goes. 1,000 projects of a listing of four fields take about 0.3 MB.
MAX_BYTES = 64 * 2**20
ENTRY_OVERHEAD = 200
# Field lists kept apart; a caller trying every order of every field only empties them.
MAX_FIELD_LISTS = 64


class Rows:
    """One field list's rows: texts by (id, version), as the driver gives a row of the two,
    so that a listing looks each of its rows up in one step; and each id's version, to
    drop a text when a newer one comes."""

    __slots__ = ("texts", "versions")

    def __init__(self) -> None:
        self.texts: dict[tuple[str, int], str] = {}
        self.versions: dict[str, int] = {}


class RenderedRows:
    """The rows one hub's listings wrote, by table and field list, with their versions."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lists: dict[tuple[str, tuple[str, ...]], Rows] = {}

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
        old = rows.versions.pop(row_id, None)
        if old is not None:
            self._bytes -= len(rows.texts.pop((row_id, old))) + ENTRY_OVERHEAD
        rows.versions[row_id] = version
        rows.texts[(row_id, version)] = text
        self._bytes += len(text) + ENTRY_OVERHEAD
        if self._bytes > self._max_bytes:
            self._shed()

    def clear(self) -> None:
        self._lists.clear()
        self._bytes = 0

    def _shed(self) -> None:
        """The oldest half of each field list's rows (dicts keep insertion order, and a row
        written again moves to the end)."""
        for rows in self._lists.values():
            for row_id in list(rows.versions)[: (len(rows.versions) + 1) // 2]:
                version = rows.versions.pop(row_id)
                self._bytes -= len(rows.texts.pop((row_id, version))) + ENTRY_OVERHEAD


# Per table: always true (versions start at 0 and only grow), it leads SQLite, which keeps
# no statistics, to the index of ids and versions instead of reading each row. Built once:
# building a condition costs more than looking it up.
_ANY_VERSION: dict[str, ColumnElement[bool]] = {}


def _any_version(version: Column[Any]) -> ColumnElement[bool]:
    found = _ANY_VERSION.get(version.table.name)
    if found is None:
        found = _ANY_VERSION[version.table.name] = version >= 0
    return found


def reusable(spec: TableSpec) -> bool:
    """Whether the table's rows carry a version (and one id) to reuse them by."""
    return VERSION_COLUMN in spec.storage.c and len(spec.primary_key) == 1


async def listing(
    conn: AsyncConnection,
    store: RenderedRows,
    spec: TableSpec,
    fields: tuple[str, ...],
    row: ColumnElement[Any],
    where: list[Any],
    order: Any,
    limit: int | None,
) -> JsonText:
    """The JSON array of the rows `where` selects, in `order` (when given), each written as
    `row` (json_rows.row_json of `fields`)."""
    table = spec.storage
    row_id: Column[Any] = table.c[spec.primary_key[0]]
    version: Column[Any] = table.c[VERSION_COLUMN]
    ids = select(row_id, version).where(*where, _any_version(version))
    if order is not None:
        ids = ids.order_by(order)
    if limit is not None:
        ids = ids.limit(limit)
    # (id, version) pairs, as tuples: the keys the texts are kept by.
    found = [tuple(pair) for pair in await read_plain_rows(conn, ids)]
    kept = store.rows(spec.name, fields)
    texts = list(map(kept.texts.get, found))
    missing = [place for place, text in enumerate(texts) if text is None]
    if not missing:
        return JsonText(json_array([text for text in texts if text is not None]))
    written = select(row_id, version, row.label("row")).where(*where)
    if len(missing) > FEW_MISSING:
        # Mostly new rows: the whole listing written again, as it is now, in one statement.
        if order is not None:
            written = written.order_by(order)
        if limit is not None:
            written = written.limit(limit)
        rows = await read_plain_rows(conn, written)
        for key, at, text in rows:
            store.keep(kept, key, at, text)
        return JsonText(json_array([text for _, _, text in rows]))
    written = written.where(row_id.in_([found[place][0] for place in missing]))
    fresh = {key: (at, text) for key, at, text in await read_plain_rows(conn, written)}
    for key, (at, text) in fresh.items():
        store.keep(kept, key, at, text)
    for place in missing:
        # A row gone since the ids were read (deleted, or no longer the caller's) is left
        # out; one changed since is given as it is now.
        now = fresh.get(found[place][0])
        texts[place] = None if now is None else now[1]
    return JsonText(json_array([text for text in texts if text is not None]))
