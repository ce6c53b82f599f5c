"""Password reset, user_auth tokens, user_search and unlink_passport over real HTTP."""

from __future__ import annotations

import hashlib
import re
import string
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from calchub.db.tables import (
    accounts,
    auth_tokens,
    central_log,
    password_reset,
    password_reset_attempts,
    server_settings,
    user_auth_failures,
)
from calchub.site import SETTINGS
from tests.api.expect import NO_ACCOUNT_KEY, assert_invalid, missing, unexpected
from tests.conftest import User
from tests.harness import ApiClient, Database, Reply, Server
from tests.smtp_sink import Received, SmtpSink

MakeUser = Callable[..., User]

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


# --- forgot_password -----------------------------------------------------------------------


@pytest.fixture
def reset_limits(db: Database) -> Iterator[None]:
    """Every test shares one client IP: start and leave the attempt counters empty."""
    db.execute(delete(password_reset_attempts))
    yield
    db.execute(delete(password_reset_attempts))


@dataclass
class Mailbox:
    """Password reset emails seen by the SMTP sink, filtered by recipient."""

    smtp: SmtpSink
    site_url: str
    subject: str

    def to(self, address: str) -> list[Received]:
        return [
            received
            for received in self.smtp.messages
            if address.lower() in [to.lower() for to in received.envelope_to]
            and received.message["Subject"] == self.subject
        ]

    def wait(self, address: str, count: int = 1, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.to(address)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} reset mail(s) to {address}, got {found}")
            time.sleep(0.05)

    def codes(self, received: Received) -> list[str]:
        link = re.escape(self.site_url) + r"/app\?forgot=([0-9a-fA-F-]{36})(?![\w-])"
        return re.findall(link, plain_body(received))


@pytest.fixture
def mailbox(smtp: SmtpSink, server: Server, db: Database) -> Mailbox:
    return Mailbox(smtp, server.url, f"{site_name(db)} Password Reset")


def plain_body(received: Received) -> str:
    part = received.message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_body(received: Received) -> str:
    part = received.message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def request_reset(api: ApiClient, mailbox: Mailbox, user: User) -> str:
    """Ask for a reset email for `user` and return the code it carries."""
    reply = api.call("forgot_password", user.api_key, {"email_address": user.email})
    assert reply.body == {"event": "forgot_password_response", "id": reply["id"], "error": False}
    (received,) = mailbox.wait(user.email)
    (code,) = mailbox.codes(received)
    return code


def auth_ok(api: ApiClient, caller: User, target: User, password: str) -> bool:
    reply = api.call(
        "user_auth", caller.api_key, {"account_id": target.account_id, "password": password}
    )
    if reply.event == "user_auth_token":
        return True
    assert reply.event == "error", reply.body
    return False


@pytest.mark.usefixtures("reset_limits")
def test_forgot_password_emails_a_reset_link(
    api: ApiClient, user: User, mailbox: Mailbox, db: Database
) -> None:
    reply = api.call("forgot_password", user.api_key, {"email_address": user.email, "id": "f1"})
    assert reply.status == 200
    assert reply.body == {"event": "forgot_password_response", "id": "f1", "error": False}

    name = site_name(db)
    assert mailbox.subject == f"{name} Password Reset"
    (received,) = mailbox.wait(user.email)
    assert received.envelope_to == [user.email]
    assert received.message["To"] == user.email
    assert received.message["From"].startswith(f"{name} Help <")
    codes = mailbox.codes(received)
    assert len(codes) == 1, plain_body(received)
    code = codes[0]
    assert uuid.UUID(code).version == 4
    assert f"{mailbox.site_url}/app?forgot={code}" in html_body(received)

    rows = db.execute(select(password_reset).where(password_reset.c.email_address == user.email))
    assert len(rows) == 1
    (row,) = rows
    assert row.code_hash == sha256(code)
    assert timedelta(hours=23) < row.expire - datetime.now(UTC) <= timedelta(days=1)
    # The code itself is stored nowhere, in any case.
    for stored in db.execute(select(password_reset)):
        assert code.lower() not in repr(tuple(stored)).lower()


@pytest.mark.usefixtures("reset_limits")
def test_forgot_password_form_body_and_mixed_case_address(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox, admin_key: str
) -> None:
    user = make_user()
    reply = api.call("forgot_password", admin_key, form={"email_address": user.email.upper()})
    assert reply.event == "forgot_password_response"
    assert reply["error"] is False
    (received,) = mailbox.wait(user.email)
    assert received.envelope_to == [user.email]
    assert len(mailbox.codes(received)) == 1


@pytest.mark.usefixtures("reset_limits")
def test_forgot_password_invalid_address(api: ApiClient, user: User) -> None:
    for bad in ["not-an-email", "", "   ", "two@@example.com", "a b@example.com", "@example.com"]:
        reply = api.call("forgot_password", user.api_key, {"email_address": bad, "id": bad})
        assert reply.body == {
            "event": "forgot_password_response",
            "id": bad,
            "error": "Invalid email address.",
        }, bad


@pytest.mark.usefixtures("reset_limits")
def test_forgot_password_unknown_address(api: ApiClient, user: User, mailbox: Mailbox) -> None:
    address = f"nobody-{uuid.uuid4().hex[:10]}@example.com"
    reply = api.call("forgot_password", user.api_key, {"email_address": address})
    assert reply["error"] == f"No account with e-mail address {address}"
    assert reply.event == "forgot_password_response"
    time.sleep(0.3)
    assert mailbox.to(address) == []


@pytest.mark.usefixtures("reset_limits")
def test_forgot_password_for_deleted_account(
    api: ApiClient, make_user: MakeUser, admin_key: str, db: Database
) -> None:
    user = make_user()
    delete_user(api, user)
    reply = api.call("forgot_password", admin_key, {"email_address": user.email})
    assert reply["error"] == f"No account with e-mail address {user.email}"
    assert (
        db.execute(select(password_reset).where(password_reset.c.email_address == user.email)) == []
    )
    # A deleted account's key is gone at once.
    reply = api.call("forgot_password", user.api_key, {"email_address": user.email})
    assert (reply.status, reply.body) == (400, NO_ACCOUNT_KEY)


@pytest.mark.usefixtures("reset_limits")
def test_forgot_password_bad_parameters(api: ApiClient, user: User) -> None:
    reply = api.call("forgot_password", user.api_key, {})
    assert (reply.status, reply.body) == (400, missing("email_address"))
    reply = api.call("forgot_password", user.api_key, {"email_address": None})
    assert (reply.status, reply.body) == (400, missing("email_address"))
    reply = api.call("forgot_password", user.api_key, {"email_address": user.email, "x": 1})
    assert (reply.status, reply.body) == (400, unexpected("x"))
    for bad in [5, ["a@b.c"], {"a": 1}, True]:
        assert_invalid(
            api.call("forgot_password", user.api_key, {"email_address": bad}), "email_address"
        )
    huge = "a" * 5000 + "@example.com"
    assert_invalid(
        api.call("forgot_password", user.api_key, {"email_address": huge}), "email_address"
    )


@pytest.mark.usefixtures("reset_limits")
def test_forgot_password_banned_caller(
    api: ApiClient, make_user: MakeUser, server: Server, db: Database
) -> None:
    user = make_user()
    server.cli("admin", "ban", user.account_id)
    reply = api.call("forgot_password", user.api_key, {"email_address": user.email})
    assert reply.status == 400
    assert reply["error"].startswith("User is BANNED.  If this is a mistake, please contact ")
    assert db.execute(select(password_reset_attempts)) == []


