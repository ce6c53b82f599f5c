"""Listings whose rows the database wrote (json_rows.py), reusing each row's text while the
row has not changed since it was written.

A table with a `row_version` column (projects.version) gets a new version from triggers on
every change that can alter its row's JSON, whoever writes (migration 0024). A listing then
reads, in one statement with its scope and filters (so membership, hiding and deletion show
at once), the id and version of each of its rows; takes the text kept for each (id, version);
and has the database write only the rows without one, reading each row's version in the
same statement as its text. Writing a row's JSON is most of a long listing's statement;
reading ids and versions is a few index lookups per row. On a connection whose reads may
not be kept (db/row_versions.py) the database writes every row, as without kept texts.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from itertools import compress
from typing import Any, cast

from sqlalchemy import Select, Text, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from calchub.db.driver_reads import read_rows
from calchub.db.json_ops import in_json_strings
from calchub.db.row_versions import may_keep
from calchub.json_text import JsonText
from calchub.userquery.schema import TableSpec

# The bounds of what one hub keeps: about 200 bytes a row for a usual listing, so some
# hundred thousand rows of listings.
MAX_ENTRIES = 200_000
MAX_BYTES = 64 * 1024 * 1024
# What an entry costs beyond its text (its key and its place in the map), roughly.
ENTRY_OVERHEAD = 200
# Rows to write again named in the statement (one JSON parameter); beyond this, or past
# half of a listing without a limit, the statement writes every row of the listing instead.
MAX_NAMED = 500


class RowTexts:
    """Texts of rows by (table and fields) and then (row id, row version). Least recently
    used first out: the listing (table and fields) used longest ago loses its oldest rows
    first. A row's older versions are never asked for again and so leave before the rest
    of their listing."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._shapes: OrderedDict[Any, OrderedDict[tuple[Any, ...], bytes]] = OrderedDict()
        self._entries = 0
        self._bytes = 0

    def __len__(self) -> int:
        return self._entries

    @property
    def size(self) -> int:
        """The bytes kept, as counted against max_bytes."""
        return self._bytes

    def has(self, shape: Any) -> bool:
        """Whether anything is kept for listings of this shape."""
        return shape in self._shapes

    def get(self, shape: Any, rows: list[tuple[Any, ...]]) -> list[bytes | None]:
        """The kept text of each (id, version), or None."""
        texts = self._shapes.get(shape)
        if texts is None:
            return [None] * len(rows)
        self._shapes.move_to_end(shape)
        found = list(map(texts.get, rows))
        # The rows found become the most recent, all at once (a text is never empty).
        deque(map(texts.move_to_end, compress(rows, found)), maxlen=0)
        return found

    def put(self, shape: Any, row_id: Any, version: Any, text: bytes) -> None:
        size = len(text) + ENTRY_OVERHEAD
        if size > self.max_bytes or self.max_entries < 1:
            return
        texts = self._shapes.get(shape)
        if texts is None:
            texts = self._shapes[shape] = OrderedDict()
        else:
            self._shapes.move_to_end(shape)
        key = (row_id, version)
        old = texts.pop(key, None)
        if old is not None:
            self._entries -= 1
            self._bytes -= len(old) + ENTRY_OVERHEAD
        texts[key] = text
        self._entries += 1
        self._bytes += size
        while self._entries > self.max_entries or self._bytes > self.max_bytes:
            oldest_shape, oldest = next(iter(self._shapes.items()))
            _, dropped = oldest.popitem(last=False)
            self._entries -= 1
            self._bytes -= len(dropped) + ENTRY_OVERHEAD
            if not oldest:
                del self._shapes[oldest_shape]

    def clear(self) -> None:
        self._shapes.clear()
        self._entries = 0
        self._bytes = 0


async def listing(
    conn: AsyncConnection,
    kept: RowTexts,
    spec: TableSpec,
    names: list[str],
    row: ColumnElement[Any],
    where: list[Any],
    order: Any,
    limit: int | None,
) -> JsonText | None:
    """The listing of `row` (json_rows.row_json of `names`) over the rows `where` selects, in
    `order` up to `limit`; None when this connection's reads may not be kept (then the
    database writes every row, as without kept texts)."""
    if spec.row_version is None or not await may_keep(conn):
        return None
    (key,) = spec.primary_key
    columns = (spec.storage.c[key], spec.storage.c[spec.row_version])
    shape = (spec.name, tuple(names))
    written: Select[Any] = select(*columns, row.label("row")).select_from(spec.storage)
    written = written.where(*where)
    if not kept.has(shape):
        # Nothing to reuse (this hub's first such listing): one statement writes every row.
        written = _ordered(written, order, limit)
        return _array(list((await _write(conn, kept, shape, written)).values()))
    rows = await read_rows(conn, _ordered(select(*columns).where(*where), order, limit))
    texts = kept.get(shape, rows)
    missing = [n for n, text in enumerate(texts) if text is None]
    if missing:
        # A few rows are named; most of a listing without a limit is written whole.
        if len(missing) <= MAX_NAMED and (limit is not None or 2 * len(missing) <= len(rows)):
            named = literal(json.dumps([rows[n][0] for n in missing]), Text)
            written = written.where(in_json_strings(columns[0], named))
        new = await _write(conn, kept, shape, written)
        # The rows and their order are those read first. A row written again may have
        # changed since (its new text is the one shown); one gone since is left out.
        for n in missing:
            texts[n] = new.get(rows[n][0])
        if None in texts:
            texts = [text for text in texts if text is not None]
    return _array(cast(list[bytes], texts))


def _ordered(statement: Select[Any], order: Any, limit: int | None) -> Select[Any]:
    if order is not None:
        statement = statement.order_by(order)
    return statement if limit is None else statement.limit(limit)


def _array(texts: list[bytes]) -> JsonText:
    return JsonText(b"[" + b",".join(texts) + b"]")


async def _write(
    conn: AsyncConnection, kept: RowTexts, shape: Any, written: Select[Any]
) -> dict[Any, bytes]:
    """The texts `written` writes by row id, in its order, each kept with the version read
    beside it."""
    new: dict[Any, bytes] = {}
    for row_id, version, text in await read_rows(conn, written):
        new[row_id] = encoded = text.encode()
        kept.put(shape, row_id, version, encoded)
    return new
