"""Invitation emails to collaborate on a project, sent at most once a week per address.

Each send is recorded in `projects.invite[<email>] = {time, error}`; the slot is claimed
under a row lock before sending, so two hubs inviting the same address at once send once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from calchub import limits
from calchub.accounts.store import get_account, get_account_by_email, is_valid_email
from calchub.actor import Actor
from calchub.db.tables import projects
from calchub.db.types import utcnow
from calchub.errors import Failed, Invalid, NotFound
from calchub.hub import Hub
from calchub.ids import is_valid_uuid
from calchub.mail import invite_email
from calchub.mail.sanitize import sanitize_html
from calchub.projects.access import require_project
from calchub.projects.collaborators import add_member, record_invite_action

log = logging.getLogger("calchub.projects")

RESEND_AFTER = timedelta(days=7)
MAX_TO_LENGTH = 1024
MAX_ADDRESS_LENGTH = 128
_SEPARATORS = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Invitation:
    project_id: str
    title: str
    body: str | None  # the caller's HTML; None means "send no email"
    subject: str | None
    replyto: str | None
    replyto_name: str | None


@dataclass(frozen=True)
class InvitationText:
    """What the inviter writes: the email's body (HTML), subject, title and reply address."""

    body: str | None = None
    subject: str | None = None
    title: str | None = None
    replyto: str | None = None
    replyto_name: str | None = None


async def invite_collaborator(
    hub: Hub, actor: Actor, project_id: str, account_id: str, text: InvitationText
) -> None:
    """Add an existing account to the project and tell it by email."""
    project = await require_project(hub, actor, project_id, write=True)
    if not is_valid_uuid(account_id):
        raise Invalid(f"invalid account_id -- {account_id}")
    invitee = account_id.lower()
    async with hub.engine.connect() as conn:
        account = await get_account(conn, invitee)
    if account is None or account.deleted:
        raise NotFound(f'no account with id "{invitee}"')
    await add_member(hub.engine, project.project_id, invitee)
    invitation = Invitation(
        project_id=project.project_id,
        title=text.title if text.title is not None else project.title,
        body=text.body,
        subject=text.subject,
        replyto=text.replyto,
        replyto_name=text.replyto_name,
    )
    if account.email_address:
        await send_invitation(
            hub, actor, invitation, account.email_address, invite_subject(invitation)
        )


async def invite_noncloud_collaborators(
    hub: Hub, actor: Actor, project_id: str, to: str, text: InvitationText
) -> str:
    """Invite addresses to the project: those with an account join at once (no email), the
    others get an invitation to sign up. CoCalc's `mesg` saying what was done."""
    project = await require_project(hub, actor, project_id, write=True)
    invitation = Invitation(
        project_id=project.project_id,
        title=text.title or "",
        body=text.body,
        subject=text.subject,
        replyto=text.replyto,
        replyto_name=text.replyto_name,
    )
    added = await invite_by_email(hub, actor, invitation, parse_recipients(to))
    mesg = f"Invited {to} to collaborate on a project."
    if added:
        mesg += f" Added {', '.join(added)} directly, as they already have an account."
    return mesg


def _one_line(value: str) -> str:
    # Header values must not carry line breaks (they would start new headers).
    return " ".join(value.split())


def invite_subject(invitation: Invitation, default: str | None = None) -> str:
    if invitation.subject:
        return _one_line(invitation.subject)
    if default is not None:
        return default
    title = _one_line(invitation.title)
    if invitation.replyto_name:
        name = _one_line(invitation.replyto_name)
        return f"{name} invited you to collaborate on CoCalc in project '{title}'"
    return f"Invitation to CoCalc for collaborating in project '{title}'"


def _recently_invited(entry: Any) -> bool:
    if not isinstance(entry, dict) or entry.get("error") or not entry.get("time"):
        return False
    try:
        sent = datetime.fromisoformat(str(entry["time"]))
    except ValueError:
        return False
    return sent.tzinfo is not None and utcnow() - sent < RESEND_AFTER


async def _sent_lately(engine: AsyncEngine, project_id: str, email: str) -> bool:
    async with engine.connect() as conn:
        invite = await conn.scalar(
            select(projects.c.invite).where(projects.c.project_id == project_id)
        )
    return _recently_invited((invite or {}).get(email))


