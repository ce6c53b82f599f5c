"""Get queries: scope, filters, options and output shaping (spec §1.7)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.userquery.access import check_read, member_project_ids
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, field_not_gettable
from calchub.userquery.merge import apply_default
from calchub.userquery.parse import GetOptions, SingleQuery, get_options, with_defaults
from calchub.userquery.project_edge import state_of, users_maps
from calchub.userquery.schema import VIRTUAL_FIELDS, Scope, TableSpec
from calchub.userquery.values import to_column

# Comparison operators of a filter object; `==` is `=` (spec §1.7).
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _is_comparison(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and next(iter(value)) in OPERATORS


def _comparisons(table: str, name: str, value: dict[str, Any]) -> list[tuple[Any, Any]]:
    pairs = []
    for op, operand in value.items():
        if op not in OPERATORS:
            # CoCalc puts later keys into SQL verbatim; calchub accepts only real operators.
            raise QueryError(f"FATAL: invalid comparison operator '{op}' for {table}.{name}")
        pairs.append((OPERATORS[op], operand))
    return pairs


class _Plan:
    """The SQL conditions, and the filters that must run in Python (JSON and edge fields,
    whose stored form differs between backends or from the wire form)."""

    def __init__(self) -> None:
        self.where: list[Any] = []
        self.python: list[tuple[str, Callable[[Any, Any], Any], Any]] = []


def _filters(spec: TableSpec, value: dict[str, Any], plan: _Plan) -> None:
    for name, wanted in value.items():
        if wanted is None:
            continue
        pairs = (
            _comparisons(spec.name, name, wanted)
            if _is_comparison(wanted)
            else [(operator.eq, wanted)]
        )
        column: Column[Any] | None = spec.storage.c.get(name)
        # Every JSON column, not just the settable ones: SQL equality on JSON fails on
        # PostgreSQL (json = varchar) and compares text on SQLite.
        in_python = (
            name in VIRTUAL_FIELDS
            or name in spec.json_fields
            or column is None
            or isinstance(column.type, JSON)
        )
        for op, operand in pairs:
            if in_python or isinstance(operand, dict | list):
                plan.python.append((name, op, operand))
            else:
                assert column is not None
                plan.where.append(op(column, to_column(column, operand)))


async def _scope(conn: AsyncConnection, caller: Caller, spec: TableSpec, q: dict[str, Any]) -> Any:
    table = spec.storage
    if spec.scope is Scope.OWN_ACCOUNT:
        return [table.c.account_id == caller.account_id]
    if spec.scope is Scope.MEMBER_PROJECTS:
        where = []
        if q.get("project_id"):
            where.append(table.c.project_id == await check_read(conn, caller, q["project_id"]))
        else:
            where.append(table.c.project_id.in_(member_project_ids(caller.account_id)))
        if spec.recent is not None:
            where.append(table.c.last_edited >= caller.now - spec.recent)
        return where
    # Anonymous table: any project_id, as in CoCalc. Withdrawn (disabled) paths are shown only
    # to the project's members and admins: their names and descriptions were never public.
    if not q.get("project_id"):
        raise QueryError("FATAL: must specify project_id")
    where = [table.c.project_id == str(q["project_id"])]
    if not caller.is_admin:
        where.append(
            (table.c.disabled.is_(False))
            | table.c.project_id.in_(member_project_ids(caller.account_id))
        )
    return where


def _order(spec: TableSpec, opts: GetOptions) -> Any:
    if opts.order_by is None:
        return None
    column = spec.storage.c.get(opts.order_by)
    if opts.order_by not in spec.get_fields or column is None:
        raise QueryError(f"ERROR -- invalid order_by='{opts.order_by}'")
    # PostgreSQL's own NULL placement, on both backends.
    return column.desc().nulls_first() if opts.descending else column.asc().nulls_last()


def _matches(row: dict[str, Any], checks: list[tuple[str, Callable[[Any, Any], Any], Any]]) -> bool:
    for name, op, operand in checks:
        try:
            if not op(row.get(name), operand):
                return False
        except TypeError:
            return False
    return True


async def run_get(
    conn: AsyncConnection,
    caller: Caller,
    spec: TableSpec,
    query: SingleQuery,
    entries: list[dict[str, Any]],
) -> dict[str, Any]:
    q = query.value
    for name in q:
        if name not in spec.get_fields:
            raise field_not_gettable(spec.name, name)
    plan = _Plan()
    plan.where.extend(await _scope(conn, caller, spec, q))
    _filters(spec, q, plan)
    opts = get_options(with_defaults(entries, spec.default_options))
    if opts.only_changes:
        return {}
    limit = opts.limit if opts.limit is not None or query.multi else 1
    stmt = select(spec.storage).where(*plan.where)
    order = _order(spec, opts)
    if order is not None:
        stmt = stmt.order_by(order)
    if limit is not None and not plan.python:
        stmt = stmt.limit(limit)
    raw = list(await conn.execute(stmt))
    rows = await _shape(conn, spec, q, raw)
    rows = [row for row in rows if _matches(row, plan.python)]
    if limit is not None:
        rows = rows[:limit]
    rows = [_with_defaults(spec, row) for row in rows]
    if query.multi:
        # Array form drops null-valued keys; the object form keeps them (spec §1.7 step 4).
        return {spec.name: [{k: v for k, v in row.items() if v is not None} for row in rows]}
    return {spec.name: rows[0]} if rows else {}


async def _shape(
    conn: AsyncConnection, spec: TableSpec, q: dict[str, Any], raw: list[Any]
) -> list[dict[str, Any]]:
    users = await users_maps(conn, (row.project_id for row in raw)) if "users" in q else {}
    shaped = []
    for row in raw:
        out: dict[str, Any] = {}
        for name in q:
            if name == "users":
                out[name] = users.get(row.project_id, {})
            elif name == "state":
                out[name] = state_of(row)
            else:
                out[name] = getattr(row, name)
        shaped.append(out)
    return shaped


def _with_defaults(spec: TableSpec, row: dict[str, Any]) -> dict[str, Any]:
    return {name: apply_default(value, spec.default(name)) for name, value in row.items()}
