"""Forgotten passwords over real HTTP: forgot_password and reset_forgot_password."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from calchub.db.tables import (
    password_reset,
    password_reset_attempts,
)
from tests.api.accounts.helpers import (
    CLIENT_IP,
    LENGTH_RULE,
    NO_LONGER_VALID,
    PER_EMAIL,
    PER_HOUR,
    PER_MINUTE,
    MakeUser,
    ago,
    assert_error,
    auth_ok,
    delete_user,
    sha256,
    site_name,
)
from tests.api.expect import NO_ACCOUNT_KEY, assert_invalid, missing, unexpected
from tests.conftest import User
from tests.harness import ApiClient, Database, Server
from tests.smtp_sink import Received, SmtpSink

# --- forgot_password -----------------------------------------------------------------------


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