async def _claim(engine: AsyncEngine, project_id: str, email: str) -> bool:
    """Reserve this week's invitation to `email`; False when one was already sent."""
    async with engine.begin() as conn:
        invite = await conn.scalar(
            select(projects.c.invite).where(projects.c.project_id == project_id).with_for_update()
        )
        invite = dict(invite or {})
        if _recently_invited(invite.get(email)):
            return False
        invite[email] = {"time": utcnow().isoformat(), "error": None}
        await conn.execute(
            update(projects).where(projects.c.project_id == project_id).values(invite=invite)
        )
    return True


async def _record_error(engine: AsyncEngine, project_id: str, email: str, error: str) -> None:
    async with engine.begin() as conn:
        invite = await conn.scalar(
            select(projects.c.invite).where(projects.c.project_id == project_id).with_for_update()
        )
        invite = dict(invite or {})
        invite[email] = {"time": utcnow().isoformat(), "error": error}
        await conn.execute(
            update(projects).where(projects.c.project_id == project_id).values(invite=invite)
        )


async def send_invitation(
    hub: Hub, inviter: Actor, invitation: Invitation, to: str, subject: str
) -> None:
    """Email `to` unless it was invited to this project within a week; raises Failed with
    the transport's message when sending fails, LimitExceeded when the inviter sent too
    many invitations lately (the site's mail is not for mass mailing)."""
    if invitation.body is None or await _sent_lately(hub.engine, invitation.project_id, to):
        return
    # Only emails that will really go out count towards the inviter's limit.
    if not inviter.is_admin:
        per_hour = await hub.site.get_int("invitation_emails_per_hour")
        async with hub.engine.begin() as conn:
            await limits.take(
                conn,
                inviter.caller,
                "invitation_email",
                limit=per_hour,
                window=timedelta(hours=1),
                now=inviter.now,
                refusal=f"too many invitation emails: at most {per_hour} an hour; try again later",
            )
    if not await _claim(hub.engine, invitation.project_id, to):
        return
    site = await hub.site.all()
    reply_to = invitation.replyto if is_valid_email(invitation.replyto) else None
    base_url = hub.settings.resolved_site_url
    # The fixed instructions point at this site, never at a caller-chosen address.
    message = invite_email(
        to=to,
        subject=subject,
        body_html=sanitize_html(invitation.body) if invitation.body else subject,
        invitee_email=to,
        base_url=base_url,
        project_url=f"{base_url.rstrip('/')}/projects/{invitation.project_id}",
        from_addr=site["organization_email"],
        from_name=site["organization_name"],
        reply_to=reply_to or site["organization_email"],
        # The inviter's name goes only with the inviter's own address.
        reply_to_name=_one_line(invitation.replyto_name or "") or None if reply_to else None,
        site_name=site["site_name"],
    )
    try:
        await hub.mailer.send(message)
    except Exception as exc:
        log.warning("could not send an invitation email", exc_info=True)
        await _record_error(hub.engine, invitation.project_id, to, str(exc) or type(exc).__name__)
        raise Failed(str(exc) or "could not send the invitation email") from None


def parse_recipients(to: str) -> list[str]:
    """The distinct, lower-cased addresses of invite_noncloud's `to`, all validated first."""
    if len(to) > MAX_TO_LENGTH:
        raise Invalid("Specify less recipients when adding collaborators to project.")
    recipients: list[str] = []
    for part in _SEPARATORS.split(to):
        if not part:
            continue
        if not is_valid_email(part):
            raise Invalid(f"invalid email address '{part}'")
        address = part.lower()
        if len(address) > MAX_ADDRESS_LENGTH:
            raise Invalid(
                f"email address must be at most {MAX_ADDRESS_LENGTH} characters: '{address}'"
            )
        if address not in recipients:
            recipients.append(address)
    return recipients


async def invite_by_email(
    hub: Hub, inviter: Actor, invitation: Invitation, recipients: list[str]
) -> list[str]:
    """Add recipients whose account has confirmed the address; invite the others (to sign
    up, or to confirm the address they set). Returns the addresses added directly.

    An account that merely claims an address gets nothing: anyone can set any address on
    their own account, and only the mailbox's owner can follow the mailed link."""
    added: list[str] = []
    subject = invite_subject(invitation, default="CoCalc Invitation")
    for address in recipients:
        async with hub.engine.connect() as conn:
            account = await get_account_by_email(conn, address)
        if account is not None and not account.deleted and account.has_verified(address):
            await add_member(hub.engine, invitation.project_id, account.account_id)
            added.append(address)
            continue
        await record_invite_action(hub.engine, address, invitation.project_id)
        await send_invitation(hub, inviter, invitation, address, subject)
    return added
