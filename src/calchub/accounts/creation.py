"""Creating accounts: the validation rules, throttles, registration tokens and welcome email."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from calchub.accounts.keys import create_api_key
from calchub.accounts.passwords import hash_password, password_problem
from calchub.accounts.secret import digest, random_base62, same
from calchub.accounts.store import MAX_EMAIL_LENGTH, email_taken, is_valid_email
from calchub.db.tables import accounts, registration_tokens
from calchub.db.types import utcnow
from calchub.errors import Invalid
from calchub.hub import Hub
from calchub.ids import new_id
from calchub.logs import log_event
from calchub.mail import verify_address_email, welcome_email
from calchub.projects.collaborators import run_creation_actions

log = logging.getLogger("calchub.accounts")

THROTTLE_WINDOW = timedelta(minutes=30)
# Longer names are cut to what an account name may hold, as CoCalc does.
NAME_MAX_LENGTH = 254
# The verification token is 16 characters; a link's longer token is not even looked up.
VERIFY_TOKEN_MAX_LENGTH = 200
# How long a verification link works after it was mailed: CoCalc's 24 hours. A mail that
# leaks later (an old inbox, a forwarded message) no longer proves the address; its owner
# asks for a new link (REST v2 accounts/send-verification-email). The emails and the refused
# link's page say "24 hours".
VERIFY_LIFETIME = timedelta(days=1)
_URL = re.compile(r"(?:https?://|www\.)\S+|\b\S+\.(?:com|org|net|io|de|ru|cn|info|xyz)\b", re.I)
_EMAIL_IN_TEXT = re.compile(r"\S+@\S+\.\S+")


class CreationFailed(Invalid):
    """The account was not created; `reason` is CoCalc's object naming each problem."""

    def __init__(self, reason: dict[str, str]) -> None:
        super().__init__(str(reason), detail=reason)
        self.reason = reason


@dataclass(frozen=True)
class NewAccount:
    first_name: str | None
    last_name: str | None
    email_address: str | None
    password: str | None
    agreed_to_terms: bool | None = True
    token: str | None = None
    usage_intent: str | None = None


@dataclass(frozen=True)
class Created:
    account_id: str
    api_key: str | None


def has_control_characters(value: str | None, allowed: str = "") -> bool:
    """Control characters have no place in names or addresses (and PostgreSQL cannot store
    NUL at all)."""
    return value is not None and any(
        unicodedata.category(c) == "Cc" and c not in allowed for c in value
    )


def _name_problems(field: str, value: str | None, label: str) -> dict[str, str]:
    if value is None or not value.strip():
        return {field: f"Enter your {label}."}
    if has_control_characters(value):
        return {"other": f"{field} not valid: control characters are not allowed"}
    urls = _URL.findall(value)
    if urls:
        return {"other": f"{field} not valid: URLs are not allowed. Found {', '.join(urls)}"}
    if _EMAIL_IN_TEXT.search(value):
        return {"other": f"{field} not valid: email addresses are not allowed"}
    return {}


def _clip(name: str | None) -> str | None:
    return name[:NAME_MAX_LENGTH] if name is not None else None


def field_problems(new: NewAccount) -> dict[str, str]:
    """All problems with the submitted fields, as CoCalc's `reason` object."""
    reason: dict[str, str] = {}
    reason.update(_name_problems("first_name", new.first_name, "first name"))
    for key, value in _name_problems("last_name", new.last_name, "last name").items():
        reason.setdefault(key, value)
    # Checked as stored too: lower-casing can make an address longer.
    email = new.email_address
    if (
        email is None
        or has_control_characters(email)
        or not (is_valid_email(email) and is_valid_email(email.lower()))
    ):
        reason["email_address"] = "Email address does not appear to be valid."
    problem = password_problem(new.password)
    if problem:
        reason["password"] = problem
    if new.agreed_to_terms is not True:
        reason["agreed_to_terms"] = "Agree to the Terms of Service."
    if has_control_characters(new.usage_intent, allowed="\t\n\r"):
        reason.setdefault("other", "usage_intent not valid: control characters are not allowed")
    return reason


