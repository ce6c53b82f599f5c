"""Set queries: the pipeline of spec §1.8, as one transaction (spec §5.4)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from calchub.projects.scheduler import request_action
from calchub.userquery import hooks
from calchub.userquery.access import check_write
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, field_not_settable, setting
from calchub.userquery.merge import deep_merge
from calchub.userquery.schema import PUBLIC_PATHS, Rule, TableSpec
from calchub.userquery.values import to_column

_FREE_RULES = (Rule.ACCOUNT_ID, Rule.PROJECT_WRITE)


def _prepare(caller: Caller, spec: TableSpec, query: dict[str, Any]) -> dict[str, Any]:
    """Steps 4-5: apply every field rule, then refuse keys that are not settable."""
    q = dict(query)
    for name, rule in spec.set_fields.items():
        if rule is Rule.COMPUTED and spec is PUBLIC_PATHS:
            q[name] = hooks.public_path_id(q)
        elif rule is Rule.ACCOUNT_ID:
            q[name] = caller.account_id
        elif rule is Rule.PROJECT_WRITE and name not in q:
            raise QueryError(f"FATAL: must specify {spec.name}.{name}")
    for name in q:
        if name != spec.primary_key and name not in spec.set_fields:
            raise field_not_settable(spec.name, name)
    return q


def _columns(spec: TableSpec, q: dict[str, Any], old: Any) -> dict[str, Any]:
    """Column values to write: JSON fields merged into the stored value (§4.1), others cast.
    Top-level nulls are ignored: a user query never sets a column to NULL."""
    values: dict[str, Any] = {}
    for name, value in q.items():
        if value is None or name in ("users", "action_request"):
            continue
        column = spec.storage.c[name]
        if name in spec.json_fields:
            if not isinstance(value, dict):
                raise setting(name, f"{spec.name}.{name} must be an object")
            values[name] = value if old is None else deep_merge(getattr(old, name), value)
        else:
            values[name] = to_column(column, value)
            limit = spec.truncate.get(name)
            if limit is not None and isinstance(values[name], str):
                values[name] = values[name][:limit]
    return values


async def run_set(
    caller: Caller, spec: TableSpec, query: dict[str, Any], deleting: bool
) -> dict[str, Any]:
    if all(spec.set_fields.get(name) in _FREE_RULES for name in query):
        return {}  # nothing to change: CoCalc answers before any permission check
    q = _prepare(caller, spec, query)
    if deleting:
        raise QueryError(f"FATAL: delete from {spec.name} not allowed")
    action: str | None = None
    table = spec.storage
    try:
        async with caller.hub.engine.begin() as conn:
            for name, rule in spec.set_fields.items():
                if rule is Rule.PROJECT_WRITE:
                    q[name] = await check_write(conn, caller, q[name])
            if spec is PUBLIC_PATHS:
                q["id"] = hooks.public_path_id(q)
                await hooks.check_public_path_name(conn, q)
            pk = q.get(spec.primary_key)
            if pk is None:
                raise QueryError(f"FATAL: query must specify (primary) key '{spec.primary_key}'")
            key = table.c[spec.primary_key] == pk
            old = (await conn.execute(select(table).where(key).with_for_update())).first()
            values = _columns(spec, q, old)
            if q.get("users") is not None:
                await hooks.apply_users(conn, caller, pk, q["users"])
            if q.get("action_request") is not None:
                stored = None if old is None else old.action_request
                action, merged = hooks.action_request(
                    stored, q["action_request"], caller.now.isoformat()
                )
                if action is None:
                    values["action_request"] = merged
            if old is None:
                await conn.execute(insert(table).values(**values))
            elif set(values) - {spec.primary_key}:
                await conn.execute(update(table).where(key).values(**values))
    except IntegrityError:
        raise QueryError(f"FATAL: could not write {spec.name} (concurrent change)") from None
    if action is not None:
        # Its own transaction, after ours: SQLite has a single writer.
        await request_action(caller.hub, str(pk), action)
    return {}
