"""Gets whose rows the database writes as JSON text, in the array form a get answers (spec
§1.7): the requested fields in query order, null ones left out. For a long listing, a dict
per row, the conversion of each value and encoding it all again cost far more than the
query; here the database writes each row and the rows are joined into the reply as they
are (calchub.json_text). A field the database cannot write exactly as output.finish would
(a default that fills in, dates inside JSON, an edge without SQL) leaves the get to the
general path."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import JSON, Boolean, Column, String, Text, func, literal_column, select
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement

from calchub.db import json_sql
from calchub.db.json_sql import Written
from calchub.db.types import UtcDateTime
from calchub.userquery.schema import TableSpec

# Field names go into the statement as constants: only plain ones.
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


class _AlwaysNull:
    """A field calchub does not store and that has no default: never in the array form."""


ALWAYS_NULL = _AlwaysNull()

# Rows by (table, fields, dialect), built and written as SQL text once: building the
# expression, and SQLAlchemy's walk over it for its statement cache, cost more than the
# rest of the statement. Field names are checked against the table before, so callers
# choose among few; the bound only keeps a caller trying every order from growing it.
_BUILT: dict[tuple[str, tuple[str, ...], str], ColumnElement[Any] | None] = {}
_MAX_BUILT = 512


def _column_json(spec: TableSpec, column: Column[Any], dialect: str) -> Written | None:
    default = spec.get_fields.get(column.name)
    kind = column.type
    nullable = bool(column.nullable)
    if column.name in spec.json_dates:
        return None
    # A default fills in a null (or a map's missing keys): only where that cannot happen.
    if default is not None and (nullable or isinstance(kind, JSON)):
        return None
    if isinstance(kind, UtcDateTime):
        return Written(json_sql.timestamp(column, dialect), nullable)
    if isinstance(kind, Boolean):
        return Written(json_sql.boolean(column), nullable)
    if isinstance(kind, JSON):
        return Written(json_sql.document(column, dialect))  # JSON's own null counts as null
    if isinstance(kind, String):
        return Written(json_sql.string(column, dialect, nullable), nullable)
    return None


def field_json(spec: TableSpec, name: str, dialect: str) -> Any:
    """One field's Written JSON text, ALWAYS_NULL, or None if only Python can write it."""
    if not _PLAIN_NAME.match(name):
        return None
    if name in spec.edges:
        edge = spec.edge_json.get(name)
        return None if edge is None else edge(dialect)
    column = spec.storage.c.get(name)
    if column is None:
        return ALWAYS_NULL if spec.get_fields.get(name) is None else None
    return _column_json(spec, column, dialect)


def row_json(spec: TableSpec, names: list[str], dialect: Dialect) -> ColumnElement[Any] | None:
    """SQL writing one row of the array form with `names` in this order, from the table's
    own name (no alias), or None when a field needs the general path."""
    if not spec.json_rows:
        return None
    key = (spec.name, tuple(names), dialect.name)
    if key not in _BUILT:
        if len(_BUILT) >= _MAX_BUILT:
            _BUILT.clear()
        row = _build_row(spec, names, dialect.name)
        _BUILT[key] = None if row is None else _as_text(spec, row, dialect)
    return _BUILT[key]


def _as_text(spec: TableSpec, row: ColumnElement[Any], dialect: Dialect) -> ColumnElement[Any]:
    """`row` as the SQL text it compiles to in a select from the table (where its correlated
    subqueries find the table), every value in the text."""
    stmt = select(row.label("written")).select_from(spec.storage)
    compiled = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    head, tail = "SELECT ", f" AS written \nFROM {spec.storage.name}"
    if not (compiled.startswith(head) and compiled.endswith(tail)):
        return row  # an unexpected rendering: the expression itself still serves
    return literal_column(compiled[len(head) : -len(tail)], Text)


def _build_row(spec: TableSpec, names: list[str], dialect: str) -> ColumnElement[Any] | None:
    sql_text, concat = json_sql.sql_text, json_sql.concat
    fields: list[tuple[str, Written]] = []
    for name in names:
        value = field_json(spec, name, dialect)
        if value is None:
            return None
        if value is not ALWAYS_NULL:
            fields.append((name, value))
    if not fields:
        return sql_text("{}")
    # Each `,"name":value`, or nothing when a value that can be null is. When the first
    # value is never null, the row starts with it; otherwise the first comma, wherever it
    # falls, is cut off afterwards.
    parts: list[ColumnElement[Any]] = []
    for name, (value, nullable) in fields:
        key = sql_text(("{" if not parts and not nullable else ",") + json.dumps(name) + ":")
        part = concat(key, value)
        parts.append(func.coalesce(part, sql_text(""), type_=Text) if nullable else part)
    if not fields[0][1].nullable:
        return concat(*parts, sql_text("}"))
    return concat(sql_text("{"), func.substr(concat(*parts), 2, type_=Text), sql_text("}"))


def json_array(rows: list[str]) -> bytes:
    return ("[" + ",".join(rows) + "]").encode()