@pytest.mark.usefixtures("reset_limits")
def test_forgot_password_per_ip_minute_limit(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox, db: Database
) -> None:
    user = make_user()
    for n in range(10):
        address = f"limit-{n}-{uuid.uuid4().hex[:8]}@example.com"
        reply = api.call("forgot_password", user.api_key, {"email_address": address})
        assert reply["error"] == f"No account with e-mail address {address}", n
    attempts = db.execute(select(password_reset_attempts))
    assert len(attempts) == 10
    assert {row.ip_address for row in attempts} == {CLIENT_IP}

    # The 11th attempt within the minute is refused, even for a real account.
    reply = api.call("forgot_password", user.api_key, {"email_address": user.email})
    assert reply.body == {
        "event": "forgot_password_response",
        "id": reply["id"],
        "error": PER_MINUTE,
    }
    reply = api.call("forgot_password", user.api_key, form={"email_address": user.email})
    assert reply["error"] == PER_MINUTE
    time.sleep(0.3)
    assert mailbox.to(user.email) == []

    # Once the attempts are more than a minute old the address works again.
    db.execute(update(password_reset_attempts).values(time=ago(minutes=2)))
    reply = api.call("forgot_password", user.api_key, {"email_address": user.email})
    assert reply["error"] is False
    mailbox.wait(user.email)


@pytest.mark.usefixtures("reset_limits")
def test_forgot_password_per_ip_hour_limit(api: ApiClient, user: User, db: Database) -> None:
    db.execute(
        insert(password_reset_attempts).values(
            [
                {
                    "email_address": f"h{n}@example.com",
                    "ip_address": CLIENT_IP,
                    "time": ago(minutes=30),
                }
                for n in range(59)
            ]
        )
    )
    address = f"hour-{uuid.uuid4().hex[:8]}@example.com"
    reply = api.call("forgot_password", user.api_key, {"email_address": address})
    assert reply["error"] == f"No account with e-mail address {address}"
    reply = api.call("forgot_password", user.api_key, {"email_address": address})
    assert reply["error"] == PER_HOUR


@pytest.mark.usefixtures("reset_limits")
def test_forgot_password_per_email_hour_limit(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox, db: Database
) -> None:
    user = make_user()
    db.execute(
        insert(password_reset_attempts).values(
            [
                {"email_address": user.email, "ip_address": f"10.1.0.{n}", "time": ago(minutes=20)}
                for n in range(29)
            ]
        )
    )
    reply = api.call("forgot_password", user.api_key, {"email_address": user.email})
    assert reply["error"] is False
    reply = api.call("forgot_password", user.api_key, {"email_address": user.email.upper()})
    assert reply["error"] == PER_EMAIL
    mailbox.wait(user.email)
    time.sleep(0.3)
    assert len(mailbox.to(user.email)) == 1
    # Other addresses from the same IP are not affected.
    other = make_user()
    assert (
        api.call("forgot_password", other.api_key, {"email_address": other.email})["error"] is False
    )


# --- reset_forgot_password -----------------------------------------------------------------


@pytest.mark.usefixtures("reset_limits")
def test_reset_forgot_password_changes_the_password(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox, db: Database
) -> None:
    user = make_user()
    checker = make_user()
    code = request_reset(api, mailbox, user)
    reply = api.call(
        "reset_forgot_password",
        user.api_key,
        {"reset_code": code, "new_password": "brand new secret", "id": 7},
    )
    assert reply.status == 200
    assert reply.body == {"event": "reset_forgot_password_response", "id": 7, "error": False}
    assert (
        db.execute(select(password_reset).where(password_reset.c.email_address == user.email)) == []
    )
    assert auth_ok(api, checker, user, "brand new secret")
    assert not auth_ok(api, user, user, user.password)
    # The API key keeps working after a reset.
    assert api.call("ping", user.api_key).event == "pong"


@pytest.mark.usefixtures("reset_limits")
def test_reset_forgot_password_is_single_use(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox
) -> None:
    user = make_user()
    checker = make_user()
    code = request_reset(api, mailbox, user)
    reply = api.call(
        "reset_forgot_password",
        user.api_key,
        {"reset_code": code, "new_password": "first new pass"},
    )
    assert reply["error"] is False
    reply = api.call(
        "reset_forgot_password",
        user.api_key,
        {"reset_code": code, "new_password": "second new pass"},
    )
    assert reply.body == {
        "event": "reset_forgot_password_response",
        "id": reply["id"],
        "error": NO_LONGER_VALID,
    }
    assert auth_ok(api, checker, user, "first new pass")


@pytest.mark.usefixtures("reset_limits")
def test_reset_forgot_password_form_body_and_any_caller(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox
) -> None:
    user = make_user()
    holder = make_user()
    code = request_reset(api, mailbox, user)
    # Whoever holds the code may use it: it is the credential (it arrives by email).
    reply = api.call(
        "reset_forgot_password",
        holder.api_key,
        form={"reset_code": code.upper(), "new_password": "from a form 1"},
    )
    assert reply.event == "reset_forgot_password_response"
    assert reply["error"] is False
    assert auth_ok(api, holder, user, "from a form 1")
    assert not auth_ok(api, user, holder, "from a form 1")


@pytest.mark.usefixtures("reset_limits")
def test_reset_forgot_password_expired_code(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox, db: Database
) -> None:
    user = make_user()
    checker = make_user()
    code = request_reset(api, mailbox, user)
    assert db.execute(select(password_reset).where(password_reset.c.code_hash == code)) == []
    db.execute(
        update(password_reset)
        .where(password_reset.c.code_hash == sha256(code))
        .values(expire=ago(seconds=1))
    )
    reply = api.call(
        "reset_forgot_password", user.api_key, {"reset_code": code, "new_password": "too late now"}
    )
    assert reply["error"] == NO_LONGER_VALID
    assert auth_ok(api, checker, user, user.password)


@pytest.mark.usefixtures("reset_limits")
def test_reset_forgot_password_unknown_codes(api: ApiClient, user: User) -> None:
    for code in [str(uuid.uuid4()), "not-a-uuid", "", " ", sha256("x"), "x" * 1000]:
        reply = api.call(
            "reset_forgot_password",
            user.api_key,
            {"reset_code": code, "new_password": "whatever 123"},
        )
        assert reply.body == {
            "event": "reset_forgot_password_response",
            "id": reply["id"],
            "error": NO_LONGER_VALID,
        }, code


@pytest.mark.usefixtures("reset_limits")
def test_reset_forgot_password_cannot_use_the_stored_digest(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox, db: Database
) -> None:
    user = make_user()
    request_reset(api, mailbox, user)
    (row,) = db.execute(select(password_reset).where(password_reset.c.email_address == user.email))
    reply = api.call(
        "reset_forgot_password",
        user.api_key,
        {"reset_code": row.code_hash, "new_password": "stolen digest"},
    )
    assert reply["error"] == NO_LONGER_VALID


