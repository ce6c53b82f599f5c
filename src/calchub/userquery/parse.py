"""Pure parsing of a query: its form, placeholders, get/set classification and options."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from calchub.userquery.errors import QueryError

ACCOUNT_PLACEHOLDER = "{account_id}"
NOW_PLACEHOLDER = "{now}"
# Options that only matter to gets and are silently ignored otherwise.
IGNORED_GET_OPTIONS = frozenset({"delete", "heartbeat"})
_INTEGER = re.compile(r"^\d+$")


@dataclass(frozen=True)
class SingleQuery:
    table: str
    value: dict[str, Any]
    multi: bool  # the array form `{"T": [{...}]}`


def split_query(query: Any) -> SingleQuery:
    """The table name and row pattern of one single-table query (spec §1.3)."""
    if not isinstance(query, dict) or not query:
        raise QueryError("FATAL: invalid user_query of 'undefined' -- query must be an object")
    if len(query) != 1:
        raise QueryError("FATAL: must specify exactly one key in the query")
    table, value = next(iter(query.items()))
    multi = isinstance(value, list)
    if multi:
        if len(value) > 1:
            raise QueryError("FATAL: array of length > 1 not yet implemented")
        value = value[0] if value else None
    if not isinstance(value, dict):
        raise QueryError(f"FATAL: invalid user_query of '{table}' -- query must be an object")
    return SingleQuery(table, value, multi)


def substitute(value: Any, account_id: str, now: datetime) -> Any:
    """Replace `{account_id}` and `{now}` values, and `{account_id}` keys (spec §1.5)."""
    if isinstance(value, dict):
        return {
            (account_id if key == ACCOUNT_PLACEHOLDER else key): substitute(item, account_id, now)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [substitute(item, account_id, now) for item in value]
    if value == ACCOUNT_PLACEHOLDER:
        return account_id
    if value == NOW_PLACEHOLDER:
        return now
    return value


def has_null(value: Any) -> bool:
    """Whether a null leaf occurs anywhere: that makes a query a get (spec §1.4)."""
    if value is None:
        return True
    if isinstance(value, dict):
        return any(has_null(item) for item in value.values())
    if isinstance(value, list):
        return any(has_null(item) for item in value)
    return False


@dataclass(frozen=True)
class Options:
    entries: list[dict[str, Any]]  # without `set` and `account_id`
    force_set: bool | None
    sudo: str | None


def read_options(options: Any) -> Options:
    """Split the options array into its query options, the get/set override and sudo."""
    if options is None:
        options = []
    if not isinstance(options, list):
        text = json.dumps(options, separators=(",", ":"))
        raise QueryError(f"FATAL: options (={text}) must be an array")
    entries: list[dict[str, Any]] = []
    force_set: bool | None = None
    sudo: str | None = None
    for item in options:
        if not isinstance(item, dict):
            continue
        rest = dict(item)
        if "set" in rest:
            force_set = bool(rest.pop("set"))
        if "account_id" in rest:
            sudo = rest.pop("account_id")
        if rest:
            entries.append(rest)
    return Options(entries, force_set, sudo)


def is_get(value: dict[str, Any], force_set: bool | None) -> bool:
    return not force_set if force_set is not None else has_null(value)


@dataclass(frozen=True)
class GetOptions:
    limit: int | None = None
    order_by: str | None = None
    descending: bool = False
    only_changes: bool = False


def with_defaults(
    entries: list[dict[str, Any]], defaults: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Append each default object the user did not fully override (spec §1.6 quirk)."""
    given = {key for entry in entries for key in entry}
    return entries + [d for d in defaults if any(key not in given for key in d)]


def parse_limit(value: Any) -> int:
    """A limit as CoCalc accepts it: a non-negative integer, or its decimal text."""
    if isinstance(value, bool):
        raise QueryError(f"ERROR -- opts.limit = '{value}' is not an integer")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value):
        return int(value)
    raise QueryError(f"ERROR -- opts.limit = '{value}' is not an integer")


def get_options(entries: list[dict[str, Any]]) -> GetOptions:
    """The get options in effect; later keys override earlier ones."""
    limit: int | None = None
    order_by: str | None = None
    only_changes = False
    for entry in entries:
        for key, value in entry.items():
            if key == "limit":
                limit = parse_limit(value)
            elif key == "order_by":
                order_by = str(value)
            elif key == "only_changes":
                only_changes = bool(value)
            elif key == "slice":
                raise QueryError("slice not implemented")
            elif key not in IGNORED_GET_OPTIONS:
                raise QueryError(f"unknown option '{key}'")
    if order_by is not None and "'" in order_by:
        raise QueryError(f"ERROR -- detected ' apostrophe in order_by='{order_by}'")
    descending = order_by is not None and order_by.startswith("-")
    if descending and order_by is not None:
        order_by = order_by[1:]
    return GetOptions(limit, order_by, descending, only_changes)


def wants_delete(entries: list[dict[str, Any]]) -> bool:
    deleting = False
    for entry in entries:
        if "delete" in entry:
            deleting = bool(entry["delete"])
    return deleting
