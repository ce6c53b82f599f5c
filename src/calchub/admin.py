"""Operator actions behind `calchub admin ...`: they work on the database directly, so they
also work before the first `serve`, and beside a running server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select, update

from calchub.accounts import api_keys
from calchub.accounts.creation import CreationFailed, NewAccount, create_account
from calchub.accounts.keys import change_key, get_key, list_api_keys, revoke_api_key
from calchub.accounts.passwords import password_problem
from calchub.accounts.store import get_account, is_valid_email
from calchub.actor import Actor
from calchub.db.tables import accounts
from calchub.errors import Invalid
from calchub.hub import Hub

ADMIN_BOOTSTRAP_EMAIL = "admin@localhost"


class AdminError(Invalid):
    """An operator's request that cannot be carried out (bad value, unknown account)."""


async def admin_create_account(
    hub: Hub,
    *,
    email: str,
    first_name: str,
    last_name: str,
    password: str | None,
    admin: bool,
    api_key: bool,
    welcome: bool = True,
) -> dict[str, Any]:
    if not is_valid_email(email):
        raise AdminError(f"not a valid email address: {email!r}")
    if password is not None and (problem := password_problem(password)):
        raise AdminError(problem)
    new = NewAccount(
        first_name=first_name, last_name=last_name, email_address=email, password=password
    )
    try:
        created = await create_account(
            hub,
            new,
            ip="cli",
            creator_is_admin=True,
            get_api_key=api_key,
            groups=["admin"] if admin else [],
            check_fields=False,
            welcome=welcome,
        )
    except CreationFailed as exc:
        raise AdminError("; ".join(exc.reason.values())) from None
    result: dict[str, Any] = {"account_id": created.account_id}
    if created.api_key:
        result["api_key"] = created.api_key
    return result


async def set_banned(hub: Hub, account_id: str, banned: bool) -> None:
    async with hub.engine.begin() as conn:
        if await get_account(conn, account_id) is None:
            raise AdminError(f"no account {account_id}")
        await conn.execute(
            update(accounts)
            .where(accounts.c.account_id == account_id.lower())
            .values(banned=banned)
        )


def parse_expiry(text: str | None) -> datetime | None:
    """An expiry given on the command line: an ISO 8601 moment (UTC unless it says
    otherwise), or `never`."""
    if text is None or text == "never":
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise AdminError(f"not an ISO 8601 date and time, nor 'never': {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _key_owner(hub: Hub, account_id: str) -> Actor:
    """The account, as the actor managing its own keys."""
    async with hub.engine.connect() as conn:
        account = await get_account(conn, account_id)
    if account is None or account.deleted:
        raise AdminError(f"no account {account_id}")
    return Actor(account_id=account.account_id)


async def new_api_key(
    hub: Hub,
    account_id: str,
    name: str,
    *,
    expire: str | None = None,
    project_id: str | None = None,
) -> dict[str, Any]:
    owner = await _key_owner(hub, account_id)
    created = await api_keys.create(
        hub, owner, name=name, expire=parse_expiry(expire), project_id=project_id
    )
    return {
        "id": created["id"],
        "account_id": created["account_id"],
        "project_id": project_id.lower() if project_id else None,
        "expire": created["expire"].isoformat() if created["expire"] else None,
        "api_key": created["secret"],
    }


async def edit_api_key(
    hub: Hub, key_id: int, *, name: str | None = None, expire: str | None = None
) -> dict[str, Any]:
    async with hub.engine.begin() as conn:
        key = await get_key(conn, key_id)
        if key is None:
            raise AdminError(f"no API key with id {key_id}")
        changes: dict[str, object] = {}
        if name is not None:
            changes["name"] = name
        if expire is not None:
            changes["expire"] = parse_expiry(expire)
        if changes:
            await change_key(conn, key_id, changes)
    return (await describe_api_keys(hub, None, key_id=key_id))[0]


async def remove_api_key(hub: Hub, key_id: int) -> None:
    async with hub.engine.begin() as conn:
        if not await revoke_api_key(conn, key_id):
            raise AdminError(f"no API key with id {key_id}")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def describe_api_keys(
    hub: Hub, account_id: str | None, *, key_id: int | None = None
) -> list[dict[str, Any]]:
    async with hub.engine.connect() as conn:
        keys = await list_api_keys(conn, account_id)
    return [
        {
            "id": k.id,
            "account_id": k.account_id,
            "project_id": k.project_id,
            "prefix": k.prefix,
            "trunc": k.trunc,
            "name": k.name,
            "created": k.created.isoformat(),
            "expire": _iso(k.expire),
            "last_used": _iso(k.last_used),
        }
        for k in keys
        if key_id is None or k.id == key_id
    ]


async def find_accounts(
    hub: Hub, query: str | None = None, *, admins_only: bool = False, deleted: bool = False
) -> list[dict[str, Any]]:
    """Accounts, oldest first; `query` matches a part of the email address or either name,
    or the start of the account id, case-insensitively."""
    stmt = select(
        accounts.c.account_id,
        accounts.c.email_address,
        accounts.c.first_name,
        accounts.c.last_name,
        accounts.c.groups,
        accounts.c.banned,
        accounts.c.deleted,
        accounts.c.created,
        accounts.c.last_active,
    ).order_by(accounts.c.created, accounts.c.account_id)
    if not deleted:
        stmt = stmt.where(accounts.c.deleted.is_(False))
    if query:
        needle = query.strip().lower()
        stmt = stmt.where(
            or_(
                *(
                    func.lower(column).contains(needle, autoescape=True)
                    for column in (
                        accounts.c.email_address,
                        accounts.c.first_name,
                        accounts.c.last_name,
                    )
                ),
                accounts.c.account_id.startswith(needle, autoescape=True),
            )
        )
    async with hub.engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    found = [
        {
            "account_id": row.account_id,
            "email_address": row.email_address,
            "first_name": row.first_name,
            "last_name": row.last_name,
            "admin": "admin" in (row.groups or []),
            "banned": bool(row.banned),
            "deleted": bool(row.deleted),
            "created": row.created.isoformat(),
            "last_active": row.last_active.isoformat() if row.last_active else None,
        }
        for row in rows
    ]
    # The groups column is JSON, whose containment tests differ between the two databases.
    return [a for a in found if a["admin"]] if admins_only else found


async def ensure_admin(hub: Hub) -> dict[str, Any] | None:
    """On first start (no accounts at all) create an admin with an API key, returned once."""
    async with hub.engine.connect() as conn:
        if (await conn.execute(select(accounts.c.account_id).limit(1))).first() is not None:
            return None
    try:
        created = await admin_create_account(
            hub,
            email=ADMIN_BOOTSTRAP_EMAIL,
            first_name="Admin",
            last_name="User",
            password=None,
            admin=True,
            api_key=True,
            welcome=False,
        )
    except AdminError:
        # Another hub sharing the database got there first: nothing left to do.
        async with hub.engine.connect() as conn:
            if (await conn.execute(select(accounts.c.account_id).limit(1))).first() is not None:
                return None
        raise
    return {**created, "email_address": ADMIN_BOOTSTRAP_EMAIL}
