"""The shape of a get's result (spec §1.7 post-processing, §5.6)."""

from __future__ import annotations

from typing import Any

from calchub.userquery.merge import apply_default
from calchub.userquery.schema import TableSpec


def finish(spec: TableSpec, rows: list[dict[str, Any]], multi: bool) -> dict[str, Any]:
    """Defaults filled in; the array form drops null-valued keys, the object form keeps them
    and answers `{}` when nothing matched."""
    rows = [
        {name: apply_default(value, spec.default(name)) for name, value in row.items()}
        for row in rows
    ]
    if multi:
        return {spec.name: [{k: v for k, v in row.items() if v is not None} for row in rows]}
    return {spec.name: rows[0]} if rows else {}