async def _check_throttle(hub: Hub, conn: AsyncConnection, ip: str) -> None:
    limit = await hub.site.get_int("account_creation_ip_limit")
    count = await conn.scalar(
        select(func.count())
        .select_from(accounts)
        .where(accounts.c.created_by == ip, accounts.c.created >= utcnow() - THROTTLE_WINDOW)
    )
    if (count or 0) >= limit:
        raise CreationFailed(
            {
                "other": f"Too many accounts are being created from the ip address {ip}; try "
                "again later.  By default at most "
                f"{limit} accounts can be created every 30 minutes from one IP; if you're using "
                "the API and need a higher limit, contact us."
            }
        )


async def _use_registration_token(conn: AsyncConnection, token: str | None) -> None:
    """Registration tokens gate sign-up only while at least one is active."""
    now = utcnow()
    t = registration_tokens.c
    active = await conn.scalar(
        select(func.count())
        .select_from(registration_tokens)
        .where(t.disabled.is_(False), (t.expires.is_(None)) | (t.expires > now))
    )
    if not active:
        return
    if not token:
        raise CreationFailed({"token": "No registration token provided"})
    row = (
        None
        if has_control_characters(token)
        else (await conn.execute(select(registration_tokens).where(t.token == token))).first()
    )
    if row is None:
        raise CreationFailed({"token": "Registration token is wrong."})
    if row.disabled:
        raise CreationFailed({"token": "Registration token disabled."})
    if row.expires is not None and row.expires <= now:
        raise CreationFailed({"token": "Registration token no longer valid."})
    # Conditional increment: two sign-ups racing for the last use cannot both win.
    query = update(registration_tokens).where(t.token == token).values(counter=t.counter + 1)
    if row.limit is not None:
        query = query.where(t.counter < t.limit)
    if (await conn.execute(query)).rowcount == 0:
        raise CreationFailed({"token": "Registration token used up."})


async def create_account(
    hub: Hub,
    new: NewAccount,
    *,
    ip: str,
    creator_is_admin: bool,
    get_api_key: bool = False,
    groups: list[str] | None = None,
    check_fields: bool = True,
    welcome: bool = True,
) -> Created:
    """Validate and insert an account, then send the welcome email (failure there is logged,
    not fatal). Raises CreationFailed with CoCalc's reason object."""
    if await hub.site.get("email_signup") == "no" and not creator_is_admin:
        raise CreationFailed({"other": "Signing up via email/password is disabled."})
    if await hub.site.get("account_creation") == "admin" and not creator_is_admin:
        raise CreationFailed({"other": "Only administrators may create accounts on this site."})
    if check_fields:
        reason = field_problems(new)
        if reason:
            raise CreationFailed(reason)
    email = new.email_address.lower() if new.email_address else None
    password_hash = await hash_password(new.password) if new.password else None
    account_id = new_id()
    now = utcnow()
    verify_token, challenge = email_challenge(email, now) if email else (None, None)
    api_key: str | None = None
    try:
        async with hub.engine.begin() as conn:
            if not creator_is_admin:
                await _check_throttle(hub, conn, ip)
            if email and await email_taken(conn, email):
                raise CreationFailed({"email_address": "This e-mail address is already taken."})
            if not creator_is_admin:
                await _use_registration_token(conn, new.token)
            await conn.execute(
                insert(accounts).values(
                    account_id=account_id,
                    email_address=email,
                    password_hash=password_hash,
                    first_name=_clip(new.first_name),
                    last_name=_clip(new.last_name),
                    groups=list(groups or []),
                    banned=False,
                    deleted=False,
                    unlisted=False,
                    created=now,
                    created_by=ip,
                    sign_up_usage_intent=new.usage_intent,
                    email_address_challenge=challenge,
                )
            )
            if get_api_key:
                api_key = await create_api_key(conn, account_id, name="created with account")
            await log_event(
                conn,
                "create_account",
                {"account_id": account_id, "email_address": email, "ip_address": ip},
            )
    except IntegrityError:
        # Another request registered the same address between our check and insert.
        raise CreationFailed({"email_address": "This e-mail address is already taken."}) from None
    # Invitations waiting for this address are carried out once the account proves that it
    # owns the address (verify_email), never merely because it claims it.
    if email and verify_token and welcome:
        await send_welcome(hub, email, verify_token)
    return Created(account_id=account_id, api_key=api_key)


def email_challenge(email: str, now: datetime) -> tuple[str, dict[str, str]]:
    """A fresh verification token for `email`, and the challenge that stores its digest."""
    token = random_base62(16).lower()
    return token, {"email": email, "token_hash": digest(token), "time": now.isoformat()}


