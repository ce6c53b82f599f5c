"""Reading one's messages: received, sent, new (unread, unsaved, not deleted) or starred."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from calchub.actor import Actor
from calchub.db.tables import message_recipients, messages
from calchub.errors import Invalid
from calchub.hub import Hub

MAX_LIMIT = 500
MAX_OFFSET = 10**9
TYPES = ("received", "sent", "new", "starred")

_BASE = (
    messages.c.id,
    messages.c.subject,
    messages.c.body,
    messages.c.from_id,
    messages.c.to_ids,
    messages.c.sent,
    messages.c.thread_id,
)
_FLAGS = ("read", "saved", "deleted")


def _query(kind: str, caller: str) -> Select[Any]:
    r = message_recipients.c
    if kind == "sent":
        return select(
            *_BASE,
            messages.c.sender_read.label("read"),
            messages.c.sender_saved.label("saved"),
            messages.c.sender_deleted.label("deleted"),
        ).where(messages.c.from_id == caller)
    received = messages.join(message_recipients, r.message_id == messages.c.id)
    if kind == "received":
        return (
            select(*_BASE, r.read, r.saved, r.deleted)
            .select_from(received)
            .where(r.account_id == caller)
        )
    query = select(*_BASE).select_from(received).where(r.account_id == caller)
    if kind == "new":
        return query.where(r.read.is_(False), r.saved.is_(False), r.deleted.is_(False))
    return query.where(r.starred.is_(True), r.deleted.is_(False))


async def get_messages(
    hub: Hub,
    actor: Actor,
    *,
    limit: int = 100,
    offset: int = 0,
    kind: str = "received",
    cutoff: datetime | None = None,
) -> list[dict[str, Any]]:
    """The caller's messages of one kind, newest first. "liked" (which CoCalc's client
    offers, and its server fails on) reads as "starred"."""
    caller = actor.caller
    if limit > MAX_LIMIT:
        raise Invalid(f"limit must be at most {MAX_LIMIT}")
    if limit < 0 or offset < 0:
        raise Invalid("limit and offset must not be negative")
    if offset > MAX_OFFSET:
        raise Invalid(f"offset must be at most {MAX_OFFSET}")
    if kind == "liked":
        kind = "starred"
    if kind not in TYPES:
        raise Invalid(f"type must be one of {', '.join(TYPES)}")
    query = _query(kind, caller)
    if cutoff is not None:
        query = query.where(messages.c.sent > cutoff)
    query = query.order_by(messages.c.sent.desc(), messages.c.id.desc()).limit(limit)
    if offset:
        query = query.offset(offset)
    async with hub.engine.connect() as conn:
        rows = await conn.execute(query)
        out = []
        for row in rows:
            item = dict(row._mapping)
            for flag in _FLAGS:
                if flag in item:
                    item[flag] = bool(item[flag])
            out.append(item)
    return out
