"""Turning JSON values into column values, with PostgreSQL-like errors on a wrong type (the
same text on both backends)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, Integer, String

from calchub.db.types import UtcDateTime
from calchub.ids import is_valid_uuid
from calchub.userquery.errors import QueryError, setting

# The largest value one field of one row may hold (a document's patch, a settings map).
MAX_TEXT_CHARS = 1_000_000
MAX_JSON_BYTES = 64 * 1024

# PostgreSQL's integer ranges; asyncpg refuses larger values before the database sees them.
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _invalid(kind: str, value: Any) -> QueryError:
    return QueryError(f'error: invalid input syntax for type {kind}: "{value}"')


def to_datetime(value: Any) -> datetime:
    """ISO strings (no offset means UTC) and ms since the epoch, as JavaScript's Date does."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, ValueError, OSError):  # beyond the years a datetime holds
            raise _invalid("timestamp", value) from None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid("timestamp", value) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise _invalid("timestamp", value)


def to_column(column: Column[Any], value: Any) -> Any:
    """`value` as `column` stores it."""
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return to_datetime(value)
    if isinstance(kind, Boolean):
        if not isinstance(value, bool):
            raise _invalid("boolean", value)
        return value
    if isinstance(kind, Integer):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _invalid("integer", value)
        try:
            number = int(value)
        except ValueError:
            raise _invalid("integer", value) from None
        big = isinstance(kind, BigInteger)
        low, high = _INT64 if big else _INT32
        if not low <= number <= high:
            name = "bigint" if big else "integer"
            raise QueryError(f'error: value "{value}" is out of range for type {name}')
        return number
    if isinstance(value, dict | list):
        raise _invalid("text", value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_uuid(value: Any) -> str:
    """A uuid as stored (lower case); anything else is PostgreSQL's uuid error."""
    if not is_valid_uuid(value):
        raise _invalid("uuid", value)
    return str(value).lower()


def check_length(column: Column[Any], value: Any) -> None:
    """A text longer than its column allows: PostgreSQL's error, on both backends (SQLite
    would store it). Texts without a declared length, and JSON values (measured as stored,
    i.e. after merging into the old value), are capped too: no request grows a row without
    bound."""
    limit = getattr(column.type, "length", None)
    if isinstance(column.type, String) and limit and isinstance(value, str) and len(value) > limit:
        raise QueryError(f"error: value too long for type character varying({limit})")
    if isinstance(column.type, String) and not limit and isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise setting(
                column.name, f"text too long ({len(value)} characters; at most {MAX_TEXT_CHARS})"
            )
    elif isinstance(column.type, JSON):
        size = len(json.dumps(value, separators=(",", ":"), default=str))
        if size > MAX_JSON_BYTES:
            raise setting(
                column.name, f"value too large ({size} bytes of JSON; at most {MAX_JSON_BYTES})"
            )
