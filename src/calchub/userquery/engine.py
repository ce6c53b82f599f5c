"""Runs a user query: the list form, sudo, placeholders, get/set dispatch and the
changefeed checks (spec §1)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from calchub.accounts.store import account_groups
from calchub.actor import Actor
from calchub.hub import Hub
from calchub.ids import is_valid_uuid
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError, get_not_allowed, no_table, set_not_allowed
from calchub.userquery.getter import run_get
from calchub.userquery.parse import (
    Options,
    is_get,
    read_options,
    split_query,
    substitute,
    wants_delete,
)
from calchub.userquery.registry import INTERNAL_TABLES, TABLES
from calchub.userquery.schema import TableSpec
from calchub.userquery.setter import run_set

# Queries one request may carry in its list form: with the per-value caps of the setter this
# bounds what one request can write.
MAX_QUERIES = 50


async def run_query(
    hub: Hub,
    actor: Actor,
    query: Any,
    options: Any,
    changes: Any,
    message_id: Any,
    json_text: bool = False,
) -> Any:
    """The query's answer for `actor` (an account; admins may sudo as another). With
    `json_text`, listings may be JsonText: for callers that send the answer as it is."""
    opts = read_options(options)
    caller = await _sudo(Caller.of(hub, actor), opts)
    if isinstance(query, list):
        if len(query) > MAX_QUERIES:
            raise QueryError(f"FATAL: at most {MAX_QUERIES} queries per request")
        if changes and len(query) > 1:
            raise QueryError("FATAL: changefeeds only implemented for single table")
        # In order; an error aborts the rest and earlier sets stay done (spec §1.3).
        return [
            await _run_one(caller, item, opts, changes, message_id, json_text) for item in query
        ]
    return await _run_one(caller, query, opts, changes, message_id, json_text)


async def _sudo(caller: Caller, opts: Options) -> Caller:
    if opts.sudo is None:
        return caller
    if not caller.is_admin:
        raise QueryError("user must be admin to sudo")
    if not is_valid_uuid(opts.sudo):
        raise QueryError(f"invalid account_id -- {opts.sudo}")
    account_id = str(opts.sudo).lower()
    groups = await account_groups(caller.hub.engine, account_id)
    actor = replace(caller.actor, account_id=account_id, is_admin="admin" in groups)
    return replace(caller, actor=actor)


async def _run_one(
    caller: Caller, query: Any, opts: Options, changes: Any, message_id: Any, json_text: bool
) -> dict[str, Any]:
    single = split_query(query)
    single = replace(single, value=substitute(single.value, caller.account_id, caller.now))
    spec = TABLES.get(single.table)
    if not is_get(single.value, opts.force_set):
        if changes:
            raise QueryError("FATAL: changefeeds only for read queries")
        if spec is None:
            if single.table in INTERNAL_TABLES:
                raise set_not_allowed(single.table)
            raise no_table(single.table)
        return await run_set(caller, spec, single.value, wants_delete(opts.entries))
    if spec is None:
        raise get_not_allowed(single.table)
    if changes:
        _check_changefeed(spec, single.multi, single.value, message_id)
    async with caller.hub.engine.connect() as conn:
        return await run_get(conn, caller, spec, single, opts.entries, json_text)


def _check_changefeed(spec: TableSpec, multi: bool, value: dict[str, Any], msg_id: Any) -> None:
    """CoCalc's checks; calchub then answers the initial result and creates no feed."""
    if not multi:
        raise QueryError("FATAL: changefeeds only implemented for multi-document queries")
    if not is_valid_uuid(msg_id):
        raise QueryError("FATAL: changes.id must be a uuid")
    if spec.instead_of_get is not None:
        raise QueryError("changefeeds are not supported for querying this table")
    for pk in spec.primary_key:
        if pk not in value:
            raise QueryError(f"FATAL: changefeed MUST include primary key (='{pk}') in query")
