"""`registration_tokens` (spec §3.16): admins list, write and delete the tokens that
create_account asks for while any of them is active."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.db.tables import registration_tokens
from calchub.userquery.context import Caller
from calchub.userquery.errors import QueryError
from calchub.userquery.output import finish
from calchub.userquery.schema import GetContext, Rule, TableSpec
from calchub.userquery.values import check_length, to_column

ALL = "*"
FIELDS = ("token", "descr", "expires", "counter", "limit", "disabled")
UNCLEAR = "Error: don't know what to do with this query"


def _token(query: dict[str, Any]) -> str:
    token = query.get("token")
    if token is None or token == "":
        raise QueryError(UNCLEAR)
    column = registration_tokens.c.token
    value = to_column(column, token)
    check_length(column, value)
    return str(value)


def _row(row: Any) -> dict[str, Any]:
    return {name: getattr(row, name) for name in FIELDS}


async def _get(ctx: GetContext) -> dict[str, Any]:
    """`token: "*"` lists every token (as a list, in either form, as CoCalc answers); any
    other token reads that one. CoCalc upserts the token instead, resetting its fields to
    the query's nulls: a read never writes here."""
    token = _token(ctx.query.value)
    if token == ALL:
        rows = await ctx.conn.execute(
            select(registration_tokens).order_by(registration_tokens.c.token)
        )
        return finish(ctx.spec, [_row(row) for row in rows], True)
    row = (
        await ctx.conn.execute(
            select(registration_tokens).where(registration_tokens.c.token == token)
        )
    ).first()
    return finish(ctx.spec, [_row(row)] if row else [], ctx.query.multi)


def _values(query: dict[str, Any]) -> dict[str, Any]:
    """CoCalc's upsert: every field is replaced; empty text and dates become NULL, a
    negative limit means no limit, and disabled defaults to false."""
    c = registration_tokens.c
    descr = query.get("descr")
    expires = query.get("expires")
    limit = query.get("limit")
    disabled = query.get("disabled")
    values = {
        "descr": to_column(c.descr, descr) if descr else None,
        "expires": to_column(c.expires, expires) if expires else None,
        "limit": to_column(c.limit, limit) if limit is not None else None,
        "disabled": to_column(c.disabled, disabled) if disabled is not None else False,
    }
    if values["limit"] is not None and values["limit"] < 0:
        values["limit"] = None
    return values


async def _upsert(conn: AsyncConnection, token: str, values: dict[str, Any]) -> None:
    """The counter of an existing token is kept."""
    changed = await conn.execute(
        update(registration_tokens).where(registration_tokens.c.token == token).values(**values)
    )
    if changed.rowcount == 0:
        await conn.execute(insert(registration_tokens).values(token=token, counter=0, **values))


async def _set(caller: Caller, query: dict[str, Any], deleting: bool) -> None:
    token = _token(query)
    if token == ALL and not deleting:
        return  # "*" names every token; CoCalc only reads them here
    values = _values(query)
    try:
        async with caller.hub.engine.begin() as conn:
            if deleting:
                await conn.execute(
                    delete(registration_tokens).where(registration_tokens.c.token == token)
                )
            else:
                await _upsert(conn, token, values)
    except IntegrityError:
        raise QueryError(f"FATAL: registration token '{token}' was created concurrently") from None


REGISTRATION_TOKENS = TableSpec(
    name="registration_tokens",
    storage=registration_tokens,
    primary_key=("token",),
    get_fields={name: None for name in FIELDS},
    set_fields={name: Rule.ALLOW for name in FIELDS if name != "counter"},
    get_admin=True,
    set_admin=True,
    delete=True,
    instead_of_get=_get,
    instead_of_set=_set,
)

SPECS = (REGISTRATION_TOKENS,)
