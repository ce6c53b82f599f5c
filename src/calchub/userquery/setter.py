"""Set queries: the pipeline of spec §1.8, as one transaction (spec §5.4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from calchub.access import GROUPS_THAT_OWN, GROUPS_THAT_WRITE
from calchub.userquery.access import check_write
from calchub.userquery.context import Caller
from calchub.userquery.errors import (
    QueryError,
    admin_only,
    field_not_settable,
    set_not_allowed,
    setting,
)
from calchub.userquery.json_dates import json_ready
from calchub.userquery.merge import deep_merge
from calchub.userquery.schema import Rule, SetContext, TableSpec
from calchub.userquery.values import check_length, to_column, to_uuid

_FREE_RULES = (Rule.ACCOUNT_ID, Rule.PROJECT_WRITE)
_PROJECT_RULES = {Rule.PROJECT_WRITE: GROUPS_THAT_WRITE, Rule.PROJECT_OWNER: GROUPS_THAT_OWN}


def _prepare(caller: Caller, spec: TableSpec, query: dict[str, Any]) -> dict[str, Any]:
    """Steps 4-5: apply every field rule, then refuse keys that are not settable."""
    q = dict(query)
    for name, rule in spec.set_fields.items():
        if rule is Rule.COMPUTED:
            try:
                q[name] = spec.computed[name](q, caller)
            except QueryError:
                raise
            except Exception as exc:  # a computed value from bad input: CoCalc's wording
                raise setting(name, str(exc)) from None
        elif rule is Rule.ACCOUNT_ID:
            q[name] = caller.account_id
        elif rule in _PROJECT_RULES and q.get(name) is None:
            raise QueryError(f"FATAL: must specify {spec.name}.{name}")
        elif rule is Rule.PROJECT_CLIENT:
            raise QueryError(f"FATAL: {name} must be specified")
    for name in q:
        if name not in spec.primary_key and name not in spec.set_fields:
            raise field_not_settable(spec.name, name)
        if spec.set_fields.get(name) is Rule.ADMIN and not caller.is_admin:
            raise field_not_settable(spec.name, name)
    return q


def _columns(spec: TableSpec, q: dict[str, Any], old: Any) -> dict[str, Any]:
    """Column values to write: map fields merged into the stored value (§4.1), arrays
    replaced, others cast. Top-level nulls are ignored: a query never sets a column to NULL."""
    values: dict[str, Any] = {}
    for name, value in q.items():
        if value is None or name in spec.edges:
            continue
        column = spec.storage.c[name]
        if name in spec.json_fields:
            if not isinstance(value, dict):
                raise setting(name, f"{spec.name}.{name} must be an object")
            value = json_ready(value)
            values[name] = value if old is None else deep_merge(getattr(old, name), value)
        elif isinstance(column.type, JSON):
            values[name] = json_ready(value)
        else:
            limit = spec.truncate.get(name)
            if limit is not None and isinstance(value, str):
                value = value[:limit]
            values[name] = to_column(column, value)
    return values


def _same_project(spec: TableSpec, q: dict[str, Any], old: Any) -> None:
    """A key of one project's row never reaches another project's row (CoCalc moved such
    rows: e.g. an invite token upserted from a second project)."""
    for name, rule in spec.set_fields.items():
        if rule not in _PROJECT_RULES or name in spec.primary_key or old is None:
            continue
        if getattr(old, name) != q[name]:
            key = ", ".join(spec.primary_key)
            raise QueryError(f"FATAL: {spec.name}.{key} belongs to another project")


async def run_set(
    caller: Caller, spec: TableSpec, query: dict[str, Any], deleting: bool
) -> dict[str, Any]:
    if not spec.settable:
        raise set_not_allowed(spec.name)
    if all(spec.set_fields.get(name) in _FREE_RULES for name in query):
        return {}  # nothing to change: CoCalc answers before any permission check
    q = _prepare(caller, spec, query)
    deleting = deleting or spec.always_delete
    if deleting and not spec.delete:
        raise QueryError(f"FATAL: delete from {spec.name} not allowed")
    if spec.set_admin and not caller.is_admin:
        raise admin_only()
    for name in spec.uuid_fields:
        if q.get(name) is not None:
            q[name] = to_uuid(q[name])
    if spec.instead_of_set is not None:
        await spec.instead_of_set(caller, q, deleting)
        return {}
    table = spec.storage
    try:
        async with caller.hub.engine.begin() as conn:
            for name, rule in spec.set_fields.items():
                if rule in _PROJECT_RULES:
                    q[name] = await check_write(conn, caller, q[name], _PROJECT_RULES[rule])
            if spec.check_set is not None:
                await spec.check_set(conn, caller, q)
            # Recompute now that the project ids are in their stored (lower-case) form.
            for name in spec.computed:
                q[name] = spec.computed[name](q, caller)
            for pk in spec.primary_key:
                if q.get(pk) is None:
                    raise QueryError(f"FATAL: query must specify (primary) key '{pk}'")
            key = and_(*(table.c[pk] == to_column(table.c[pk], q[pk]) for pk in spec.primary_key))
            old = (await conn.execute(select(table).where(key).with_for_update())).first()
            _same_project(spec, q, old)
            ctx = SetContext(conn, caller, spec, q, old, {})
            if deleting:
                if spec.on_set is not None:
                    await spec.on_set(ctx)
                await conn.execute(delete(table).where(key))
            else:
                ctx.values = _columns(spec, q, old)
                if spec.on_set is not None:
                    await spec.on_set(ctx)
                await _write(ctx, key)
    except IntegrityError:
        raise QueryError(
            f"FATAL: could not write {spec.name} (a required field is missing, or a "
            "concurrent change)"
        ) from None
    for work in ctx.after_commit:
        await work()
    return {}


async def _write(ctx: SetContext, key: Any) -> None:
    table = ctx.spec.storage
    # After the hooks, so that their own messages (e.g. name rules) come first.
    for name, value in ctx.values.items():
        check_length(table.c[name], value)
    if ctx.old is None:
        values = dict(ctx.values)
        for name, make in ctx.spec.insert_defaults.items():
            if values.get(name) is None:
                values[name] = make(ctx.caller)
        await ctx.conn.execute(insert(table).values(**values))
    elif set(ctx.values) - set(ctx.spec.primary_key):
        await ctx.conn.execute(update(table).where(key).values(**ctx.values))