@pytest.mark.usefixtures("reset_limits")
def test_reset_forgot_password_applies_the_password_rules(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox
) -> None:
    user = make_user()
    checker = make_user()
    code = request_reset(api, mailbox, user)
    for bad in ["", "12345", "x" * 65]:
        reply = api.call(
            "reset_forgot_password", user.api_key, {"reset_code": code, "new_password": bad}
        )
        assert reply.body == {
            "event": "reset_forgot_password_response",
            "id": reply["id"],
            "error": LENGTH_RULE,
        }, bad
    # A rejected password does not use up the code.
    reply = api.call(
        "reset_forgot_password", user.api_key, {"reset_code": code, "new_password": "x" * 64}
    )
    assert reply["error"] is False
    assert auth_ok(api, checker, user, "x" * 64)


@pytest.mark.usefixtures("reset_limits")
def test_reset_forgot_password_after_account_deleted(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox, admin_key: str
) -> None:
    user = make_user()
    code = request_reset(api, mailbox, user)
    delete_user(api, user)
    reply = api.call(
        "reset_forgot_password", admin_key, {"reset_code": code, "new_password": "revived account"}
    )
    assert reply["error"] == NO_LONGER_VALID
    reply = api.call(
        "user_auth", admin_key, {"account_id": user.account_id, "password": "revived account"}
    )
    assert_error(reply, "no such account")


@pytest.mark.usefixtures("reset_limits")
def test_reset_code_does_not_follow_a_reused_address(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox, admin_key: str
) -> None:
    user = make_user()
    checker = make_user()
    code = request_reset(api, mailbox, user)
    moved = f"moved-{uuid.uuid4().hex[:8]}@example.com"
    reply = api.call(
        "change_email_address",
        user.api_key,
        {"account_id": user.account_id, "new_email_address": moved, "password": user.password},
    )
    assert reply["error"] is False, reply.body
    # Someone else signs up with the address the code was sent to.
    newcomer = make_user(email=user.email, password="newcomer pass")
    reply = api.call(
        "reset_forgot_password", admin_key, {"reset_code": code, "new_password": "hijacked!"}
    )
    assert reply["error"] == NO_LONGER_VALID
    assert not auth_ok(api, checker, newcomer, "hijacked!")
    assert auth_ok(api, make_user(), newcomer, "newcomer pass")
    assert auth_ok(api, make_user(), user, user.password)


def test_changing_the_address_cancels_reset_codes(
    api: ApiClient, make_user: MakeUser, mailbox: Mailbox, db: Database
) -> None:
    user = make_user()
    code = request_reset(api, mailbox, user)
    moved = f"moved-{uuid.uuid4().hex[:8]}@example.com"
    reply = api.call(
        "change_email_address",
        user.api_key,
        {"account_id": user.account_id, "new_email_address": moved, "password": user.password},
    )
    assert reply["error"] is False, reply.body
    assert (
        db.execute(select(password_reset).where(password_reset.c.email_address == user.email)) == []
    )
    reply = api.call(
        "reset_forgot_password", user.api_key, {"reset_code": code, "new_password": "whatever1"}
    )
    assert reply["error"] == NO_LONGER_VALID


def test_reset_forgot_password_bad_parameters(api: ApiClient, user: User) -> None:
    reply = api.call("reset_forgot_password", user.api_key, {"new_password": "abcdefg"})
    assert (reply.status, reply.body) == (400, missing("reset_code"))
    reply = api.call("reset_forgot_password", user.api_key, {"reset_code": str(uuid.uuid4())})
    assert (reply.status, reply.body) == (400, missing("new_password"))
    reply = api.call("reset_forgot_password", user.api_key, {})
    assert (reply.status, reply.body) == (400, missing("reset_code"))
    reply = api.call(
        "reset_forgot_password",
        user.api_key,
        {"reset_code": str(uuid.uuid4()), "new_password": "abcdefg", "email": "x"},
    )
    assert (reply.status, reply.body) == (400, unexpected("email"))
    assert_invalid(
        api.call(
            "reset_forgot_password", user.api_key, {"reset_code": 12, "new_password": "abcdefg"}
        ),
        "reset_code",
    )
    assert_invalid(
        api.call(
            "reset_forgot_password",
            user.api_key,
            {"reset_code": str(uuid.uuid4()), "new_password": 1234567},
        ),
        "new_password",
    )
    assert_invalid(
        api.call(
            "reset_forgot_password",
            user.api_key,
            {"reset_code": str(uuid.uuid4()), "new_password": "p" * 200_000},
        ),
        "new_password",
    )


# --- user_auth -----------------------------------------------------------------------------


