"""Turning JSON values into column values, with PostgreSQL-like errors on a wrong type (the
same text on both backends)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Column, Integer

from calchub.db.types import UtcDateTime
from calchub.userquery.errors import QueryError


def _invalid(kind: str, value: Any) -> QueryError:
    return QueryError(f'error: invalid input syntax for type {kind}: "{value}"')


def to_datetime(value: Any) -> datetime:
    """ISO strings (no offset means UTC) and ms since the epoch, as JavaScript's Date does."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, UTC)
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
            return int(value)
        except ValueError:
            raise _invalid("integer", value) from None
    if isinstance(value, dict | list):
        raise _invalid("text", value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
