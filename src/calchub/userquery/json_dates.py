"""Timestamps inside JSON fields (spec §4.2): stored as ISO strings, sent in the wire's
millisecond form."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from calchub.userquery.errors import QueryError
from calchub.userquery.values import to_datetime

# What CoCalc treats as a date inside a JSON value: an ISO 8601 date-time.
_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
)


def iso_ms(value: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as the wire shows timestamps."""
    value = value.astimezone(UTC) if value.tzinfo else value
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def json_ready(value: Any) -> Any:
    """`value` with every timestamp (e.g. from `{now}`) turned into its ISO string."""
    if isinstance(value, datetime):
        return iso_ms(value)
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_ready(item) for item in value]
    return value


def as_time(value: Any) -> datetime | None:
    """A timestamp given as a datetime, an ISO string or ms since the epoch; else None."""
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        return None
    if value is None or isinstance(value, bool | dict | list):
        return None
    try:
        return to_datetime(value)
    except QueryError:
        return None


def with_dates(value: Any, keys: frozenset[str] | None, key: str | None = None) -> Any:
    """ISO strings under `keys` (None: any key, at any depth) as timestamps, so that they are
    sent in the wire's form; other values unchanged."""
    if isinstance(value, dict):
        return {name: with_dates(item, keys, name) for name, item in value.items()}
    if isinstance(value, list):
        return [with_dates(item, keys, key) for item in value]
    if isinstance(value, str) and (keys is None or key in keys):
        parsed = as_time(value)
        return value if parsed is None else parsed
    return value
