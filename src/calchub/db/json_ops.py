"""Conditions on JSON columns that read the same on SQLite and PostgreSQL.

Each is a SQL expression compiled per dialect, so callers stay free of dialect-specific SQL:
`json_has_key(projects.c.site_license, license_id)` is true when the map has that key
(whatever its value), `json_array_contains(site_licenses.c.managers, account_id)` when the
array has that string as an element, `one_of_json(projects.c.project_id, ids)` when the
column's value is one of the strings of `ids`, a JSON array passed as one text parameter:
unlike `in_` of a list, one statement whatever the number of values, which the driver can
run as prepared (db/driver_reads.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Select, Text, cast, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class json_has_key(FunctionElement[bool]):  # named like the SQL function it stands for
    type = Boolean()
    inherit_cache = True
    name = "json_has_key"


class json_array_contains(FunctionElement[bool]):
    type = Boolean()
    inherit_cache = True
    name = "json_array_contains"


def _operands(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    column, operand = list(element.clauses)
    return compiler.process(column, **kw), compiler.process(operand, **kw)


@compiles(json_has_key, "postgresql")
def _has_key_postgresql(element: json_has_key, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = _operands(element, compiler, **kw)
    # `->` gives SQL NULL only for a missing key (a JSON null value is 'null'::jsonb).
    return f"(({column}) -> CAST({key} AS TEXT)) IS NOT NULL"


@compiles(json_has_key, "sqlite")
def _has_key_sqlite(element: json_has_key, compiler: SQLCompiler, **kw: Any) -> str:
    column, key = _operands(element, compiler, **kw)
    # json_each compares keys as text, so no key needs quoting into a JSON path.
    return (
        f"(json_type({column}) = 'object' AND "
        f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.key = {key}))"
    )


@compiles(json_array_contains, "postgresql")
def _contains_postgresql(element: json_array_contains, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = _operands(element, compiler, **kw)
    return f"(({column}) @> jsonb_build_array(CAST({value} AS TEXT)))"


@compiles(json_array_contains, "sqlite")
def _contains_sqlite(element: json_array_contains, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = _operands(element, compiler, **kw)
    return (
        f"(json_type({column}) = 'array' AND "
        f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = {value} "
        "AND json_each.type = 'text'))"
    )


def one_of_json(column: ColumnElement[Any], values: str, dialect: str) -> ColumnElement[bool]:
    """`column IN (the strings of the JSON array values)`, an IN that the planner can drive
    by an index on the column, as `in_` of a list."""
    text = literal(values, Text)
    if dialect == "sqlite":
        elements: Select[Any] = select(literal_column("value")).select_from(func.json_each(text))
    else:
        elements = select(func.jsonb_array_elements_text(cast(text, JSONB)))
    return column.in_(elements)
