"""Shared by the account tests: request builders, assertions, constants and the secrets
they hand out (none may be found in clear at rest)."""

from __future__ import annotations

import hashlib
import re
import string
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select, update

from calchub.db.tables import (
    accounts,
    api_keys,
    server_settings,
)
from calchub.site import SETTINGS
from tests.conftest import User
from tests.harness import ApiClient, Database, Reply, Server
from tests.smtp_sink import Received, SmtpSink

BASE62 = frozenset(string.ascii_letters + string.digits)
LENGTH_RULE = "Password must be between 6 and 64 characters in length."
NO_LONGER_VALID = "Password reset request is no longer valid."
PER_MINUTE = "Too many password resets per minute; try again later."
PER_HOUR = "Too many password resets per hour; try again later."
PER_EMAIL = "Too many password resets for this email per hour; try again later."
LOCKED = "banned -- please wait at least 60s before trying again"
NOT_ADMIN = "must be logged in and a member of the admin group"
CLIENT_IP = "127.0.0.1"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def assert_error(reply: Reply, error: str, msg_id: Any = None) -> None:
    assert reply.status == 200, reply.body
    assert reply.event == "error", reply.body
    assert reply["error"] == error
    if msg_id is not None:
        assert reply["id"] == msg_id
    assert set(reply.body) == {"event", "id", "error"}


def site_name(db: Database) -> str:
    rows = db.execute(select(server_settings.c.value).where(server_settings.c.name == "site_name"))
    return rows[0].value if rows else str(SETTINGS["site_name"].default)


def make_admin(db: Database, account_id: str) -> None:
    db.execute(update(accounts).where(accounts.c.account_id == account_id).values(groups=["admin"]))


def delete_user(api: ApiClient, user: User) -> None:
    reply = api.call("delete_account", user.api_key, {"account_id": user.account_id})
    assert reply.event == "account_deleted", reply.body


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


MakeUser = Callable[..., User]

LENGTH_RULE = "Password must be between 6 and 64 characters in length."
NO_ACCOUNT = {"error": "No account found. Is your API key wrong?"}
BANNED_PREFIX = "User is BANNED.  If this is a mistake, please contact "
INVALID = "invalid parameters 'Error: misc.defaults -- TypeError: "

# Every password, API key and verification token the account tests hand out: none of them
# may ever be found in clear on disk or in the database (test_secrets_at_rest.py).
SECRETS: set[str] = set()


def unique_email(prefix: str = "life") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def new_password() -> str:
    secret = f"pw-{uuid.uuid4().hex[:20]}"
    SECRETS.add(secret)
    return secret


def password_of_length(length: int) -> str:
    """A password of exactly `length` characters that cannot turn up in stored data by chance."""
    secret = ("~Zq" + uuid.uuid4().hex * 2)[:length]
    SECRETS.add(secret)
    return secret


def signup(**overrides: Any) -> dict[str, Any]:
    """A create_account body that passes every rule, with `overrides` applied."""
    body: dict[str, Any] = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email_address": unique_email(),
        "password": new_password(),
        "agreed_to_terms": True,
    }
    body.update(overrides)
    return body


def fresh_ip() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 256}.{(n >> 8) % 256}.{(n >> 16) % 254 + 1}"


def create(
    api: ApiClient,
    key: str,
    body: dict[str, Any] | None = None,
    *,
    form: dict[str, Any] | None = None,
    ip: str | None = None,
) -> Reply:
    """create_account from its own client address, so that the per-IP throttle only
    counts what a test creates from that address."""
    headers = {"X-Forwarded-For": ip or fresh_ip()}
    if form is not None:
        return api.call("create_account", key, form=form, headers=headers)
    return api.call("create_account", key, body if body is not None else {}, headers=headers)


def created(reply: Reply) -> str:
    assert reply.status == 200, reply.body
    assert reply.event == "account_created", reply.body
    if "api_key" in reply.body:
        SECRETS.add(reply["api_key"])
    return str(reply["account_id"])


def failed(reply: Reply) -> dict[str, str]:
    assert reply.status == 200, reply.body
    assert reply.event == "account_creation_failed", reply.body
    assert set(reply.body) == {"event", "id", "reason"}
    return dict(reply["reason"])


def invalid_parameters(reply: Reply, field: str) -> None:
    assert reply.status == 400, reply.body
    assert reply["error"].startswith(f"{INVALID}property '{field}' is invalid"), reply.body


def must_be_specified(reply: Reply, field: str) -> None:
    assert (reply.status, reply.body) == (
        400,
        {"error": f"{INVALID}property '{field}' must be specified: '"},
    )


def account_row(db: Database, account_id: str) -> Any:
    rows = db.execute(select(accounts).where(accounts.c.account_id == account_id))
    assert len(rows) == 1, account_id
    return rows[0]


def accounts_with_email(db: Database, email: str) -> list[Any]:
    return db.execute(select(accounts).where(accounts.c.email_address == email))


def key_count(db: Database, account_id: str) -> int:
    return len(db.execute(select(api_keys.c.id).where(api_keys.c.account_id == account_id)))


def password_is(password_hash: str | None, password: str) -> bool:
    assert password_hash is not None
    assert password_hash.startswith("$argon2id$")
    try:
        return PasswordHasher().verify(password_hash, password)
    except VerificationError:
        return False


def mail_to(smtp: SmtpSink, address: str, count: int = 1, timeout: float = 10) -> list[Received]:
    """Messages delivered to `address` (waits until `count` arrived or `timeout` passed)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in smtp.messages if address.lower() in (a.lower() for a in m.envelope_to)]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def plain_text(received: Received) -> str:
    part = received.message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def verify_link(smtp: SmtpSink, server: Server, address: str) -> str:
    (received,) = mail_to(smtp, address)
    match = re.search(re.escape(server.url) + r"/auth/verify\?\S+", plain_text(received))
    assert match, plain_text(received)
    SECRETS.add(parse_qs(urlsplit(match.group(0)).query)["token"][0])
    return match.group(0)


def parallel(calls: list[Callable[[], Reply]]) -> list[Reply]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def change_email(
    api: ApiClient, key: str, account_id: str, new: str, password: str, **extra: Any
) -> Reply:
    body = {"account_id": account_id, "new_email_address": new, "password": password, **extra}
    return api.call("change_email_address", key, body)


@contextmanager
def site_setting(server: Server, name: str, value: str) -> Iterator[None]:
    server.cli("admin", "setting", name, value)
    try:
        yield
    finally:
        server.cli("admin", "setting", name, "--reset")


@contextmanager
def banned(server: Server, account_id: str) -> Iterator[None]:
    server.cli("admin", "ban", account_id)
    try:
        yield
    finally:
        server.cli("admin", "unban", account_id)


def passwordless(server: Server) -> tuple[str, str, str]:
    """An account without a password (as an admin creates for SSO users), with an API key."""
    email = unique_email("nopw")
    args = ["--email", email, "--first-name", "No", "--last-name", "Password", "--api-key"]
    out = server.cli_json("admin", "create-account", *args)
    SECRETS.add(out["api_key"])
    return out["account_id"], out["api_key"], email


def auth_ok(api: ApiClient, caller: User, target: User, password: str) -> bool:
    reply = api.call(
        "user_auth", caller.api_key, {"account_id": target.account_id, "password": password}
    )
    if reply.event == "user_auth_token":
        return True
    assert reply.event == "error", reply.body
    return False
