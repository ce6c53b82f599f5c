"""The shape of a get's result (spec §1.7 post-processing, §5.6)."""

from __future__ import annotations

from typing import Any

from calchub.userquery.json_dates import with_dates
from calchub.userquery.merge import apply_default
from calchub.userquery.schema import TableSpec


def finish(spec: TableSpec, rows: list[dict[str, Any]], multi: bool) -> dict[str, Any]:
    """Defaults filled in and dates inside JSON fields in wire form; the array form drops
    null-valued keys, the object form keeps them and answers `{}` when nothing matched."""
    if not rows:
        return {spec.name: []} if multi else {}
    # Every row has the same fields; what each needs is looked up once, not per row.
    plan = [
        (name, name in spec.json_dates, spec.json_dates.get(name), spec.get_fields.get(name))
        for name in rows[0]
    ]
    finished = []
    for row in rows:
        out: dict[str, Any] = {}
        for name, dated, dates, default in plan:
            value = row[name]
            if dated and value is not None:
                # ISO strings of a JSON field's date keys as timestamps (spec §4.2).
                value = with_dates(value, dates)
            # apply_default returns any other value as it is.
            if default is not None and (value is None or (isinstance(value, dict) and default)):
                value = apply_default(value, default)
            if value is not None or not multi:
                out[name] = value
        finished.append(out)
    return {spec.name: finished} if multi else {spec.name: finished[0]}
