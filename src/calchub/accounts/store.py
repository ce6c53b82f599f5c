"""Account rows: the reads and writes that several account operations share."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from calchub.db.tables import accounts
from calchub.errors import Invalid
from calchub.ids import is_valid_uuid

# CoCalc's (RFC 822 style) rule: something@something, no spaces; `a@b` is valid.
_EMAIL = re.compile(r"^[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+$")
MAX_EMAIL_LENGTH = 254


def is_valid_email(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= MAX_EMAIL_LENGTH
        and bool(_EMAIL.match(value))
        and not any(unicodedata.category(c) == "Cc" for c in value)
    )


@dataclass(frozen=True)
class AccountRow:
    account_id: str
    email_address: str | None
    password_hash: str | None
    first_name: str | None
    last_name: str | None
    groups: list[str]
    banned: bool
    deleted: bool
    passports: dict[str, Any] | None
    # Addresses the account has confirmed through a mailed link: {address: when}.
    verified_emails: dict[str, Any]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.groups

    def has_verified(self, email: str) -> bool:
        return email.lower() in self.verified_emails


_COLUMNS = (
    accounts.c.account_id,
    accounts.c.email_address,
    accounts.c.password_hash,
    accounts.c.first_name,
    accounts.c.last_name,
    accounts.c.groups,
    accounts.c.banned,
    accounts.c.deleted,
    accounts.c.passports,
    accounts.c.email_address_verified,
)


def _row(row: Any) -> AccountRow:
    return AccountRow(
        account_id=row.account_id,
        email_address=row.email_address,
        password_hash=row.password_hash,
        first_name=row.first_name,
        last_name=row.last_name,
        groups=list(row.groups or []),
        banned=bool(row.banned),
        deleted=bool(row.deleted),
        passports=row.passports,
        verified_emails=dict(row.email_address_verified or {}),
    )


async def get_account(conn: AsyncConnection, account_id: str) -> AccountRow | None:
    if not is_valid_uuid(account_id):
        return None
    row = (
        await conn.execute(select(*_COLUMNS).where(accounts.c.account_id == account_id.lower()))
    ).first()
    return _row(row) if row else None


async def get_account_by_email(conn: AsyncConnection, email: str) -> AccountRow | None:
    row = (
        await conn.execute(select(*_COLUMNS).where(accounts.c.email_address == email.lower()))
    ).first()
    return _row(row) if row else None


async def email_taken(conn: AsyncConnection, email: str) -> bool:
    count = await conn.scalar(
        select(func.count()).select_from(accounts).where(accounts.c.email_address == email.lower())
    )
    return bool(count)


async def account_groups(engine: AsyncEngine, account_id: str | None) -> list[str]:
    if account_id is None:
        return []
    async with engine.connect() as conn:
        groups = await conn.scalar(
            select(accounts.c.groups).where(accounts.c.account_id == account_id)
        )
    return list(groups or [])


async def usernames(engine: AsyncEngine, account_ids: list[str]) -> dict[str, dict[str, Any]]:
    """First and last names by account id, keyed as given; `{}` for an unknown account."""
    for account_id in account_ids:
        if not is_valid_uuid(account_id):
            listed = json.dumps(account_ids, separators=(",", ":"))
            raise Invalid(f"invalid uuid {account_id} in account_ids -- {listed}")
    wanted = {a.lower() for a in account_ids}
    if not wanted:
        return {}
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(accounts.c.account_id, accounts.c.first_name, accounts.c.last_name).where(
                accounts.c.account_id.in_(wanted)
            )
        )
        names = {r.account_id: {"first_name": r.first_name, "last_name": r.last_name} for r in rows}
    return {a: names.get(a.lower(), {}) for a in account_ids}
