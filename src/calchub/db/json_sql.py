"""SQL that writes JSON text, the same text on SQLite and PostgreSQL: values as the reply
encoder (api/responses.py) would write them once read into Python, so that a listing can be
written by the database and sent as it is. Every function gives NULL for a null value, so
that a caller can leave the key out; `dialect` is the engine's dialect name."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Text, case, cast, func, literal_column, null
from sqlalchemy.sql.elements import ColumnElement


class Written(NamedTuple):
    """SQL writing one value's JSON text, and whether it can be NULL (a null value): a row
    writes a value that is never null without the test for leaving its key out."""

    sql: ColumnElement[Any]
    nullable: bool = True


def sql_text(value: str) -> ColumnElement[Any]:
    """A constant text in the statement itself (not a parameter): PostgreSQL then knows its
    type wherever it stands, and the statement stays one cached statement."""
    return literal_column("'" + value.replace("'", "''") + "'", Text)


def concat(*parts: ColumnElement[Any]) -> ColumnElement[Any]:
    """`a || b || ...`: NULL if any part is NULL, on both backends (CONCAT skips NULLs)."""
    out = parts[0]
    for part in parts[1:]:
        out = out.op("||", return_type=Text)(part)
    return out


def joined(value: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """The aggregate of the group's texts joined by commas; NULL for no rows."""
    if dialect == "sqlite":
        return func.group_concat(value, sql_text(","), type_=Text)
    return func.string_agg(value, sql_text(","), type_=Text)


def string(value: ColumnElement[Any], dialect: str, nullable: bool = True) -> ColumnElement[Any]:
    if dialect == "sqlite":
        # json_quote keeps the storage class (a number stored in a text column stays a
        # number, as it is read) and writes NULL as `null`.
        quoted = func.json_quote(value, type_=Text)
        return case((value.is_(None), null()), else_=quoted) if nullable else quoted
    return cast(func.to_json(value), Text)


def timestamp(value: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """A UtcDateTime as the wire's `"YYYY-MM-DDTHH:MM:SS.mmmZ"`, the milliseconds cut (not
    rounded) as the encoder cuts them."""
    if dialect == "sqlite":
        # Stored as `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC (SQLAlchemy's text for DateTime).
        return concat(
            sql_text('"'),
            func.substr(value, 1, 10),
            sql_text("T"),
            func.substr(concat(value, sql_text(".000")), 12, 12),
            sql_text('Z"'),
        )
    utc = func.timezone(sql_text("UTC"), value)
    written = func.to_char(utc, sql_text('YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
    return concat(sql_text('"'), written, sql_text('"'))


def boolean(value: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((value.is_(None), null()), (value, sql_text("true")), else_=sql_text("false"))


def document(value: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """A JSON column as stored; JSON's own null counts as null, as when it is read."""
    if dialect == "sqlite":
        return case(
            (func.json_type(value) == sql_text("null"), null()), else_=document_text(value, dialect)
        )
    return case(
        (func.jsonb_typeof(value) == sql_text("null"), null()), else_=document_text(value, dialect)
    )


def truthy(value: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """Whether a JSON column's value is true to Python once read: not null, false, 0, "",
    [] or {}. A NULL column, the common case, is decided first, before any JSON function."""
    if dialect == "sqlite":
        kind = func.json_type(value)
        scalar = func.json_extract(value, sql_text("$"))
        return case(
            (value.is_(None), literal_column("0")),
            (kind == sql_text("object"), func.json(value) != sql_text("{}")),
            (kind == sql_text("array"), func.json(value) != sql_text("[]")),
            (kind == sql_text("text"), scalar != sql_text("")),
            (kind.in_([sql_text("integer"), sql_text("real")]), scalar != literal_column("0")),
            (kind == sql_text("true"), literal_column("1")),
            else_=literal_column("0"),
        )
    kind = func.jsonb_typeof(value)
    return case(
        (value.is_(None), literal_column("false")),
        (kind == sql_text("object"), value != sql_text("{}")),
        (kind == sql_text("array"), value != sql_text("[]")),
        (kind == sql_text("string"), value != sql_text('""')),
        (kind == sql_text("number"), value != sql_text("0")),
        (kind == sql_text("boolean"), value == sql_text("true")),
        else_=literal_column("false"),
    )


def document_text(value: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """A JSON column's text, JSON's null included."""
    if dialect == "sqlite":
        # json() checks and compacts the stored text: what is not JSON fails the statement
        # instead of breaking the reply.
        return func.json(value, type_=Text)
    return cast(value, Text)
