"""Support tickets: stored in the database, listed to their account, mailed to the site's
help address, and worked on by operators with `calchub admin ticket`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub.access import may_act_for_account
from calchub.accounts.store import is_valid_email
from calchub.actor import Actor
from calchub.db.tables import support_tickets
from calchub.db.types import utcnow
from calchub.errors import Invalid, LimitExceeded, NotFound, Refused
from calchub.hub import Hub
from calchub.ids import is_valid_uuid
from calchub.mail.templates import support_ticket_email

log = logging.getLogger(__name__)

STATUSES = ("open", "pending", "solved", "closed", "archived")
# Enough for anyone asking for help; a script gone wrong cannot flood the help address.
MAX_TICKETS_PER_DAY = 20
MAX_INFO_BYTES = 64 * 1024


@dataclass(frozen=True)
class NewTicket:
    email_address: str
    subject: str
    body: str
    username: str | None = None
    account_id: str | None = None
    tags: list[str] | None = None
    location: str | None = None
    info: dict[str, Any] | None = None


def ticket_url(hub: Hub, ticket_id: int) -> str:
    return f"{hub.settings.resolved_site_url.rstrip('/')}/support/tickets/{ticket_id}"


def describe(base_url: str, ticket: NewTicket) -> str:
    """The body, with the location and a course project expanded to links (CoCalc's docs)."""
    parts = [ticket.body]
    if ticket.location:
        parts.append(f"{base_url.rstrip('/')}/{ticket.location.lstrip('/')}")
    course = (ticket.info or {}).get("course")
    if is_valid_uuid(course):
        parts.append(f"Course: {base_url.rstrip('/')}/projects/{str(course).lower()}")
    return "\n\n".join(parts)


async def create_ticket(hub: Hub, actor: Actor, ticket: NewTicket) -> int:
    """Store the ticket and mail it to the help address. A ticket shows in its account's list,
    so nobody but an admin files tickets into another account's list."""
    caller = actor.caller
    if not is_valid_email(ticket.email_address):
        raise Invalid(f"invalid email_address '{ticket.email_address}'")
    if ticket.info is not None and len(json.dumps(ticket.info)) > MAX_INFO_BYTES:
        raise Invalid(f"info must be at most {MAX_INFO_BYTES} bytes of JSON")
    if ticket.account_id is not None and not may_act_for_account(actor, ticket.account_id):
        raise Refused("account_id must be the account of the API key")
    now = utcnow()
    async with hub.engine.begin() as conn:
        recent = await conn.scalar(
            select(func.count())
            .select_from(support_tickets)
            .where(
                support_tickets.c.created_by == caller,
                support_tickets.c.created_at > now - timedelta(days=1),
            )
        )
        if (recent or 0) >= MAX_TICKETS_PER_DAY:
            raise LimitExceeded(
                f"at most {MAX_TICKETS_PER_DAY} support tickets a day -- please add to an "
                "existing one"
            )
        description = describe(hub.settings.resolved_site_url, ticket)
        result = await conn.execute(
            insert(support_tickets)
            .values(
                account_id=ticket.account_id.lower() if ticket.account_id else None,
                created_by=caller,
                username=ticket.username,
                email_address=ticket.email_address,
                subject=ticket.subject,
                description=description,
                tags=ticket.tags,
                location=ticket.location,
                info=ticket.info,
                status="open",
                created_at=now,
                updated_at=now,
            )
            .returning(support_tickets.c.id)
        )
        ticket_id = int(result.scalar_one())
    await _notify(hub, ticket_id, ticket, description)
    return ticket_id


async def _notify(hub: Hub, ticket_id: int, ticket: NewTicket, description: str) -> None:
    """The ticket is stored whatever happens to the email: a mail outage loses no request."""
    site = await hub.site.all()
    try:
        await hub.mailer.send(
            support_ticket_email(
                to=site["help_email"],
                ticket_id=ticket_id,
                subject=ticket.subject,
                description=description,
                requester=ticket.username or ticket.email_address,
                requester_email=ticket.email_address,
                url=ticket_url(hub, ticket_id),
                from_addr=site["organization_email"],
                site_name=site["site_name"],
            )
        )
    except Exception:
        log.warning(
            "could not email support ticket %s to the help address", ticket_id, exc_info=True
        )


def _public(hub: Hub, row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "subject": row.subject,
        "description": row.description,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "status": row.status,
        "url": ticket_url(hub, row.id),
    }


async def tickets_of(hub: Hub, account_id: str) -> list[dict[str, Any]]:
    """The account's tickets, newest first, archived ones left out."""
    async with hub.engine.connect() as conn:
        rows = await conn.execute(
            select(support_tickets)
            .where(
                support_tickets.c.account_id == account_id,
                support_tickets.c.status != "archived",
            )
            .order_by(support_tickets.c.id.desc())
        )
        return [_public(hub, row) for row in rows]


async def ticket_for(hub: Hub, actor: Actor, ticket_id: int) -> Any:
    """One ticket as its account (or its creator, or an admin) sees it; None otherwise."""
    async with hub.engine.connect() as conn:
        row = (
            await conn.execute(select(support_tickets).where(support_tickets.c.id == ticket_id))
        ).first()
    if row is None:
        return None
    involved = actor.account_id is not None and actor.account_id in (
        row.account_id,
        row.created_by,
    )
    if not (actor.is_admin or involved):
        return None
    return _public(hub, row)


async def list_tickets(engine: AsyncEngine, include_closed: bool) -> list[dict[str, Any]]:
    """Every ticket for operators, oldest open first."""
    stmt = select(support_tickets).order_by(support_tickets.c.id)
    if not include_closed:
        stmt = stmt.where(support_tickets.c.status.in_(("open", "pending")))
    async with engine.connect() as conn:
        rows = await conn.execute(stmt)
        return [
            {
                "id": row.id,
                "status": row.status,
                "email_address": row.email_address,
                "account_id": row.account_id,
                "subject": row.subject,
                "description": row.description,
                "created_at": row.created_at.isoformat(),
            }
            for row in rows
        ]


async def set_status(engine: AsyncEngine, ticket_id: int, status: str) -> None:
    if status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}")
    async with engine.begin() as conn:
        changed = await conn.execute(
            update(support_tickets)
            .where(support_tickets.c.id == ticket_id)
            .values(status=status, updated_at=utcnow())
        )
    if changed.rowcount == 0:
        raise NotFound(f"no support ticket {ticket_id}")
