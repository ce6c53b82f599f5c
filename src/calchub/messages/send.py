"""Sending a message to accounts, named by id or by email address."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub import limits
from calchub.accounts.store import is_valid_email
from calchub.actor import Actor
from calchub.db.tables import accounts, message_recipients, messages
from calchub.errors import Invalid
from calchub.hub import Hub
from calchub.ids import is_valid_uuid

MAX_RECIPIENTS = 100
MAX_SUBJECT = 1024
MAX_BODY = 100_000
# Per account, as CoCalc throttles its messages endpoint (admins are not throttled).
PER_MINUTE = 5
PER_HOUR = 60


def _check_text(subject: str, body: str) -> None:
    if len(subject) > MAX_SUBJECT:
        raise Invalid(f"subject must be at most {MAX_SUBJECT} characters")
    if len(body) > MAX_BODY:
        raise Invalid(f"body must be at most {MAX_BODY} characters")
    if "\x00" in subject or "\x00" in body:
        raise Invalid("subject and body must not contain NUL characters")


async def _resolve(conn: AsyncConnection, to_ids: Sequence[str]) -> list[str]:
    """Account ids for `to_ids`, in order and without repeats. Email addresses that match no
    account are dropped silently (so sending reveals nothing about who has an account); an
    id that is not a live account is an error."""
    emails = [x.lower() for x in to_ids if "@" in x]
    by_email: dict[str, str] = {}
    if emails:
        rows = await conn.execute(
            select(accounts.c.email_address, accounts.c.account_id).where(
                accounts.c.email_address.in_(emails), accounts.c.deleted.is_(False)
            )
        )
        by_email = {row.email_address: row.account_id for row in rows}
    ids = [x.lower() for x in to_ids if "@" not in x]
    for value in ids:
        if not is_valid_uuid(value):
            raise Invalid(f"invalid account_id -- {value}")
    live: set[str] = set()
    if ids:
        rows = await conn.execute(
            select(accounts.c.account_id).where(
                accounts.c.account_id.in_(ids), accounts.c.deleted.is_(False)
            )
        )
        live = {row.account_id for row in rows}
    resolved: list[str] = []
    for value in to_ids:
        if "@" in value:
            found = by_email.get(value.lower()) if is_valid_email(value) else None
            if found is None:
                continue
        else:
            found = value.lower()
            if found not in live:
                raise Invalid(f"invalid account_id -- {value}")
        if found not in resolved:
            resolved.append(found)
    return resolved


async def _thread_of(conn: AsyncConnection, caller: str, reply_id: int | None) -> int | None:
    # Replying joins the thread of a message the caller sent or received; any other id
    # (gone, or someone else's) starts no thread, so ids reveal nothing.
    if reply_id is None or not 0 < reply_id < 2**31:
        return None
    row = (
        await conn.execute(
            select(messages.c.id, messages.c.thread_id)
            .outerjoin(
                message_recipients,
                (message_recipients.c.message_id == messages.c.id)
                & (message_recipients.c.account_id == caller),
            )
            .where(
                messages.c.id == reply_id,
                or_(messages.c.from_id == caller, message_recipients.c.account_id == caller),
            )
        )
    ).first()
    if row is None:
        return None
    return int(row.thread_id if row.thread_id is not None else row.id)


async def deliver(
    conn: AsyncConnection,
    actor: Actor,
    from_id: str,
    to_ids: Sequence[str],
    subject: str,
    body: str,
    thread_id: int | None = None,
) -> int:
    """Store one message from `from_id` to accounts already checked; its id."""
    result = await conn.execute(
        insert(messages)
        .values(
            from_id=from_id,
            to_ids=list(to_ids),
            subject=subject,
            body=body,
            sent=actor.now,
            thread_id=thread_id,
            sender_read=False,
            sender_saved=False,
            sender_deleted=False,
        )
        .returning(messages.c.id)
    )
    message_id = int(result.scalar_one())
    await conn.execute(
        insert(message_recipients),
        [
            {
                "message_id": message_id,
                "account_id": account_id,
                "read": False,
                "saved": False,
                "starred": False,
                "deleted": False,
            }
            for account_id in to_ids
        ],
    )
    return message_id


async def throttle(conn: AsyncConnection, actor: Actor) -> None:
    if actor.is_admin:
        return
    for limit, window, interval in ((PER_MINUTE, 1, "minute"), (PER_HOUR, 60, "hour")):
        await limits.take(
            conn,
            actor.caller,
            f"message_send_{interval}",
            limit=limit,
            window=timedelta(minutes=window),
            now=actor.now,
            refusal=(
                f"too many messages sent; try again later "
                f"(rule: at most {limit} message(s) per {interval})"
            ),
        )


async def send_message(
    hub: Hub,
    actor: Actor,
    to_ids: Sequence[str],
    subject: str,
    body: str,
    reply_id: int | None = None,
) -> int | None:
    """Send a message from the caller; its id, or None when no recipient is left."""
    caller = actor.caller
    if len(to_ids) > MAX_RECIPIENTS:
        raise Invalid(f"a message may have at most {MAX_RECIPIENTS} recipients")
    _check_text(subject, body)
    async with hub.engine.begin() as conn:
        recipients = await _resolve(conn, to_ids)
        if not recipients:
            return None
        await throttle(conn, actor)
        thread_id = await _thread_of(conn, caller, reply_id)
        return await deliver(conn, actor, caller, recipients, subject, body, thread_id)
