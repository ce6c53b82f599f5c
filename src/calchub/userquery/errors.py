"""The engine's error: its text is sent verbatim as the `error` of an error event."""

from __future__ import annotations

from calchub.errors import DomainError


class QueryError(DomainError):
    """A query the engine refuses; the message is CoCalc's query engine's."""


def no_table(table: str) -> QueryError:
    return QueryError(f"FATAL: table '{table}' does not exist")


def get_not_allowed(table: str) -> QueryError:
    return QueryError(f"FATAL: get queries not allowed for table '{table}'")


def set_not_allowed(table: str) -> QueryError:
    return QueryError(f"FATAL: user set queries not allowed for table '{table}'")


def field_not_gettable(table: str, field: str) -> QueryError:
    return QueryError(f"FATAL: user get query not allowed for {table}.{field}")


def field_not_settable(table: str, field: str) -> QueryError:
    return QueryError(f"FATAL: changing {table}.{field} not allowed")


def admin_only() -> QueryError:
    """The answer to a non-admin on admin-only tables, and to a non-member writing a project."""
    return QueryError("FATAL: user must be an admin")


def setting(field: str, message: str) -> QueryError:
    return QueryError(f"FATAL: error setting '{field}' -- Error: {message}")
