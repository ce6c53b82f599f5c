"""Forgotten passwords: single-use, expiring reset codes sent by email."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, func, insert, select, update

from calchub.accounts.creation import has_control_characters
from calchub.accounts.passwords import hash_password, password_problem
from calchub.accounts.secret import digest
from calchub.accounts.sessions import end_all_sessions
from calchub.accounts.store import get_account_by_email, is_valid_email
from calchub.actor import Actor
from calchub.db.tables import accounts, auth_tokens, password_reset, password_reset_attempts
from calchub.db.types import utcnow
from calchub.errors import Invalid, LimitExceeded, NotFound
from calchub.hub import Hub
from calchub.mail import password_reset_email

CODE_LIFETIME = timedelta(days=1)
NO_LONGER_VALID = "Password reset request is no longer valid."


async def _throttle(hub: Hub, email: str, ip: str) -> None:
    now = utcnow()
    a = password_reset_attempts.c
    async with hub.engine.begin() as conn:
        await conn.execute(
            insert(password_reset_attempts).values(email_address=email, ip_address=ip, time=now)
        )

        async def count(*where: ColumnElement[bool]) -> int:
            query = select(func.count()).select_from(password_reset_attempts).where(*where)
            return int(await conn.scalar(query) or 0)

        if await count(a.email_address == email, a.time >= now - timedelta(hours=1)) >= 31:
            raise LimitExceeded(
                "Too many password resets for this email per hour; try again later."
            )
        if await count(a.ip_address == ip, a.time >= now - timedelta(minutes=1)) > 10:
            raise LimitExceeded("Too many password resets per minute; try again later.")
        if await count(a.ip_address == ip, a.time >= now - timedelta(hours=1)) > 60:
            raise LimitExceeded("Too many password resets per hour; try again later.")


async def forgot_password(hub: Hub, actor: Actor, email: str) -> None:
    """Mail a reset link to the address's account."""
    if not is_valid_email(email) or has_control_characters(email):
        raise Invalid("Invalid email address.")
    email = email.lower()
    await _throttle(hub, email, actor.ip)
    async with hub.engine.connect() as conn:
        account = await get_account_by_email(conn, email)
    if account is None:
        raise NotFound(f"No account with e-mail address {email}")
    code = str(uuid.uuid4())
    async with hub.engine.begin() as conn:
        await conn.execute(
            insert(password_reset).values(
                code_hash=digest(code), email_address=email, expire=utcnow() + CODE_LIFETIME
            )
        )
    site = await hub.site.all()
    await hub.mailer.send(
        password_reset_email(
            to=email,
            site_name=site["site_name"],
            reset_url=f"{hub.settings.resolved_site_url}/app?forgot={code}",
            from_addr=site["help_email"],
            from_name=f"{site['site_name']} Help",
        )
    )


async def reset_forgot_password(hub: Hub, code: str, new_password: str) -> None:
    problem = password_problem(new_password)
    if problem:
        raise Invalid(problem)
    new_hash = await hash_password(new_password)
    code_hash = digest(code.strip().lower())
    async with hub.engine.begin() as conn:
        row = (
            await conn.execute(
                select(password_reset).where(password_reset.c.code_hash == code_hash)
            )
        ).first()
        # Deleting first makes the code single-use even when two resets race.
        used = await conn.execute(
            delete(password_reset).where(
                password_reset.c.code_hash == code_hash, password_reset.c.expire > utcnow()
            )
        )
        if row is None or used.rowcount != 1:
            raise Invalid(NO_LONGER_VALID)
        # Only the account that held the address when the code was sent: an address given
        # up and registered again by someone else does not carry the code along.
        issued = row.expire - CODE_LIFETIME
        changed = await conn.execute(
            update(accounts)
            .where(
                accounts.c.email_address == row.email_address,
                accounts.c.deleted.is_(False),
                accounts.c.created <= issued,
            )
            .values(password_hash=new_hash)
            .returning(accounts.c.account_id)
        )
        account_id = changed.scalar()
        if account_id is not None:
            await conn.execute(delete(auth_tokens).where(auth_tokens.c.account_id == account_id))
            await end_all_sessions(conn, account_id)
    # Raised once the transaction is committed: the code is used up either way.
    if account_id is None:
        raise Invalid(NO_LONGER_VALID)