def test_user_auth_returns_a_token_stored_hashed(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    target = make_user()
    caller = make_user()
    reply = api.call(
        "user_auth",
        caller.api_key,
        {"account_id": target.account_id, "password": target.password, "id": "ua"},
    )
    assert reply.status == 200
    assert reply.event == "user_auth_token", reply.body
    assert set(reply.body) == {"event", "id", "auth_token"}
    assert reply["id"] == "ua"
    token = reply["auth_token"]
    assert isinstance(token, str) and len(token) == 24 and set(token) <= BASE62

    rows = db.execute(select(auth_tokens).where(auth_tokens.c.account_id == target.account_id))
    assert [row.token_hash for row in rows] == [sha256(token)]
    assert timedelta(hours=11) < rows[0].expire - datetime.now(UTC) <= timedelta(hours=12)
    assert db.execute(select(auth_tokens).where(auth_tokens.c.token_hash == token)) == []
    for row in db.execute(select(auth_tokens)):
        assert token not in repr(tuple(row))

    logged = [
        row.value
        for row in db.execute(
            select(central_log).where(central_log.c.event == "get_user_auth_token")
        )
        if row.value.get("user_account_id") == target.account_id
    ]
    assert logged == [
        {"account_id": caller.account_id, "user_account_id": target.account_id, "is_admin": False}
    ]


def test_user_auth_tokens_are_fresh_and_form_bodies_work(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    target = make_user()
    first = api.call(
        "user_auth", target.api_key, {"account_id": target.account_id, "password": target.password}
    )
    second = api.call(
        "user_auth",
        target.api_key,
        form={"account_id": target.account_id.upper(), "password": target.password},
    )
    assert first.event == second.event == "user_auth_token", (first.body, second.body)
    assert first["auth_token"] != second["auth_token"]
    rows = db.execute(select(auth_tokens).where(auth_tokens.c.account_id == target.account_id))
    assert {row.token_hash for row in rows} == {
        sha256(first["auth_token"]),
        sha256(second["auth_token"]),
    }


def test_user_auth_wrong_password_locks_only_that_pair(
    api: ApiClient, make_user: MakeUser, db: Database, admin_key: str
) -> None:
    target = make_user()
    caller = make_user()
    bystander = make_user()
    other_target = make_user()

    reply = api.call(
        "user_auth",
        caller.api_key,
        {"account_id": target.account_id, "password": "wrong password", "id": 1},
    )
    assert_error(reply, "incorrect password", 1)
    # Now even the right password is refused for this caller and target.
    reply = api.call(
        "user_auth",
        caller.api_key,
        {"account_id": target.account_id, "password": target.password, "id": 2},
    )
    assert_error(reply, LOCKED, 2)
    reply = api.call(
        "user_auth",
        caller.api_key,
        form={"account_id": target.account_id, "password": target.password},
    )
    assert_error(reply, LOCKED)
    assert (
        db.execute(select(auth_tokens).where(auth_tokens.c.account_id == target.account_id)) == []
    )
    # Other pairs are unaffected.
    assert auth_ok(api, bystander, target, target.password)
    assert auth_ok(api, caller, other_target, other_target.password)
    assert auth_ok(api, target, caller, caller.password)
    assert (
        api.call("user_auth", admin_key, {"account_id": target.account_id, "password": ""}).event
        == "user_auth_token"
    )

    # The lock lasts 60 seconds.
    failures = update(user_auth_failures).where(user_auth_failures.c.caller_id == caller.account_id)
    db.execute(failures.values(time=ago(seconds=50)))
    reply = api.call(
        "user_auth", caller.api_key, {"account_id": target.account_id, "password": target.password}
    )
    assert_error(reply, LOCKED)
    db.execute(failures.values(time=ago(seconds=61)))
    assert auth_ok(api, caller, target, target.password)


def test_user_auth_lock_on_own_account(api: ApiClient, user: User) -> None:
    reply = api.call("user_auth", user.api_key, {"account_id": user.account_id, "password": "no"})
    assert_error(reply, "incorrect password")
    reply = api.call("user_auth", user.api_key, {"account_id": user.account_id, "password": "no"})
    assert_error(reply, LOCKED)


def test_user_auth_no_such_account(api: ApiClient, make_user: MakeUser, admin_key: str) -> None:
    caller = make_user()
    for account_id in [str(uuid.uuid4()), "not-a-uuid", "", "'; DROP TABLE accounts; --"]:
        reply = api.call(
            "user_auth", caller.api_key, {"account_id": account_id, "password": "anything"}
        )
        assert_error(reply, "no such account")
        reply = api.call("user_auth", admin_key, {"account_id": account_id, "password": ""})
        assert_error(reply, "no such account")


def test_user_auth_deleted_account(
    api: ApiClient, make_user: MakeUser, admin_key: str, db: Database
) -> None:
    target = make_user()
    caller = make_user()
    assert auth_ok(api, caller, target, target.password)
    delete_user(api, target)
    reply = api.call(
        "user_auth", caller.api_key, {"account_id": target.account_id, "password": target.password}
    )
    assert_error(reply, "no such account")
    reply = api.call("user_auth", admin_key, {"account_id": target.account_id, "password": ""})
    assert_error(reply, "no such account")
    assert (
        db.execute(select(auth_tokens).where(auth_tokens.c.account_id == target.account_id)) == []
    )


def test_user_auth_admin_without_password(
    api: ApiClient, make_user: MakeUser, admin_key: str, db: Database
) -> None:
    target = make_user()
    reply = api.call("user_auth", admin_key, {"account_id": target.account_id, "password": ""})
    assert reply.event == "user_auth_token", reply.body
    assert len(reply["auth_token"]) == 24 and set(reply["auth_token"]) <= BASE62
    reply = api.call("user_auth", admin_key, form={"account_id": target.account_id, "password": ""})
    assert reply.event == "user_auth_token", reply.body

    # A non-empty wrong password is checked even for an admin.
    reply = api.call(
        "user_auth", admin_key, {"account_id": target.account_id, "password": "not it"}
    )
    assert_error(reply, "incorrect password")

    # An admin promoted in the database is an admin on the next request.
    promoted = make_user()
    other = make_user()
    reply = api.call(
        "user_auth", promoted.api_key, {"account_id": other.account_id, "password": ""}
    )
    assert_error(reply, "incorrect password")
    make_admin(db, promoted.account_id)
    third = make_user()
    reply = api.call(
        "user_auth", promoted.api_key, {"account_id": third.account_id, "password": ""}
    )
    assert reply.event == "user_auth_token", reply.body
    logged = [
        row.value
        for row in db.execute(
            select(central_log).where(central_log.c.event == "get_user_auth_token")
        )
        if row.value.get("user_account_id") == third.account_id
    ]
    assert logged == [
        {"account_id": promoted.account_id, "user_account_id": third.account_id, "is_admin": True}
    ]


def test_user_auth_empty_password_from_non_admin(api: ApiClient, make_user: MakeUser) -> None:
    target = make_user()
    caller = make_user()
    reply = api.call("user_auth", caller.api_key, {"account_id": target.account_id, "password": ""})
    assert_error(reply, "incorrect password")
    reply = api.call("user_auth", target.api_key, {"account_id": target.account_id, "password": ""})
    assert_error(reply, "incorrect password")


def test_user_auth_account_without_password(
    api: ApiClient, make_user: MakeUser, admin_key: str, db: Database
) -> None:
    target = make_user()
    db.execute(
        update(accounts)
        .where(accounts.c.account_id == target.account_id)
        .values(password_hash=None)
    )
    for password in ["", target.password]:
        caller = make_user()
        reply = api.call(
            "user_auth", caller.api_key, {"account_id": target.account_id, "password": password}
        )
        assert_error(reply, "incorrect password")
    reply = api.call("user_auth", admin_key, {"account_id": target.account_id, "password": ""})
    assert reply.event == "user_auth_token"


def test_user_auth_banned_caller(api: ApiClient, make_user: MakeUser, server: Server) -> None:
    caller = make_user()
    target = make_user()
    server.cli("admin", "ban", caller.account_id)
    reply = api.call(
        "user_auth", caller.api_key, {"account_id": target.account_id, "password": target.password}
    )
    assert reply.status == 400
    assert reply["error"].startswith("User is BANNED.  If this is a mistake, please contact ")


def test_user_auth_bad_parameters(api: ApiClient, user: User) -> None:
    key = user.api_key
    reply = api.call("user_auth", key, {"password": "x"})
    assert (reply.status, reply.body) == (400, missing("account_id"))
    reply = api.call("user_auth", key, {"account_id": user.account_id})
    assert (reply.status, reply.body) == (400, missing("password"))
    reply = api.call("user_auth", key, {"account_id": user.account_id, "password": None})
    assert (reply.status, reply.body) == (400, missing("password"))
    reply = api.call("user_auth", key, form={"account_id": user.account_id})
    assert (reply.status, reply.body) == (400, missing("password"))
    reply = api.call(
        "user_auth", key, {"account_id": user.account_id, "password": "x", "admin": True}
    )
    assert (reply.status, reply.body) == (400, unexpected("admin"))
    assert_invalid(api.call("user_auth", key, {"account_id": 5, "password": "x"}), "account_id")
    assert_invalid(
        api.call("user_auth", key, {"account_id": [user.account_id], "password": "x"}), "account_id"
    )
    assert_invalid(
        api.call("user_auth", key, {"account_id": user.account_id, "password": 123456}), "password"
    )
    assert_invalid(
        api.call("user_auth", key, {"account_id": "a" * 100_000, "password": "x"}), "account_id"
    )
    assert_invalid(
        api.call("user_auth", key, {"account_id": user.account_id, "password": "p" * 100_000}),
        "password",
    )
    # None of that counted as a failed attempt.
    assert auth_ok(api, user, user, user.password)


# --- user_search ---------------------------------------------------------------------------


def search(api: ApiClient, key: str, query: str, **options: Any) -> list[dict[str, Any]]:
    reply = api.call("user_search", key, {"query": query, **options})
    assert reply.status == 200, reply.body
    assert reply.event == "user_search_results", reply.body
    assert set(reply.body) == {"event", "id", "results"}
    results = reply["results"]
    assert isinstance(results, list)
    return results


def ids(results: list[dict[str, Any]]) -> list[str]:
    return [row["account_id"] for row in results]


PUBLIC_FIELDS = {"account_id", "first_name", "last_name", "last_active", "created"}


def tag() -> str:
    return "q" + uuid.uuid4().hex[:10]


CROWD_SIZE = 55


@pytest.fixture(scope="module")
def crowd(api: ApiClient, admin_key: str) -> tuple[str, list[str]]:
    """More accounts than a non-admin may see at once, all named `<prefix>...`."""
    prefix = "Crowd" + uuid.uuid4().hex[:8]

    def create(n: int) -> str:
        reply = api.call(
            "create_account",
            admin_key,
            {
                "first_name": f"{prefix}{n:02d}",
                "last_name": "Member",
                "email_address": f"{prefix.lower()}-{n}@example.org",
                "password": "crowd pass",
                "agreed_to_terms": True,
            },
        )
        assert reply.event == "account_created", reply.body
        return str(reply["account_id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        members = list(pool.map(create, range(CROWD_SIZE)))
    return prefix, members


def test_user_search_name_prefix_on_first_or_last_name(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    target = make_user(first_name=f"Ada{t}", last_name=f"Lovelace{t}")
    caller = make_user()
    for query in [
        f"ada{t}",
        f"ADA{t}",
        f"Ada{t[:4]}",
        f"lovelace{t}",
        f"LoveLace{t[:3]}",
        f"  ada{t}  ",
    ]:
        results = search(api, caller.api_key, query)
        assert ids(results) == [target.account_id], query
        (row,) = results
        assert set(row) == PUBLIC_FIELDS
        assert row["first_name"] == f"Ada{t}" and row["last_name"] == f"Lovelace{t}"
        assert row["last_active"] is None or isinstance(row["last_active"], str)
        assert row["created"].endswith("Z")
    # A prefix, not a substring.
    assert search(api, caller.api_key, f"da{t}") == []
    assert search(api, caller.api_key, t) == []
    assert search(api, caller.api_key, f"ada{t}x") == []


def test_user_search_all_terms_must_match(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    both = make_user(first_name=f"Grace{t}", last_name=f"Hopper{t}")
    make_user(first_name=f"Grace{t}", last_name=f"Kelly{t}")
    caller = make_user()
    assert ids(search(api, caller.api_key, f"grace{t} hopper{t}")) == [both.account_id]
    assert ids(search(api, caller.api_key, f"hop  grace{t}\t")) == [both.account_id]
    assert search(api, caller.api_key, f"grace{t} turing{t}") == []
    assert len(search(api, caller.api_key, f"grace{t}")) == 2
    # Both terms may match the same name field.
    assert len(search(api, caller.api_key, f"grace{t} gra")) == 2


def test_user_search_items_are_ored(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    one = make_user(first_name=f"Alan{t}", last_name="Turing")
    two = make_user(first_name=f"Edsger{t}", last_name="Dijkstra")
    caller = make_user()
    expected = sorted([one.account_id, two.account_id])
    for query in [
        f"alan{t}, edsger{t}",
        f"alan{t};edsger{t}",
        f"alan{t}\nedsger{t}",
        f"alan{t} turing; edsger{t} dijkstra, nobody{t}",
        f",;alan{t},,edsger{t};",
    ]:
        assert sorted(ids(search(api, caller.api_key, query))) == expected, query
    assert ids(search(api, caller.api_key, f"alan{t} dijkstra, edsger{t}")) == [two.account_id]


def test_user_search_form_body(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    target = make_user(first_name=f"Form{t}", last_name="Body")
    caller = make_user()
    reply = api.call(
        "user_search",
        caller.api_key,
        form={"query": f"form{t}", "limit": "3", "active": "", "admin": "false"},
    )
    assert reply.event == "user_search_results"
    assert ids(reply["results"]) == [target.account_id]


def test_user_search_exact_email_reveals_address(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    target = make_user(first_name=f"Mail{t}", last_name="Person", email=f"Mail.{t}@Example.com")
    caller = make_user()
    for query in [
        target.email,
        target.email.upper(),
        f"  {target.email} ",
        f"Mail Person <{target.email}>",
        f"junk {target.email} more-junk",
    ]:
        results = search(api, caller.api_key, query)
        assert ids(results) == [target.account_id], query
        (row,) = results
        assert row["email_address"] == target.email == f"mail.{t}@example.com"
        assert {
            "account_id",
            "first_name",
            "last_name",
            "email_address",
            "last_active",
            "created",
        } <= set(row)
        assert set(row) <= PUBLIC_FIELDS | {"email_address", "email_address_verified"}
        assert "banned" not in row and "password_hash" not in row
    # Only exact addresses: no prefix or domain matching through the email path.
    assert search(api, caller.api_key, f"mail.{t}@example.co") == []
    assert search(api, caller.api_key, f"mail.{t}@") == []
    assert search(api, caller.api_key, "@example.com") == []


def test_user_search_name_results_never_show_email(
    api: ApiClient, make_user: MakeUser, admin_key: str
) -> None:
    t = tag()
    target = make_user(first_name=f"Secret{t}", last_name="Address")
    caller = make_user()
    for key in [caller.api_key, target.api_key, admin_key]:
        (row,) = search(api, key, f"secret{t}")
        assert "email_address" not in row
        assert set(row) == PUBLIC_FIELDS
    # Mixing an email item in does not leak addresses of the name matches.
    other = make_user(first_name=f"Other{t}", last_name="Person")
    results = {
        row["account_id"]: row for row in search(api, caller.api_key, f"secret{t}, {other.email}")
    }
    assert set(results) == {target.account_id, other.account_id}
    assert "email_address" not in results[target.account_id]
    assert results[other.account_id]["email_address"] == other.email


def test_user_search_email_and_name_together(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    a = make_user(first_name=f"Both{t}", last_name="A")
    b = make_user(first_name=f"Else{t}", last_name="B")
    caller = make_user()
    results = search(api, caller.api_key, f"{b.email}; both{t}")
    assert sorted(ids(results)) == sorted([a.account_id, b.account_id])


def test_user_search_limit(
    api: ApiClient, make_user: MakeUser, crowd: tuple[str, list[str]]
) -> None:
    prefix, members = crowd
    caller = make_user()
    key = caller.api_key
    assert len(search(api, key, prefix)) == 20
    assert len(search(api, key, prefix, limit=5)) == 5
    assert len(search(api, key, prefix, limit=50)) == 50
    assert len(search(api, key, prefix, limit=51)) == 50
    assert len(search(api, key, prefix, limit=1000)) == 50
    assert len(search(api, key, prefix, limit=10**12)) == 50
    assert search(api, key, prefix, limit=0) == []
    reply = api.call("user_search", key, form={"query": prefix.lower(), "limit": "7"})
    assert len(reply["results"]) == 7
    assert set(ids(search(api, key, prefix, limit=50))) <= set(members)


def test_user_search_email_matches_are_not_limited(
    api: ApiClient, make_user: MakeUser, crowd: tuple[str, list[str]]
) -> None:
    prefix, _members = crowd
    extra = [make_user() for _ in range(3)]
    caller = make_user()
    query = ", ".join([prefix] + [u.email for u in extra])
    results = search(api, caller.api_key, query, limit=2)
    found = set(ids(results))
    assert {u.account_id for u in extra} <= found
    assert len(results) == 5
    assert len(search(api, caller.api_key, query, limit=0)) == 3


def test_user_search_admin_mode_limit(
    api: ApiClient, admin_key: str, crowd: tuple[str, list[str]]
) -> None:
    prefix, members = crowd
    assert len(search(api, admin_key, prefix, admin=True)) == 20
    results = search(api, admin_key, prefix.lower(), admin=True, limit=100)
    assert sorted(ids(results)) == sorted(members)
    assert len(search(api, admin_key, prefix, admin=True, limit=3)) == 3
    results = search(api, admin_key, prefix, admin=True, limit=10**12)
    assert len(results) == CROWD_SIZE
    reply = api.call("user_search", admin_key, {"query": prefix, "admin": True, "limit": 10**40})
    assert reply.status in (200, 400), reply.body
    if reply.status == 200:
        assert reply.event == "user_search_results", reply.body
        assert len(reply["results"]) == CROWD_SIZE
    else:
        assert_invalid(reply, "limit")


def test_user_search_admin_flag_needs_admin(api: ApiClient, make_user: MakeUser) -> None:
    caller = make_user()
    reply = api.call(
        "user_search", caller.api_key, {"query": caller.first_name, "admin": True, "id": "s1"}
    )
    assert_error(reply, NOT_ADMIN, "s1")
    reply = api.call("user_search", caller.api_key, form={"query": "x", "admin": "true"})
    assert_error(reply, NOT_ADMIN)
    reply = api.call("user_search", caller.api_key, form={"query": "x", "admin": "1"})
    assert_error(reply, NOT_ADMIN)
    # admin false is an ordinary search.
    assert search(api, caller.api_key, caller.first_name, admin=False) != []
    reply = api.call("user_search", caller.api_key, form={"query": "x", "admin": "false"})
    assert reply.event == "user_search_results"


def test_user_search_admin_mode_substring_shows_email_and_banned(
    api: ApiClient, make_user: MakeUser, admin_key: str, server: Server
) -> None:
    t = tag()
    target = make_user(first_name=f"Xx{t}Mid", last_name="Surname", email=f"adm-{t}@corp.example")
    banned = make_user(first_name=f"Yy{t}Mid", last_name="Bad", email=f"bad-{t}@corp.example")
    server.cli("admin", "ban", banned.account_id)

    results = {row["account_id"]: row for row in search(api, admin_key, f"{t}mid", admin=True)}
    assert set(results) == {target.account_id, banned.account_id}
    assert results[target.account_id]["email_address"] == target.email
    assert results[target.account_id]["banned"] is False
    assert results[banned.account_id]["banned"] is True
    assert set(results[target.account_id]) == PUBLIC_FIELDS | {"email_address", "banned"}

    # Substrings of the email address match too. Among other items an address is a
    # substring item; on its own it is an exact lookup.
    assert ids(search(api, admin_key, f"m-{t}", admin=True)) == [target.account_id]
    assert ids(search(api, admin_key, f"dm-{t}@corp.example, none{t}", admin=True)) == [
        target.account_id
    ]
    both = sorted([target.account_id, banned.account_id])
    assert sorted(ids(search(api, admin_key, f"{t}@corp.example; none{t}", admin=True))) == both
    assert sorted(ids(search(api, admin_key, f"{t}@CORP.example", admin=True))) == []
    # The same query without admin mode: prefix only, no emails.
    assert search(api, admin_key, f"{t}mid") == []


def test_user_search_admin_mode_for_promoted_account(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    t = tag()
    target = make_user(first_name=f"Pro{t}", last_name="Moted")
    promoted = make_user()
    make_admin(db, promoted.account_id)
    reply = api.call("user_search", promoted.api_key, form={"query": t, "admin": "true"})
    assert reply.event == "user_search_results", reply.body
    assert ids(reply["results"]) == [target.account_id]
    assert reply["results"][0]["email_address"] == target.email


def test_user_search_admin_exact_lookup(
    api: ApiClient, make_user: MakeUser, admin_key: str
) -> None:
    t = tag()
    target = make_user(first_name=f"Exact{t}", last_name="Lookup")
    make_user(first_name=f"Exact{t}", last_name="Other", email=f"x{target.email}")
    for query in [
        target.email,
        target.email.upper(),
        f" {target.email} ",
        target.account_id,
        target.account_id.upper(),
    ]:
        results = search(api, admin_key, query, admin=True)
        assert ids(results) == [target.account_id], query
        assert results[0]["email_address"] == target.email
        assert results[0]["banned"] is False
    assert search(api, admin_key, str(uuid.uuid4()), admin=True) == []
    assert search(api, admin_key, f"nobody-{t}@example.com", admin=True) == []
    # A uuid is not searched for by non-admins.
    assert search(api, admin_key, target.account_id) == []


def test_user_search_excludes_deleted_and_unlisted(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    t = tag()
    visible = make_user(first_name=f"Vis{t}", last_name="Ible")
    gone = make_user(first_name=f"Vis{t}", last_name="Deleted")
    hidden = make_user(first_name=f"Vis{t}", last_name="Unlisted")
    caller = make_user()
    assert len(search(api, caller.api_key, f"vis{t}")) == 3
    delete_user(api, gone)
    db.execute(
        update(accounts).where(accounts.c.account_id == hidden.account_id).values(unlisted=True)
    )
    assert ids(search(api, caller.api_key, f"vis{t}")) == [visible.account_id]
    assert search(api, caller.api_key, f"vis{t} unlisted") == []
    assert search(api, caller.api_key, gone.email) == []
    # An unlisted account can still be found by its exact address.
    assert ids(search(api, caller.api_key, hidden.email)) == [hidden.account_id]


def test_user_search_active_interval(api: ApiClient, make_user: MakeUser, db: Database) -> None:
    t = tag()
    old = make_user(first_name=f"Act{t}", last_name="Old")
    idle = make_user(first_name=f"Act{t}", last_name="Idle")
    fresh = make_user(first_name=f"Act{t}", last_name="Fresh")
    caller = make_user()
    db.execute(
        update(accounts)
        .where(accounts.c.account_id == old.account_id)
        .values(created=ago(days=400), last_active=ago(days=10))
    )
    db.execute(
        update(accounts)
        .where(accounts.c.account_id == idle.account_id)
        .values(created=ago(days=400), last_active=None)
    )
    everyone = sorted([old.account_id, idle.account_id, fresh.account_id])
    assert sorted(ids(search(api, caller.api_key, f"act{t}"))) == everyone
    assert sorted(ids(search(api, caller.api_key, f"act{t}", active=""))) == everyone
    for active in ["1 day", "2 days", "1 week", "12 hours", "5 minutes"]:
        assert ids(search(api, caller.api_key, f"act{t}", active=active)) == [fresh.account_id]
    for active in ["30 days", "2 weeks", "1 month"]:
        found = sorted(ids(search(api, caller.api_key, f"act{t}", active=active)))
        assert found == sorted([old.account_id, fresh.account_id]), active
    found = sorted(ids(search(api, caller.api_key, f"act{t}", active="2 years")))
    assert found == everyone
    reply = api.call("user_search", caller.api_key, form={"query": f"act{t}", "active": "1 day"})
    assert ids(reply["results"]) == [fresh.account_id]


def test_user_search_invalid_active(api: ApiClient, user: User, db: Database) -> None:
    for active in ["soon", "1 fortnight", "day", "-1 day", "1 day; DELETE FROM accounts", "1 day'"]:
        reply = api.call("user_search", user.api_key, {"query": user.first_name, "active": active})
        assert reply.status == 200, reply.body
        assert reply.event == "error", (active, reply.body)
        assert isinstance(reply["error"], str) and "active" in reply["error"]
    assert (
        db.execute(select(accounts.c.account_id).where(accounts.c.account_id == user.account_id))
        != []
    )
    assert_invalid(api.call("user_search", user.api_key, {"query": "x", "active": 1}), "active")
    # Longer than any calendar: an error or everyone, never a server error.
    for active in ["99999999999999 years", "9" * 500 + " days", "10000 years"]:
        reply = api.call("user_search", user.api_key, {"query": user.first_name, "active": active})
        assert reply.status == 200, reply.body
        assert reply.event in ("error", "user_search_results"), reply.body
        if reply.event == "user_search_results":
            assert ids(reply["results"]) == [user.account_id]


def test_user_search_sorted_by_name(api: ApiClient, make_user: MakeUser, db: Database) -> None:
    t = tag()
    names = [
        (f"Srt{t}b", "Zeta"),
        (f"srt{t}a", "Young"),
        (f"SRT{t}a", "Xavier"),
        (f"Srt{t}c", "Alpha"),
        (f"srt{t}ab", "Beta"),
    ]
    made = {
        make_user(first_name=first, last_name=last).account_id: (first, last)
        for first, last in names
    }
    caller = make_user()
    # Recent activity must not change the order.
    newest = next(iter(made))
    db.execute(
        update(accounts)
        .where(accounts.c.account_id == newest)
        .values(last_active=datetime.now(UTC))
    )
    results = search(api, caller.api_key, f"srt{t}")
    got = [(row["first_name"], row["last_name"]) for row in results]
    assert got == sorted(names, key=lambda n: f"{n[0]} {n[1]}".lower())
    assert [g[1] for g in got] == ["Xavier", "Young", "Beta", "Zeta", "Alpha"]


def test_user_search_wildcards_are_literal(
    api: ApiClient, make_user: MakeUser, admin_key: str
) -> None:
    t = tag()
    target = make_user(first_name=f"Pct{t}xyz", last_name="Literal")
    caller = make_user()
    for query in [f"pct{t}%", f"pct{t}_yz", f"pct{t}%z", "%", "_", "\\", f"pct{t}\\"]:
        assert target.account_id not in ids(search(api, caller.api_key, query)), query
        assert target.account_id not in ids(search(api, admin_key, query, admin=True)), query
    assert search(api, caller.api_key, "%") == []
    odd = make_user(first_name=f"Odd{t}%_\\", last_name="Chars")
    assert ids(search(api, caller.api_key, f"odd{t}%_\\")) == [odd.account_id]
    assert ids(search(api, admin_key, f"{t}%_\\", admin=True)) == [odd.account_id]


def test_user_search_non_ascii_names(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    target = make_user(first_name=f"Élodie{t}", last_name=f"Straße{t}")
    caller = make_user()
    for query in [f"Élodie{t}", f"élodie{t}", f"ÉLODIE{t}", f"straße{t}", f"STRAßE{t}", "straß"]:
        assert ids(search(api, caller.api_key, query)) == [target.account_id], query


def test_user_search_nul_characters(api: ApiClient, user: User, admin_key: str) -> None:
    for query in ["\x00", f"{user.first_name}\x00", f"a\x00b@example.com, {user.first_name}"]:
        for key, admin in [(user.api_key, False), (admin_key, True)]:
            reply = api.call("user_search", key, {"query": query, "admin": admin})
            assert_invalid(reply, "query")
    reply = api.call("user_search", user.api_key, {"query": user.first_name, "active": "\x00"})
    assert_invalid(reply, "active")


@pytest.mark.usefixtures("reset_limits")
def test_control_characters_in_account_fields(api: ApiClient, user: User, db: Database) -> None:
    key = user.api_key
    for address in ["a\x00@example.com", f"{user.email}\x00"]:
        assert_invalid(
            api.call("forgot_password", key, {"email_address": address}), "email_address"
        )
    for address in [f"{user.email}\x1b", f"\x07{user.email}", "a\x7f@b.c", f"{user.email}\n"]:
        reply = api.call("forgot_password", key, {"email_address": address})
        assert reply["error"] == "Invalid email address.", address
    assert db.execute(select(password_reset_attempts)) == []
    reply = api.call(
        "reset_forgot_password", key, {"reset_code": "\x00", "new_password": "abcdefg"}
    )
    assert_invalid(reply, "reset_code")
    reply = api.call(
        "reset_forgot_password",
        key,
        {"reset_code": str(uuid.uuid4()), "new_password": "abc\x00def"},
    )
    assert_invalid(reply, "new_password")
    assert_invalid(
        api.call("user_auth", key, {"account_id": f"{user.account_id}\x00", "password": "x"}),
        "account_id",
    )
    assert_invalid(
        api.call("user_auth", key, {"account_id": user.account_id, "password": "\x00"}), "password"
    )
    assert_invalid(api.call("unlink_passport", key, {"strategy": "g\x00", "id": "1"}), "strategy")
    assert_invalid(api.call("unlink_passport", key, {"strategy": "g", "id": "1\x00"}), "id")
    # None of that locked the account's own user_auth.
    assert auth_ok(api, user, user, user.password)


def test_user_search_empty_queries(api: ApiClient, user: User, admin_key: str) -> None:
    for query in ["", "   ", ",;\n", "<>", "@"]:
        assert search(api, user.api_key, query) == [], query
        assert search(api, admin_key, query, admin=True) == [], query


def test_user_search_bad_parameters(api: ApiClient, user: User, server: Server) -> None:
    key = user.api_key
    reply = api.call("user_search", key, {})
    assert (reply.status, reply.body) == (400, missing("query"))
    reply = api.call("user_search", key, {"query": None})
    assert (reply.status, reply.body) == (400, missing("query"))
    reply = api.call("user_search", key, {"query": "x", "offset": 3})
    assert (reply.status, reply.body) == (400, unexpected("offset"))
    assert_invalid(api.call("user_search", key, {"query": ["a", "b"]}), "query")
    assert_invalid(api.call("user_search", key, {"query": "x", "limit": -1}), "limit")
    assert_invalid(api.call("user_search", key, {"query": "x", "limit": 2.5}), "limit")
    assert_invalid(api.call("user_search", key, {"query": "x", "limit": "5"}), "limit")
    assert_invalid(api.call("user_search", key, form={"query": "x", "limit": "-3"}), "limit")
    assert_invalid(api.call("user_search", key, {"query": "x", "admin": "yes"}), "admin")
    assert_invalid(api.call("user_search", key, {"query": "x" * 100_001}), "query")
    server.cli("admin", "ban", user.account_id)
    reply = api.call("user_search", key, {"query": "x"})
    assert reply.status == 400 and reply["error"].startswith("User is BANNED.")


def test_user_search_huge_queries(api: ApiClient, make_user: MakeUser, admin_key: str) -> None:
    t = tag()
    target = make_user(first_name=f"Huge{t}", last_name="Query")
    caller = make_user()
    # Repeated words and items are searched once.
    for query in [
        f"huge{t} " * 5000,
        ", ".join([f"huge{t} query"] * 3000),
        "; ".join([f"huge{t}"] + [f"nomatch{n}{t}" for n in range(50)]),
    ]:
        assert ids(search(api, caller.api_key, query)) == [target.account_id]
        assert ids(search(api, admin_key, query, admin=True)) == [target.account_id]
    # Very many different words or addresses: an answer, never a server error.
    emails = ", ".join(f"u{n}-{t}@example.com" for n in range(2500))
    for query in [
        ", ".join(f"name{n}" for n in range(5000)),
        " ".join(f"w{n}" for n in range(5000)),
        ", ".join(" ".join(f"w{n}x{m}" for m in range(10)) for n in range(1000)),
        emails,
    ]:
        for key, admin in [(caller.api_key, False), (admin_key, True)]:
            reply = api.call("user_search", key, {"query": query, "admin": admin})
            assert reply.status == 200, reply.body
            assert reply.event in ("user_search_results", "error"), reply.body
            if reply.event == "error":
                assert isinstance(reply["error"], str)
            else:
                assert reply["results"] == []
    assert search(api, caller.api_key, f"{emails}, {target.email}")[0]["account_id"] == (
        target.account_id
    )


# --- unlink_passport -----------------------------------------------------------------------

PASSPORTS = {
    "google-123": {"id": "123", "strategy": "google", "email": "g@example.com"},
    "github-9": {"id": "9", "strategy": "github", "login": "octo"},
}


def passports_of(db: Database, account_id: str) -> Any:
    (row,) = db.execute(select(accounts.c.passports).where(accounts.c.account_id == account_id))
    return row.passports


def set_passports(db: Database, account_id: str, value: Any) -> None:
    db.execute(update(accounts).where(accounts.c.account_id == account_id).values(passports=value))


def test_unlink_passport_removes_only_that_key(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    user = make_user()
    set_passports(db, user.account_id, PASSPORTS)
    reply = api.call("unlink_passport", user.api_key, {"strategy": "google", "id": "123"})
    assert reply.status == 200
    assert reply.body == {"event": "success", "id": "123"}
    assert passports_of(db, user.account_id) == {"github-9": PASSPORTS["github-9"]}
    reply = api.call("unlink_passport", user.api_key, {"strategy": "github", "id": "9"})
    assert reply.body == {"event": "success", "id": "9"}
    assert not passports_of(db, user.account_id)


def test_unlink_passport_numeric_id_and_form(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    user = make_user()
    set_passports(db, user.account_id, PASSPORTS)
    reply = api.call("unlink_passport", user.api_key, {"strategy": "google", "id": 123})
    assert reply.body == {"event": "success", "id": 123}
    assert passports_of(db, user.account_id) == {"github-9": PASSPORTS["github-9"]}
    set_passports(db, user.account_id, PASSPORTS)
    reply = api.call("unlink_passport", user.api_key, form={"strategy": "github", "id": "9"})
    assert reply.event == "success"
    assert reply["id"] in ("9", 9)
    assert passports_of(db, user.account_id) == {"google-123": PASSPORTS["google-123"]}


def test_unlink_passport_not_linked_still_succeeds(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    user = make_user()
    reply = api.call("unlink_passport", user.api_key, {"strategy": "google", "id": "123"})
    assert reply.body == {"event": "success", "id": "123"}
    assert passports_of(db, user.account_id) is None
    set_passports(db, user.account_id, PASSPORTS)
    for strategy, passport_id in [
        ("google", "124"),
        ("github", "123"),
        ("google-123", ""),
        ("twitter", "9"),
        ("google", "12"),
        ("Google", "123"),
    ]:
        reply = api.call("unlink_passport", user.api_key, {"strategy": strategy, "id": passport_id})
        assert reply.body == {"event": "success", "id": passport_id}
        assert passports_of(db, user.account_id) == PASSPORTS, (strategy, passport_id)
    set_passports(db, user.account_id, {})
    reply = api.call("unlink_passport", user.api_key, {"strategy": "google", "id": "123"})
    assert reply.event == "success"


def test_unlink_passport_touches_only_the_callers_account(
    api: ApiClient, make_user: MakeUser, db: Database, admin_key: str
) -> None:
    owner = make_user()
    stranger = make_user()
    set_passports(db, owner.account_id, PASSPORTS)
    set_passports(db, stranger.account_id, {"github-9": PASSPORTS["github-9"]})
    reply = api.call("unlink_passport", stranger.api_key, {"strategy": "google", "id": "123"})
    assert reply.body == {"event": "success", "id": "123"}
    reply = api.call("unlink_passport", stranger.api_key, {"strategy": "github", "id": "9"})
    assert reply.body == {"event": "success", "id": "9"}
    assert not passports_of(db, stranger.account_id)
    reply = api.call("unlink_passport", admin_key, {"strategy": "google", "id": "123"})
    assert reply.event == "success"
    assert passports_of(db, owner.account_id) == PASSPORTS
    # There is no way to name another account.
    reply = api.call(
        "unlink_passport",
        stranger.api_key,
        {"strategy": "google", "id": "123", "account_id": owner.account_id},
    )
    assert (reply.status, reply.body) == (400, unexpected("account_id"))
    assert passports_of(db, owner.account_id) == PASSPORTS


def test_unlink_passport_bad_parameters(
    api: ApiClient, make_user: MakeUser, db: Database, server: Server
) -> None:
    user = make_user()
    set_passports(db, user.account_id, PASSPORTS)
    key = user.api_key
    reply = api.call("unlink_passport", key, {"id": "123"})
    assert (reply.status, reply.body) == (400, missing("strategy"))
    reply = api.call("unlink_passport", key, {"strategy": "google"})
    assert (reply.status, reply.body) == (400, missing("id"))
    reply = api.call("unlink_passport", key, {"strategy": "google", "id": None})
    assert (reply.status, reply.body) == (400, missing("id"))
    reply = api.call("unlink_passport", key, form={"strategy": "google"})
    assert (reply.status, reply.body) == (400, missing("id"))
    assert_invalid(api.call("unlink_passport", key, {"strategy": 5, "id": "123"}), "strategy")
    assert_invalid(api.call("unlink_passport", key, {"strategy": "google", "id": {"a": 1}}), "id")
    assert_invalid(api.call("unlink_passport", key, {"strategy": "google", "id": ["123"]}), "id")
    assert_invalid(
        api.call("unlink_passport", key, {"strategy": "g" * 5000, "id": "1"}), "strategy"
    )
    assert passports_of(db, user.account_id) == PASSPORTS

    server.cli("admin", "ban", user.account_id)
    reply = api.call("unlink_passport", key, {"strategy": "google", "id": "123"})
    assert reply.status == 400 and reply["error"].startswith("User is BANNED.")
    assert passports_of(db, user.account_id) == PASSPORTS


def test_unlink_passport_deleted_account(api: ApiClient, make_user: MakeUser, db: Database) -> None:
    user = make_user()
    set_passports(db, user.account_id, PASSPORTS)
    delete_user(api, user)
    assert passports_of(db, user.account_id) is None
    reply = api.call("unlink_passport", user.api_key, {"strategy": "google", "id": "123"})
    assert (reply.status, reply.body) == (400, NO_ACCOUNT_KEY)
