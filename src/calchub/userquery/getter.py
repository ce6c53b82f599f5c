"""Get queries: scope, filters, options and output shaping (spec §1.7)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.access import member_projects, membership_of
from calchub.db import json_sql
from calchub.db.driver_reads import read_rows, read_text
from calchub.db.tables import project_users, public_paths
from calchub.json_text import JsonText
from calchub.userquery import rendered_rows
from calchub.userquery.access import check_read
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, admin_only, field_not_gettable, get_not_allowed
from calchub.userquery.json_rows import json_array, row_json
from calchub.userquery.output import finish
from calchub.userquery.parse import GetOptions, SingleQuery, get_options, with_defaults
from calchub.userquery.schema import GetContext, Scope, TableSpec
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


PythonCheck = tuple[str, Callable[[Any, Any], Any], Any]


def _filters(spec: TableSpec, value: dict[str, Any]) -> tuple[list[Any], list[PythonCheck]]:
    """SQL conditions, and the filters that must run in Python: JSON, edge and unstored
    fields, whose stored form differs between backends or from the wire form."""
    where: list[Any] = []
    python: list[PythonCheck] = []
    for name, wanted in value.items():
        if wanted is None:
            continue
        pairs = (
            _comparisons(spec.name, name, wanted)
            if _is_comparison(wanted)
            else [(operator.eq, wanted)]
        )
        column: Column[Any] | None = spec.storage.c.get(name)
        # Every JSON column: SQL equality on JSON fails on PostgreSQL (json = varchar) and
        # compares text on SQLite.
        in_python = name in spec.edges or column is None or isinstance(column.type, JSON)
        for op, operand in pairs:
            if in_python or isinstance(operand, dict | list):
                python.append((name, op, operand))
            else:
                assert column is not None
                where.append(op(column, to_column(column, operand)))
    return where, python


async def _scope(conn: AsyncConnection, caller: Caller, spec: TableSpec, q: dict[str, Any]) -> Any:
    table = spec.storage
    groups = spec.read_groups
    where: list[Any] = []
    if spec.scope is Scope.OWN_ACCOUNT:
        where.append(table.c.account_id == caller.account_id)
    elif spec.scope is Scope.MEMBER_PROJECTS:
        if q.get("project_id"):
            project_id = await check_read(conn, caller, q["project_id"], groups)
            where.append(table.c.project_id == project_id)
        else:
            where.extend(membership_of(table.c.project_id, caller.account_id, groups))
    elif spec.scope is Scope.PROJECT_MEMBER:
        where.append(table.c.project_id == await check_read(conn, caller, _project(q), groups))
    elif spec.scope is Scope.PROJECT_ANY:
        where.append(table.c.project_id == str(_project(q)))
    elif spec.scope is Scope.PROJECT_PUBLIC:
        project_id = str(_project(q))
        published = select(public_paths.c.id).where(
            public_paths.c.project_id == project_id, public_paths.c.disabled.is_(False)
        )
        if (await conn.execute(published.limit(1))).first() is None:
            raise QueryError("project does not have any public paths")
        where.append(table.c.project_id == project_id)
    elif spec.scope is Scope.COLLABORATORS:
        shared = select(project_users.c.account_id).where(
            project_users.c.project_id.in_(member_projects(caller.account_id, groups)),
            project_users.c.group.in_(groups),
        )
        where.append(table.c.account_id.in_(shared))
    elif spec.scope is Scope.PROJECT_COLLABORATORS:
        project_id = await check_read(conn, caller, _project(q), groups)
        members = select(project_users.c.account_id).where(
            project_users.c.project_id == project_id, project_users.c.group.in_(groups)
        )
        where.append(table.c.account_id.in_(members))
    if spec.recent is not None:
        name, window = spec.recent
        where.append(table.c[name] >= caller.now - window)
    if spec.where is not None:
        where.extend(spec.where(table, caller))
    if spec.query_where is not None:
        where.extend(spec.query_where(table, caller, q))
    return where


def _project(q: dict[str, Any]) -> Any:
    if not q.get("project_id"):
        raise QueryError("FATAL: must specify project_id")
    return q["project_id"]


def _order(spec: TableSpec, opts: GetOptions) -> Any:
    if opts.order_by is None:
        return None
    column = spec.storage.c.get(opts.order_by)
    if opts.order_by not in spec.get_fields or column is None:
        raise QueryError(f"ERROR -- invalid order_by='{opts.order_by}'")
    # PostgreSQL's own NULL placement, on both backends.
    return column.desc().nulls_first() if opts.descending else column.asc().nulls_last()


def _read_columns(spec: TableSpec, wanted: dict[str, Any]) -> list[Any]:
    """Only the columns the answer needs: decoding unused JSON and time columns of every row
    is most of the cost of large results."""
    table = spec.storage
    names = set(spec.primary_key)
    for name in wanted:
        if name in spec.edges:
            needed = spec.edge_columns.get(name)
            if needed is None:
                return list(table.c)
            names.update(needed)
        else:
            names.add(name)
    return [column for column in table.c if column.name in names]


def _matches(row: dict[str, Any], checks: list[PythonCheck]) -> bool:
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
    json_text: bool = False,
) -> dict[str, Any]:
    """The get's answer. With `json_text`, a listing may come as JsonText the database
    wrote (json_rows.py): for callers that only send the answer on."""
    if not spec.gettable:
        raise get_not_allowed(spec.name)
    q = query.value
    for name in q:
        if name not in spec.get_fields:
            raise field_not_gettable(spec.name, name)
    if spec.check_get is not None:
        await spec.check_get(conn, caller, q)
    for name, compute in spec.get_computed.items():
        q[name] = compute(q, caller)
    if spec.get_admin and not caller.is_admin:
        raise admin_only()
    if spec.instead_of_get is not None:
        return await spec.instead_of_get(GetContext(conn, caller, spec, query, entries))
    if json_text and query.multi and _lists_memberships(spec, q):
        listed = await _membership_listing(conn, caller, spec, q, entries)
        if listed is not None:
            return listed
    where = await _scope(conn, caller, spec, q)
    wanted = {name: value for name, value in q.items() if name not in spec.remove_from_query}
    sql_filters, python_filters = _filters(spec, wanted)
    opts = get_options(with_defaults(entries, spec.default_options))
    if opts.only_changes:
        return {}
    limit = opts.limit if opts.limit is not None or query.multi else 1
    order = _order(spec, opts)
    if json_text and query.multi and not python_filters:
        row = row_json(spec, list(wanted), conn.dialect)
        if row is not None and rendered_rows.reusable(spec):
            plan = rendered_rows.plan_listing(
                spec, tuple(wanted), row, [*where, *sql_filters], order, limit, conn.dialect.name
            )
            return {spec.name: await rendered_rows.listing(conn, caller.hub.rendered_rows, plan)}
        if row is not None:
            written = select(row.label("row")).select_from(spec.storage)
            written = written.where(*where, *sql_filters)
            return {spec.name: await _json_rows(conn, written, order, limit)}
    stmt = select(*_read_columns(spec, wanted)).where(*where, *sql_filters)
    if order is not None:
        stmt = stmt.order_by(order)
    if limit is not None and not python_filters:
        stmt = stmt.limit(limit)
    raw = await read_rows(conn, stmt)
    rows = [
        row
        for row in await _shape(conn, caller, spec, wanted, raw)
        if _matches(row, python_filters)
    ]
    if limit is not None:
        rows = rows[:limit]
    return finish(spec, rows, query.multi)


def _lists_memberships(spec: TableSpec, q: dict[str, Any]) -> bool:
    """Whether the get lists the caller's projects' rows with no condition but membership:
    its statements then follow from the caller, the fields and the options alone."""
    return (
        spec.scope is Scope.MEMBER_PROJECTS
        and spec.recent is None
        and spec.where is None
        and spec.query_where is None
        and all(value is None for value in q.values())
        and rendered_rows.reusable(spec)
    )


async def _membership_listing(
    conn: AsyncConnection,
    caller: Caller,
    spec: TableSpec,
    q: dict[str, Any],
    entries: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """The answer of a get `_lists_memberships` holds, with its statements kept by the
    caller, fields and options: building them costs as much as reading the rows' versions.
    None when a field needs the general path."""
    opts = get_options(with_defaults(entries, spec.default_options))
    if opts.only_changes:
        return {}
    fields = tuple(name for name in q if name not in spec.remove_from_query)
    dialect = conn.dialect
    key = (spec.name, caller.account_id, fields, opts, dialect.name)
    store = caller.hub.rendered_rows
    plan = store.plan(key)
    if plan is None:
        row = row_json(spec, list(fields), dialect)
        if row is None:
            return None
        where = membership_of(spec.storage.c.project_id, caller.account_id, spec.read_groups)
        order = _order(spec, opts)
        plan = rendered_rows.plan_listing(spec, fields, row, where, order, opts.limit, dialect.name)
        store.keep_plan(key, plan)
    return {spec.name: await rendered_rows.listing(conn, store, plan)}


async def _json_rows(conn: AsyncConnection, rows: Any, order: Any, limit: int | None) -> JsonText:
    """The rows the database wrote, as one JSON array."""
    if limit is not None:
        rows = rows.limit(limit)
    if order is not None:
        # The rows one by one, in order: neither backend promises an aggregate its input
        # in the order of a subquery.
        found = await read_rows(conn, rows.order_by(order))
        return JsonText(json_array([row[0] for row in found]))
    # In no particular order, as the general path's: joined by the database, one value to
    # fetch instead of a row per project.
    inner = rows.subquery()
    text = await read_text(conn, select(json_sql.joined(inner.c.row, conn.dialect.name)))
    return JsonText(json_array([text] if text else []))


async def _shape(
    conn: AsyncConnection, caller: Caller, spec: TableSpec, q: dict[str, Any], raw: list[Any]
) -> list[dict[str, Any]]:
    """The requested fields of each row, in query order; fields calchub does not store are
    null."""
    edges = {name: await spec.edges[name](conn, caller, raw) for name in q if name in spec.edges}
    if not raw:
        return []
    # Where each field comes from, found once: an edge's list, a column's place in the row,
    # or neither (null).
    places = {name: n for n, name in enumerate(raw[0]._fields)}
    sources = [(name, edges.get(name), places.get(name)) for name in q]
    shaped = []
    for index, row in enumerate(raw):
        shaped.append(
            {
                name: values[index]
                if values is not None
                else (None if place is None else row[place])
                for name, values, place in sources
            }
        )
    return shaped