def verify_url(hub: Hub, email: str, token: str) -> str:
    query = urlencode({"email": email, "token": token})
    return f"{hub.settings.resolved_site_url}/auth/verify?{query}"


async def send_welcome(hub: Hub, email: str, verify_token: str) -> None:
    site = await hub.site.all()
    message = welcome_email(
        to=email,
        site_name=site["site_name"],
        dns=site["dns"],
        verify_url=verify_url(hub, email, verify_token),
        from_addr=site["organization_email"],
        from_name=site["organization_name"],
    )
    try:
        await hub.mailer.send(message)
    except Exception:
        log.exception("could not send the welcome email to a new account")


async def send_verification(hub: Hub, email: str, verify_token: str) -> None:
    """Ask the owner of a newly set address to confirm it."""
    site = await hub.site.all()
    message = verify_address_email(
        to=email,
        site_name=site["site_name"],
        verify_url=verify_url(hub, email, verify_token),
        from_addr=site["organization_email"],
        from_name=site["organization_name"],
    )
    try:
        await hub.mailer.send(message)
    except Exception:
        log.exception("could not send an address verification email")


def _issued(challenge: dict[str, Any]) -> datetime | None:
    """When the challenge's link was mailed, or None if it does not say (in a form we read)."""
    stored = challenge.get("time")
    if not isinstance(stored, str):
        return None
    try:
        issued = datetime.fromisoformat(stored)
    except ValueError:
        return None
    # Every challenge calchub writes carries its offset; one without is read as UTC.
    return issued if issued.tzinfo is not None else issued.replace(tzinfo=UTC)


def _challenge_current(challenge: dict[str, Any], now: datetime) -> bool:
    """Whether the challenge's link is still within its lifetime. A challenge without a
    readable time counts as expired: its age is unknown, so it might be any age, and refusing
    it costs its owner only a new link, while accepting it would let an old leaked mail
    verify forever. A time more than a lifetime ahead is as unreadable as none."""
    issued = _issued(challenge)
    return issued is not None and abs(now - issued) < VERIFY_LIFETIME


def _challenge_met(challenge: dict[str, Any] | None, email: str, token: str, now: datetime) -> bool:
    """Whether `token` is the one mailed for `email`, the account's address now, within the
    link's lifetime."""
    challenge = challenge or {}
    stored = challenge.get("token_hash")
    return (
        challenge.get("email") == email
        and isinstance(stored, str)
        and same(stored, digest(token))
        and _challenge_current(challenge, now)
    )


def _verifiable(email: str, token: str) -> bool:
    """Inputs worth a query: the link's size limits, and no control characters (PostgreSQL
    cannot even compare a string holding NUL)."""
    return (
        0 < len(email) <= MAX_EMAIL_LENGTH
        and 0 < len(token) <= VERIFY_TOKEN_MAX_LENGTH
        and not has_control_characters(email)
    )


async def verification_link_works(hub: Hub, email: str, token: str) -> bool:
    """Whether verify_email would accept this link, changing nothing: opening a link must not
    verify anything (mail gateways open every link of a message)."""
    email = email.lower()
    if not _verifiable(email, token):
        return False
    async with hub.engine.connect() as conn:
        challenge = await conn.scalar(
            select(accounts.c.email_address_challenge).where(accounts.c.email_address == email)
        )
    return _challenge_met(challenge, email, token, utcnow())


async def verify_email(hub: Hub, email: str, token: str) -> bool:
    """Confirm an address with the token from the welcome (or change) email, then carry out
    what invitations to that address promised."""
    email = email.lower()
    if not _verifiable(email, token):
        return False
    async with hub.engine.begin() as conn:
        row = (
            await conn.execute(
                select(
                    accounts.c.account_id,
                    accounts.c.email_address_challenge,
                    accounts.c.email_address_verified,
                )
                .where(accounts.c.email_address == email)
                .with_for_update()
            )
        ).first()
        if row is None or not _challenge_met(row.email_address_challenge, email, token, utcnow()):
            return False
        verified = dict(row.email_address_verified or {})
        verified[email] = utcnow().isoformat()
        await conn.execute(
            update(accounts)
            .where(accounts.c.account_id == row.account_id)
            .values(email_address_verified=verified, email_address_challenge=None)
        )
    await run_creation_actions(hub.engine, row.account_id, email)
    return True
