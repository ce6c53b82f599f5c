"""Shared by the web page tests: signing up through the API, links read from the SMTP sink,
a browser-like HTTP client with a client address of its own, and screenshots."""

from __future__ import annotations

import itertools
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from sqlalchemy import select, update

from calchub.db.tables import accounts
from tests.harness import ApiClient, Database, Server, backend
from tests.smtp_sink import SmtpSink

PASSWORD = "correct horse battery"
_addresses = itertools.count(1)


def screenshot_dir() -> Path:
    """Where the suite leaves a picture of each page: CALCHUB_SCREENSHOTS, by default
    /tmp/calchub-screenshots, one folder per database backend."""
    base = Path(os.environ.get("CALCHUB_SCREENSHOTS", "/tmp/calchub-screenshots"))
    folder = base / backend()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def client_ip() -> str:
    """A client address of its own (the tests stand in for a trusted proxy), so that per-IP
    limits of one test never meet another's."""
    n = next(_addresses) + os.getpid() % 200 * 1000
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"


def browser_client(server: Server, ip: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"Accept": "text/html", "X-Forwarded-For": ip or client_ip()},
        timeout=60,
    )


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]*)"', page)
    assert match, page
    return match.group(1)


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(named.get("action", "")))
        elif tag == "input" and self.forms and "name" in named:
            self.forms[-1].fields[named["name"]] = named.get("value", "")


def form_to(page: str, action: str) -> Form:
    """The page's one form that posts to a path ending in `action`, with the values a browser
    would send (the inputs' values as they stand)."""
    parser = _Forms()
    parser.feed(page)
    (found,) = [f for f in parser.forms if f.action.endswith(action)]
    return found


def verify_through(link: str) -> httpx.Response:
    """Verify an address as its owner does: open the mailed link in a browser of its own and
    press the page's button. The answer is the page that opening or pressing ended on."""
    with httpx.Client(headers={"Accept": "text/html"}, timeout=60) as client:
        shown = client.get(link)
        if shown.status_code != 200:
            return shown
        form = form_to(shown.text, "/auth/verify")
        return client.post(urljoin(link, form.action), data=form.fields)


def set_challenge_time(db: Database, account_id: str, time: object) -> None:
    """Rewrite when the account's pending verification link was mailed (None: the challenge
    says nothing about it), as an old link or an old row would have it."""
    (row,) = db.execute(
        select(accounts.c.email_address_challenge).where(accounts.c.account_id == account_id)
    )
    challenge = dict(row.email_address_challenge)
    challenge.pop("time", None)
    if time is not None:
        challenge["time"] = time
    db.execute(
        update(accounts)
        .where(accounts.c.account_id == account_id)
        .values(email_address_challenge=challenge)
    )


def mail_to(smtp: SmtpSink, address: str, count: int = 1, timeout: float = 10) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in smtp.messages if address.lower() in (a.lower() for a in m.envelope_to)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def link_in(received: Any, pattern: str) -> str:
    part = received.message.get_body(preferencelist=("plain",))
    text = str(part.get_content())
    match = re.search(pattern, text)
    assert match, text
    return match.group(0)


def welcome_link(server: Server, smtp: SmtpSink, email: str) -> tuple[Any, str]:
    """The one welcome email sent to `email`, and its verification link as a path on the
    server."""
    (welcome,) = mail_to(smtp, email)
    link = link_in(welcome, re.escape(server.url) + r"/auth/verify\?\S+")
    return welcome, link.removeprefix(server.url)


@dataclass(frozen=True)
class SignedUp:
    account_id: str
    email: str
    password: str


def sign_up(api: ApiClient, admin_key: str, *, password: str = PASSWORD) -> SignedUp:
    """A new account, made through the API (which sends it the welcome email)."""
    email = f"web-{uuid.uuid4().hex[:10]}@example.com"
    reply = api.call(
        "create_account",
        admin_key,
        {
            "first_name": "Ada",
            "last_name": "Web",
            "email_address": email,
            "password": password,
            "agreed_to_terms": True,
        },
        headers={"X-Forwarded-For": client_ip()},
    )
    assert reply.event == "account_created", reply.body
    return SignedUp(reply["account_id"], email, password)


def sign_in(client: httpx.Client, email: str, password: str) -> httpx.Response:
    form = client.get("/app/sign-in")
    assert form.status_code == 200
    return client.post(
        "/app/sign-in",
        data={"csrf_token": csrf_of(form.text), "email": email, "password": password},
    )
