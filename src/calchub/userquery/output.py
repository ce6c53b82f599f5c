"""The shape of a get's result (spec §1.7 post-processing, §5.6)."""

from __future__ import annotations

from typing import Any

from calchub.userquery.json_dates import with_dates
from calchub.userquery.merge import apply_default
from calchub.userquery.schema import TableSpec


def finish(spec: TableSpec, rows: list[dict[str, Any]], multi: bool) -> dict[str, Any]:
    """Defaults filled in and dates inside JSON fields in wire form; the array form drops
    null-valued keys, the object form keeps them and answers `{}` when nothing matched."""
    rows = [
        {
            name: apply_default(_dated(spec, name, value), spec.get_fields.get(name))
            for name, value in row.items()
        }
        for row in rows
    ]
    if multi:
        return {spec.name: [{k: v for k, v in row.items() if v is not None} for row in rows]}
    return {spec.name: rows[0]} if rows else {}


def _dated(spec: TableSpec, name: str, value: Any) -> Any:
    """ISO strings of a JSON field's date keys as timestamps (spec §4.2)."""
    if name not in spec.json_dates or value is None:
        return value
    return with_dates(value, spec.json_dates[name])
