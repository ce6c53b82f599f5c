"""Account lifecycle over real HTTP: create_account, delete_account, change_password,
change_email_address and get_usernames, with the site settings that govern them."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import delete, insert, select

from calchub.db.tables import accounts, api_keys, auth_tokens, metadata, registration_tokens
from tests.conftest import User
from tests.harness import ApiClient, Database, Reply, Server
from tests.smtp_sink import Received, SmtpSink

MakeUser = Callable[..., User]

LENGTH_RULE = "Password must be between 6 and 64 characters in length."
NO_ACCOUNT = {"error": "No account found. Is your API key wrong?"}
BANNED_PREFIX = "User is BANNED.  If this is a mistake, please contact "
INVALID = "invalid parameters 'Error: misc.defaults -- TypeError: "

# Every password, API key and verification token handed out in this module: none of them
# may ever be found in clear on disk or in the database (see the last test).
SECRETS: set[str] = set()


# --- helpers ---------------------------------------------------------------------------------


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


@pytest.fixture
def new_user(make_user: MakeUser) -> MakeUser:
    """make_user with a fresh password per account, remembered as a secret."""

    def make(**kwargs: Any) -> User:
        kwargs.setdefault("password", new_password())
        user = make_user(**kwargs)
        SECRETS.update({user.api_key, user.password})
        return user

    return make


def passwordless(server: Server) -> tuple[str, str, str]:
    """An account without a password (as an admin creates for SSO users), with an API key."""
    email = unique_email("nopw")
    args = ["--email", email, "--first-name", "No", "--last-name", "Password", "--api-key"]
    out = server.cli_json("admin", "create-account", *args)
    SECRETS.add(out["api_key"])
    return out["account_id"], out["api_key"], email


# --- create_account --------------------------------------------------------------------------


def test_create_account_json(api: ApiClient, admin_key: str, db: Database) -> None:
    body = signup(email_address=unique_email("Mixed.Case").upper(), usage_intent="teaching")
    reply = api.call("create_account", admin_key, {**body, "id": "create-1"})
    account_id = created(reply)
    assert set(reply.body) == {"event", "id", "account_id"}  # no key unless asked for
    assert reply["id"] == "create-1"
    assert uuid.UUID(account_id).version == 4 and account_id == account_id.lower()

    row = account_row(db, account_id)
    assert row.email_address == body["email_address"].lower()
    assert (row.first_name, row.last_name) == ("Ada", "Lovelace")
    assert password_is(row.password_hash, body["password"])
    assert row.groups == []  # created by an admin, but not an admin
    assert not row.banned and not row.deleted
    assert row.sign_up_usage_intent == "teaching"
    assert row.created_by == "127.0.0.1"
    assert key_count(db, account_id) == 0
    # The creator stays who it was.
    assert api.call("ping", admin_key).event == "pong"


def test_create_account_by_non_admin_and_without_id(
    api: ApiClient, new_user: MakeUser, db: Database
) -> None:
    user = new_user()
    reply = create(api, user.api_key, signup())
    account_id = created(reply)
    uuid.UUID(reply["id"])
    assert account_row(db, account_id).groups == []


def test_get_api_key_returns_a_working_key(
    api: ApiClient, new_user: MakeUser, db: Database
) -> None:
    user = new_user()
    body = signup(get_api_key=True)
    reply = create(api, user.api_key, body)
    account_id = created(reply)
    key = reply["api_key"]
    assert set(reply.body) == {"event", "id", "account_id", "api_key"}
    assert re.fullmatch(r"sk_[A-Za-z0-9]{24}", key), key
    assert key != user.api_key
    assert key_count(db, account_id) == 1

    assert api.call("ping", key).event == "pong"
    assert api.call("ping", key, bearer=True).event == "pong"
    # The key acts as the new account: only its owner may change its email address.
    mine = api.call(
        "change_email_address",
        key,
        {
            "account_id": account_id,
            "new_email_address": unique_email(),
            "password": body["password"],
        },
    )
    assert (mine.event, mine["error"]) == ("changed_email_address", False)
    names = api.call("get_usernames", key, {"account_ids": [account_id]})
    assert names["usernames"] == {account_id: {"first_name": "Ada", "last_name": "Lovelace"}}


def test_get_api_key_false_gives_no_key(api: ApiClient, admin_key: str, db: Database) -> None:
    reply = create(api, admin_key, signup(get_api_key=False))
    account_id = created(reply)
    assert "api_key" not in reply.body
    assert key_count(db, account_id) == 0


def test_create_account_form_body(api: ApiClient, new_user: MakeUser, db: Database) -> None:
    user = new_user()
    body = signup(agreed_to_terms="true", get_api_key="true", id="form-id")
    reply = create(api, user.api_key, form=body)
    account_id = created(reply)
    assert reply["id"] == "form-id"
    assert api.call("ping", reply["api_key"]).event == "pong"
    assert password_is(account_row(db, account_id).password_hash, body["password"])

    # "false" is false, not a truthy string.
    reply = create(api, user.api_key, form=signup(agreed_to_terms="false"))
    assert failed(reply) == {"agreed_to_terms": "Agree to the Terms of Service."}
    reply = create(api, user.api_key, form=signup(agreed_to_terms="1"))
    created(reply)


def test_empty_body_reports_every_problem(api: ApiClient, admin_key: str) -> None:
    for reply in (
        create(api, admin_key, {}),
        create(api, admin_key, form={"id": "x"}),
    ):
        assert failed(reply) == {
            "first_name": "Enter your first name.",
            "last_name": "Enter your last name.",
            "email_address": "Email address does not appear to be valid.",
            "password": "Password must be specified.",
            "agreed_to_terms": "Agree to the Terms of Service.",
        }


@pytest.mark.parametrize("value", ["", "   ", "\t\n", None])
def test_names_are_required(api: ApiClient, admin_key: str, db: Database, value: Any) -> None:
    email = unique_email()
    first = signup(first_name=value, email_address=email)
    assert failed(create(api, admin_key, first)) == {"first_name": "Enter your first name."}
    last = signup(last_name=value, email_address=email)
    assert failed(create(api, admin_key, last)) == {"last_name": "Enter your last name."}
    both = signup(first_name=value, last_name=value, email_address=email)
    assert failed(create(api, admin_key, both)) == {
        "first_name": "Enter your first name.",
        "last_name": "Enter your last name.",
    }
    assert accounts_with_email(db, email) == []


def test_names_must_not_carry_links_or_addresses(api: ApiClient, admin_key: str) -> None:
    reply = create(api, admin_key, signup(first_name="visit http://spam.example"))
    assert failed(reply) == {
        "other": "first_name not valid: URLs are not allowed. Found http://spam.example"
    }
    reply = create(api, admin_key, signup(last_name="mail me at x@spam.example"))
    assert failed(reply) == {"other": "last_name not valid: email addresses are not allowed"}


@pytest.mark.parametrize(
    "email",
    [
        "",
        "no-at-sign",
        "two@@example.com",
        "a b@example.com",
        "x@",
        "@example.com",
        "<x@example.com>",
        "x" * 250 + "@e.co",
    ],
)
def test_invalid_email(api: ApiClient, admin_key: str, email: str) -> None:
    reply = create(api, admin_key, signup(email_address=email))
    assert failed(reply) == {"email_address": "Email address does not appear to be valid."}


def test_shortest_valid_email(api: ApiClient, admin_key: str) -> None:
    # CoCalc's rule: `a@b` is an address.
    address = f"a{uuid.uuid4().hex[:8]}@b"
    created(create(api, admin_key, signup(email_address=address)))


@pytest.mark.parametrize("length", [0, 1, 5, 65, 100, 1024])
def test_password_length_rejected(api: ApiClient, admin_key: str, length: int) -> None:
    reply = create(api, admin_key, signup(password="p" * length))
    assert failed(reply) == {"password": LENGTH_RULE}


@pytest.mark.parametrize("length", [6, 64])
def test_password_length_bounds_accepted(
    api: ApiClient, admin_key: str, db: Database, length: int
) -> None:
    password = password_of_length(length)
    account_id = created(create(api, admin_key, signup(password=password)))
    assert password_is(account_row(db, account_id).password_hash, password)


def test_terms_must_be_agreed(api: ApiClient, admin_key: str) -> None:
    terms = {"agreed_to_terms": "Agree to the Terms of Service."}
    assert failed(create(api, admin_key, signup(agreed_to_terms=False))) == terms
    body = signup()
    del body["agreed_to_terms"]
    assert failed(create(api, admin_key, body)) == terms
    assert failed(create(api, admin_key, signup(agreed_to_terms=None))) == terms


def test_several_problems_in_one_reason(api: ApiClient, admin_key: str) -> None:
    reply = api.call(
        "create_account",
        admin_key,
        signup(last_name="", email_address="bad", password="123", agreed_to_terms=False),
    )
    assert failed(reply) == {
        "last_name": "Enter your last name.",
        "email_address": "Email address does not appear to be valid.",
        "password": LENGTH_RULE,
        "agreed_to_terms": "Agree to the Terms of Service.",
    }


def test_duplicate_email(
    api: ApiClient, admin_key: str, new_user: MakeUser, db: Database, smtp: SmtpSink
) -> None:
    owner = new_user()
    before = account_row(db, owner.account_id)
    taken = {"email_address": "This e-mail address is already taken."}
    for address in (owner.email, owner.email.upper(), owner.email.title()):
        for key in (admin_key, owner.api_key):
            reply = create(api, key, signup(email_address=address))
            assert failed(reply) == taken
        reply = create(api, admin_key, form=signup(email_address=address, agreed_to_terms="true"))
        assert failed(reply) == taken
    assert [r.account_id for r in accounts_with_email(db, owner.email)] == [owner.account_id]
    assert account_row(db, owner.account_id).password_hash == before.password_hash
    assert len(mail_to(smtp, owner.email, count=2, timeout=0.5)) == 1  # only the first welcome


def test_field_rules_come_before_duplicate_check(
    api: ApiClient, admin_key: str, new_user: MakeUser
) -> None:
    owner = new_user()
    reply = create(api, admin_key, signup(email_address=owner.email, password="x"))
    assert failed(reply) == {"password": LENGTH_RULE}


def test_create_account_bad_types(api: ApiClient, admin_key: str) -> None:
    for field, value in [
        ("first_name", 5),
        ("last_name", ["a"]),
        ("email_address", {"a": 1}),
        ("password", 12345678),
        ("agreed_to_terms", "true"),
        ("agreed_to_terms", 1),
        ("get_api_key", "yes"),
        ("token", 7),
        ("usage_intent", False),
    ]:
        invalid_parameters(create(api, admin_key, signup(**{field: value})), field)
    reply = create(api, admin_key, signup(admin=True))
    assert reply.body == {"error": f"{INVALID}got an unexpected argument 'admin' '"}
    reply = create(api, admin_key, form=signup(agreed_to_terms="maybe"))
    invalid_parameters(reply, "agreed_to_terms")


def test_create_account_huge_values(api: ApiClient, admin_key: str, db: Database) -> None:
    for field in ("first_name", "last_name", "email_address", "password", "token"):
        reply = create(api, admin_key, signup(**{field: "x" * 100_000}))
        invalid_parameters(reply, field)
    # Long (but accepted) names are kept to the 254 characters an account name may have.
    email = unique_email()
    reply = api.call(
        "create_account",
        admin_key,
        signup(first_name="F" * 1000, last_name="L" * 300, email_address=email),
    )
    account_id = created(reply)
    row = account_row(db, account_id)
    assert (row.first_name, row.last_name) == ("F" * 254, "L" * 254)
    # An address that only grows past the limit when lower-cased is not valid either.
    dotted_i = "\u0130"
    long_address = dotted_i * 10 + "x" * (254 - 10 - len("@example.com")) + "@example.com"
    assert len(long_address) == 254 and len(long_address.lower()) > 254
    reply = create(api, admin_key, signup(email_address=long_address))
    assert failed(reply) == {"email_address": "Email address does not appear to be valid."}
    # The longest address that is valid is accepted and stored.
    exact = "y" * (254 - len("@example.com") - 8) + uuid.uuid4().hex[:8] + "@example.com"
    account_id = created(create(api, admin_key, signup(email_address=exact)))
    assert account_row(db, account_id).email_address == exact


def test_welcome_email_and_verification(
    api: ApiClient, admin_key: str, server: Server, smtp: SmtpSink, db: Database
) -> None:
    settings = server.cli_json("admin", "setting")
    body = signup(email_address=unique_email("Welcome").upper())
    address = body["email_address"].lower()
    account_id = created(create(api, admin_key, body))

    (received,) = mail_to(smtp, address)
    assert received.envelope_to == [address]
    assert received.message["Subject"] == f"Welcome to {settings['site_name']} - {settings['dns']}"
    text = plain_text(received)
    assert body["password"] not in received.message.as_string()
    match = re.search(re.escape(server.url) + r"/auth/verify\?\S+", text)
    assert match, text
    link = match.group(0)
    query = parse_qs(urlsplit(link).query)
    assert query["email"] == [address]
    token = query["token"][0]
    SECRETS.add(token)
    assert account_row(db, account_id).email_address_verified in (None, {})

    # A wrong token neither verifies nor spoils the real one.
    wrong = link.replace(token, "x" * len(token))
    assert api.http.get(wrong).status_code == 400
    upper = urlencode({"email": address.upper(), "token": token})
    response = api.http.get(f"{server.url}/auth/verify?{upper}")
    assert response.status_code == 200, response.text
    verified = account_row(db, account_id).email_address_verified
    assert set(verified) == {address}

    # The link is single-use.
    second = api.http.get(link)
    assert second.status_code == 400
    assert account_row(db, account_id).email_address_verified == verified


def test_no_welcome_for_failed_creation(api: ApiClient, admin_key: str, smtp: SmtpSink) -> None:
    address = unique_email()
    failed(create(api, admin_key, signup(email_address=address, password="1")))
    assert mail_to(smtp, address, timeout=0.5) == []


def test_welcome_email_follows_site_settings(
    api: ApiClient, admin_key: str, server: Server, smtp: SmtpSink
) -> None:
    dns = server.cli_json("admin", "setting", "dns")["dns"]
    sender = server.cli_json("admin", "setting", "organization_email")["organization_email"]
    with site_setting(server, "site_name", "Lifecycle Hub"):
        address = unique_email()
        created(create(api, admin_key, signup(email_address=address)))
        (received,) = mail_to(smtp, address)
    assert received.message["Subject"] == f"Welcome to Lifecycle Hub - {dns}"
    assert sender in received.message["From"]
    assert "Lifecycle Hub" in plain_text(received)


def test_verify_link_needs_the_current_address(
    api: ApiClient, admin_key: str, server: Server, smtp: SmtpSink, db: Database
) -> None:
    assert api.http.get("/auth/verify").status_code == 400
    assert api.http.get("/auth/verify?email=a@b.c").status_code == 400
    # After an address change the old link is void.
    body = signup(get_api_key=True)
    reply = create(api, admin_key, body)
    moved = created(reply)
    link = verify_link(smtp, server, body["email_address"])
    new_address = unique_email()
    reply = change_email(api, reply["api_key"], moved, new_address, body["password"])
    assert reply["error"] is False
    assert api.http.get(link).status_code == 400
    swapped = link.replace(
        body["email_address"].replace("@", "%40"), new_address.replace("@", "%40")
    )
    assert swapped != link
    assert api.http.get(swapped).status_code == 400
    assert account_row(db, moved).email_address_verified in (None, {})
    # A deleted account's link is void too.
    body = signup()
    doomed = created(create(api, admin_key, body))
    link = verify_link(smtp, server, body["email_address"])
    assert api.call("delete_account", admin_key, {"account_id": doomed}).event == "account_deleted"
    assert api.http.get(link).status_code == 400
    assert account_row(db, doomed).email_address_verified in (None, {})


def test_concurrent_signups_with_one_address(
    server: Server, new_user: MakeUser, db: Database
) -> None:
    user = new_user()
    address = unique_email()
    clients = [ApiClient(server.url) for _ in range(8)]
    try:
        replies = parallel(
            [
                lambda c=client: create(c, user.api_key, signup(email_address=address))
                for client in clients
            ]
        )
    finally:
        for client in clients:
            client.close()
    assert all(r.status == 200 for r in replies), [r.body for r in replies]
    assert (
        sorted(str(r.event) for r in replies)
        == ["account_created"] + ["account_creation_failed"] * 7
    )
    for reply in replies:
        if reply.event == "account_creation_failed":
            assert reply["reason"] == {"email_address": "This e-mail address is already taken."}
    assert len(accounts_with_email(db, address)) == 1


def test_concurrent_signups(server: Server, new_user: MakeUser) -> None:
    user = new_user()
    clients = [ApiClient(server.url) for _ in range(8)]
    try:
        replies = parallel(
            [lambda c=client: create(c, user.api_key, signup()) for client in clients]
        )
    finally:
        for client in clients:
            client.close()
    ids = {created(reply) for reply in replies}
    assert len(ids) == 8


def test_last_registration_token_use_is_not_shared(
    server: Server, new_user: MakeUser, db: Database
) -> None:
    user = new_user()
    token = f"race-{uuid.uuid4().hex[:8]}"
    db.execute(insert(registration_tokens).values(token=token, counter=0, disabled=False, limit=1))
    clients = [ApiClient(server.url) for _ in range(6)]
    try:
        replies = parallel(
            [lambda c=client: create(c, user.api_key, signup(token=token)) for client in clients]
        )
        events = sorted(str(r.event) for r in replies)
        assert events == ["account_created"] + ["account_creation_failed"] * 5, [
            r.body for r in replies
        ]
        for reply in replies:
            if reply.event == "account_creation_failed":
                assert reply["reason"] == {"token": "Registration token used up."}
        (row,) = db.execute(
            select(registration_tokens.c.counter).where(registration_tokens.c.token == token)
        )
        assert row.counter == 1
    finally:
        for client in clients:
            client.close()
        db.execute(delete(registration_tokens).where(registration_tokens.c.token == token))


def test_control_characters(api: ApiClient, new_user: MakeUser, db: Database) -> None:
    """Text PostgreSQL cannot store (NUL) or that has no place in a name or an address is
    refused as bad input, never a server error."""
    user = new_user()
    email = unique_email()
    bad_address = {"email_address": "Email address does not appear to be valid."}
    for field, value, reason in [
        (
            "first_name",
            "Nul\u0000Byte",
            {"other": "first_name not valid: control characters are not allowed"},
        ),
        (
            "last_name",
            "Bell\u0007",
            {"other": "last_name not valid: control characters are not allowed"},
        ),
        ("email_address", "nul\u0000" + email, bad_address),
        ("email_address", email + "\u0001", bad_address),
        (
            "usage_intent",
            "research\u0000",
            {"other": "usage_intent not valid: control characters are not allowed"},
        ),
    ]:
        body = signup(email_address=email)
        body[field] = value
        reply = create(api, user.api_key, body)
        # Refusing such text as invalid input at the protocol level is fine too.
        if reply.status == 400:
            invalid_parameters(reply, field)
        else:
            assert failed(reply) == reason
    assert accounts_with_email(db, email) == []
    # A multi-line usage intent is fine.
    created(create(api, user.api_key, signup(usage_intent="teaching\nresearch\tand more")))

    token = f"ctl-{uuid.uuid4().hex[:8]}"
    db.execute(insert(registration_tokens).values(token=token, counter=0, disabled=False))
    try:
        reply = create(api, user.api_key, signup(token=token + "\u0000"))
        if reply.status == 400:
            invalid_parameters(reply, "token")
        else:
            assert failed(reply) == {"token": "Registration token is wrong."}
    finally:
        db.execute(delete(registration_tokens).where(registration_tokens.c.token == token))

    for address in ("nul\u0000" + unique_email(), unique_email() + "\u007f"):
        reply = change_email(api, user.api_key, user.account_id, address, user.password)
        if reply.status == 400:
            invalid_parameters(reply, "new_email_address")
        else:
            assert (reply.event, reply["error"]) == ("changed_email_address", "email_invalid")
    assert account_row(db, user.account_id).email_address == user.email


def test_ip_throttle(
    api: ApiClient, admin_key: str, new_user: MakeUser, server: Server, db: Database
) -> None:
    user = new_user()
    ip = fresh_ip()
    with site_setting(server, "account_creation_ip_limit", "2"):
        # The client address comes from the local proxy's X-Forwarded-For; addresses the
        # client itself put in front of it do not count.
        first = created(create(api, user.api_key, signup(), ip=f"{fresh_ip()}, {ip}"))
        assert account_row(db, first).created_by == ip
        created(create(api, user.api_key, signup(), ip=ip))
        email = unique_email()
        reply = create(api, user.api_key, signup(email_address=email), ip=ip)
        assert failed(reply) == {
            "other": f"Too many accounts are being created from the ip address {ip}; try again "
            "later.  By default at most 2 accounts can be created every 30 minutes from one "
            "IP; if you're using the API and need a higher limit, contact us."
        }
        assert accounts_with_email(db, email) == []
        form = signup(agreed_to_terms="true")
        assert failed(create(api, user.api_key, form=form, ip=ip)) == failed(reply)
        # Field problems are reported before the throttle.
        reply = create(api, user.api_key, signup(password="short"), ip=ip)
        assert failed(reply) == {"password": LENGTH_RULE}
        # Admins are exempt; other addresses are not affected.
        created(create(api, admin_key, signup(), ip=ip))
        created(create(api, user.api_key, signup()))
    # Back at the default limit the same address may create accounts again.
    created(create(api, user.api_key, signup(), ip=ip))


def test_account_creation_admin_only(
    api: ApiClient, admin_key: str, new_user: MakeUser, server: Server, db: Database
) -> None:
    user = new_user()
    with site_setting(server, "account_creation", "admin"):
        email = unique_email()
        for reply in (
            create(api, user.api_key, signup(email_address=email)),
            create(api, user.api_key, form=signup(email_address=email, agreed_to_terms="true")),
        ):
            assert failed(reply) == {
                "other": "Only administrators may create accounts on this site."
            }
        assert accounts_with_email(db, email) == []
        created(create(api, admin_key, signup()))
    created(create(api, user.api_key, signup()))


def test_email_signup_disabled(
    api: ApiClient, admin_key: str, new_user: MakeUser, server: Server
) -> None:
    user = new_user()
    with site_setting(server, "email_signup", "no"):
        reply = create(api, user.api_key, signup())
        assert failed(reply) == {"other": "Signing up via email/password is disabled."}
        created(create(api, admin_key, signup()))
    created(create(api, user.api_key, signup()))


def test_registration_tokens(
    api: ApiClient, admin_key: str, new_user: MakeUser, db: Database
) -> None:
    user = new_user()
    tag = uuid.uuid4().hex[:8]
    good, limited, off, old = (f"{name}-{tag}" for name in ("good", "limited", "off", "old"))
    now = datetime.now(UTC)
    rows = [
        {"token": good, "counter": 0, "disabled": False, "expires": now + timedelta(days=1)},
        {"token": limited, "counter": 0, "disabled": False, "limit": 1},
        {"token": off, "counter": 0, "disabled": True},
        {"token": old, "counter": 0, "disabled": False, "expires": now - timedelta(days=1)},
    ]
    for row in rows:
        db.execute(insert(registration_tokens).values(**row))
    try:

        def counter(token: str) -> int:
            (row,) = db.execute(
                select(registration_tokens.c.counter).where(registration_tokens.c.token == token)
            )
            return int(row.counter)

        def attempt(token: str | None) -> Reply:
            body = signup() if token is None else signup(token=token)
            return create(api, user.api_key, body)

        assert failed(attempt(None)) == {"token": "No registration token provided"}
        assert failed(attempt("")) == {"token": "No registration token provided"}
        assert failed(attempt("nope")) == {"token": "Registration token is wrong."}
        assert failed(attempt(good.upper())) == {"token": "Registration token is wrong."}
        assert failed(attempt(off)) == {"token": "Registration token disabled."}
        assert failed(attempt(old)) == {"token": "Registration token no longer valid."}

        created(attempt(good))
        created(create(api, user.api_key, form=signup(token=good, agreed_to_terms="true")))
        assert counter(good) == 2
        created(attempt(limited))
        assert counter(limited) == 1
        assert failed(attempt(limited)) == {"token": "Registration token used up."}
        assert counter(limited) == 1
        # A failure after the token check does not spend a use.
        reply = create(api, user.api_key, signup(token=good, email_address=user.email))
        assert failed(reply) == {"email_address": "This e-mail address is already taken."}
        assert counter(good) == 2
        # Admins do not need a token.
        created(create(api, admin_key, signup()))
    finally:
        db.execute(
            delete(registration_tokens).where(
                registration_tokens.c.token.in_([r["token"] for r in rows])
            )
        )
    # No active token left: sign-up is open again.
    created(create(api, user.api_key, signup()))


def test_only_inactive_tokens_do_not_gate_signup(
    api: ApiClient, new_user: MakeUser, db: Database
) -> None:
    user = new_user()
    names = [f"inactive-{uuid.uuid4().hex[:8]}", f"expired-{uuid.uuid4().hex[:8]}"]
    db.execute(insert(registration_tokens).values(token=names[0], counter=0, disabled=True))
    db.execute(
        insert(registration_tokens).values(
            token=names[1], counter=0, disabled=False, expires=datetime.now(UTC) - timedelta(1)
        )
    )
    try:
        created(create(api, user.api_key, signup()))
    finally:
        db.execute(delete(registration_tokens).where(registration_tokens.c.token.in_(names)))


# --- delete_account --------------------------------------------------------------------------


def test_delete_own_account(
    api: ApiClient, admin_key: str, new_user: MakeUser, db: Database
) -> None:
    user = new_user()
    token = api.call("user_auth", admin_key, {"account_id": user.account_id, "password": ""})
    assert token.event == "user_auth_token"
    SECRETS.add(token["auth_token"])

    reply = api.call("delete_account", user.api_key, {"account_id": user.account_id, "id": 7})
    assert (reply.status, reply.body) == (200, {"event": "account_deleted", "id": 7})
    # The key stops working on the very next request.
    for event, body in [
        ("ping", {}),
        ("delete_account", {"account_id": user.account_id}),
        ("get_usernames", {"account_ids": []}),
    ]:
        again = api.call(event, user.api_key, body)
        assert (again.status, again.body) == (400, NO_ACCOUNT)

    row = account_row(db, user.account_id)
    assert row.deleted
    assert row.email_address is None
    assert row.email_address_before_delete == user.email
    assert key_count(db, user.account_id) == 0
    assert db.execute(select(auth_tokens).where(auth_tokens.c.account_id == user.account_id)) == []
    reply = api.call("user_auth", admin_key, {"account_id": user.account_id, "password": ""})
    assert reply.body == {"event": "error", "id": reply["id"], "error": "no such account"}

    # The address is free again, in any case.
    body = signup(email_address=user.email.upper(), get_api_key=True)
    successor = created(create(api, admin_key, body))
    assert successor != user.account_id
    assert account_row(db, successor).email_address == user.email


def test_delete_own_account_form_and_case(api: ApiClient, new_user: MakeUser, db: Database) -> None:
    user = new_user()
    reply = api.call("delete_account", user.api_key, form={"account_id": user.account_id.upper()})
    assert reply.event == "account_deleted", reply.body
    assert account_row(db, user.account_id).deleted
    assert api.call("ping", user.api_key).body == NO_ACCOUNT


def test_stranger_cannot_delete(api: ApiClient, new_user: MakeUser, db: Database) -> None:
    victim, stranger = new_user(), new_user()
    before = account_row(db, victim.account_id)
    for account_id in (victim.account_id, victim.account_id.upper()):
        for reply in (
            api.call("delete_account", stranger.api_key, {"account_id": account_id, "id": "d"}),
            api.call("delete_account", stranger.api_key, form={"account_id": account_id}),
        ):
            assert reply.status == 200
            assert reply.event == "error", reply.body
            assert isinstance(reply["error"], str) and reply["error"]
    assert account_row(db, victim.account_id) == before
    assert key_count(db, victim.account_id) == 1
    assert api.call("ping", victim.api_key).event == "pong"
    assert api.call("ping", stranger.api_key).event == "pong"
    # The address is still taken.
    reply = create(api, stranger.api_key, signup(email_address=victim.email))
    assert failed(reply) == {"email_address": "This e-mail address is already taken."}


def test_admin_deletes_others(
    api: ApiClient, admin_key: str, new_user: MakeUser, db: Database, server: Server
) -> None:
    victim = new_user()
    reply = api.call("delete_account", admin_key, {"account_id": victim.account_id})
    assert reply.event == "account_deleted", reply.body
    assert api.call("ping", victim.api_key).body == NO_ACCOUNT
    assert account_row(db, victim.account_id).deleted
    # Deleting again, or deleting an account that never existed, succeeds quietly.
    for account_id in (victim.account_id, str(uuid.uuid4())):
        reply = api.call("delete_account", admin_key, {"account_id": account_id})
        assert reply.event == "account_deleted", reply.body
    assert account_row(db, victim.account_id).email_address_before_delete == victim.email
    # A banned account can be deleted by an admin.
    rogue = new_user()
    with banned(server, rogue.account_id):
        reply = api.call("delete_account", admin_key, {"account_id": rogue.account_id})
        assert reply.event == "account_deleted"
        assert api.call("ping", rogue.api_key).body == NO_ACCOUNT
    assert account_row(db, rogue.account_id).deleted
    assert api.call("ping", rogue.api_key).body == NO_ACCOUNT
    assert api.call("ping", admin_key).event == "pong"


def test_delete_account_bad_input(api: ApiClient, new_user: MakeUser) -> None:
    user = new_user()
    must_be_specified(api.call("delete_account", user.api_key, {}), "account_id")
    must_be_specified(api.call("delete_account", user.api_key, {"account_id": None}), "account_id")
    for value in (5, [user.account_id], {"a": 1}, True):
        invalid_parameters(
            api.call("delete_account", user.api_key, {"account_id": value}), "account_id"
        )
    invalid_parameters(
        api.call("delete_account", user.api_key, {"account_id": "x" * 100_000}), "account_id"
    )
    reply = api.call("delete_account", user.api_key, {"account_id": "not-a-uuid"})
    assert reply.event == "error"
    reply = api.call("delete_account", user.api_key, {"account_id": user.account_id, "extra": 1})
    assert reply.body == {"error": f"{INVALID}got an unexpected argument 'extra' '"}
    assert api.call("ping", user.api_key).event == "pong"


# --- change_password -------------------------------------------------------------------------


def test_change_password(api: ApiClient, admin_key: str, new_user: MakeUser, db: Database) -> None:
    user = new_user()
    old_hash = account_row(db, user.account_id).password_hash
    token = api.call("user_auth", admin_key, {"account_id": user.account_id, "password": ""})
    SECRETS.add(token["auth_token"])
    assert db.execute(select(auth_tokens).where(auth_tokens.c.account_id == user.account_id))

    fresh = new_password()
    reply = api.call(
        "change_password",
        user.api_key,
        {
            "account_id": user.account_id,
            "old_password": user.password,
            "new_password": fresh,
            "id": "cp",
        },
    )
    assert (reply.status, reply.body) == (200, {"event": "changed_password", "id": "cp"})

    new_hash = account_row(db, user.account_id).password_hash
    assert new_hash != old_hash
    assert password_is(new_hash, fresh) and not password_is(new_hash, user.password)
    # Token sessions end with the password change; API keys keep working.
    assert db.execute(select(auth_tokens).where(auth_tokens.c.account_id == user.account_id)) == []
    assert api.call("ping", user.api_key).event == "pong"

    ok = api.call("user_auth", user.api_key, {"account_id": user.account_id, "password": fresh})
    assert ok.event == "user_auth_token", ok.body
    SECRETS.add(ok["auth_token"])
    old = api.call(
        "user_auth", user.api_key, {"account_id": user.account_id, "password": user.password}
    )
    assert (old.event, old["error"]) == ("error", "incorrect password")
    # The old password cannot be used to change it again either.
    reply = api.call(
        "change_password",
        user.api_key,
        {"account_id": user.account_id, "old_password": user.password, "new_password": "whatever1"},
    )
    assert reply["error"] == "invalid old password"
    assert account_row(db, user.account_id).password_hash == new_hash


def test_change_password_form(api: ApiClient, new_user: MakeUser, db: Database) -> None:
    user = new_user()
    fresh = new_password()
    reply = api.call(
        "change_password",
        user.api_key,
        form={"account_id": user.account_id, "old_password": user.password, "new_password": fresh},
    )
    assert reply.body == {"event": "changed_password", "id": reply["id"]}
    assert password_is(account_row(db, user.account_id).password_hash, fresh)


def test_change_password_wrong_old(api: ApiClient, new_user: MakeUser, db: Database) -> None:
    user = new_user()
    before = account_row(db, user.account_id).password_hash
    for old in ("", "wrong password", user.password.upper(), user.password + " "):
        reply = api.call(
            "change_password",
            user.api_key,
            {"account_id": user.account_id, "old_password": old, "new_password": new_password()},
        )
        assert reply.body == {
            "event": "changed_password",
            "id": reply["id"],
            "error": "invalid old password",
        }
    body = {"account_id": user.account_id, "new_password": new_password()}
    assert api.call("change_password", user.api_key, body)["error"] == "invalid old password"
    assert account_row(db, user.account_id).password_hash == before


def test_change_password_of_another_account(
    api: ApiClient, admin_key: str, new_user: MakeUser, db: Database
) -> None:
    victim, stranger = new_user(), new_user()
    victim_hash = account_row(db, victim.account_id).password_hash
    stranger_hash = account_row(db, stranger.account_id).password_hash
    attempts = [
        (stranger.api_key, victim.password),  # the victim's own password
        (stranger.api_key, stranger.password),  # the caller's own password
        (admin_key, ""),  # admins get no bypass
        (admin_key, victim.password),
    ]
    for key, old in attempts:
        reply = api.call(
            "change_password",
            key,
            {"account_id": victim.account_id, "old_password": old, "new_password": "hijacked!"},
        )
        assert (reply.event, reply["error"]) == ("changed_password", "invalid old password")
    for account_id in ("not-a-uuid", str(uuid.uuid4()), ""):
        reply = api.call(
            "change_password",
            stranger.api_key,
            {
                "account_id": account_id,
                "old_password": stranger.password,
                "new_password": "hijacked!",
            },
        )
        assert reply["error"] == "invalid old password"
    assert account_row(db, victim.account_id).password_hash == victim_hash
    assert account_row(db, stranger.account_id).password_hash == stranger_hash
    assert password_is(victim_hash, victim.password)


@pytest.mark.parametrize("length", [0, 1, 5, 65, 1024])
def test_change_password_new_password_rule(
    api: ApiClient, new_user: MakeUser, db: Database, length: int
) -> None:
    user = new_user()
    before = account_row(db, user.account_id).password_hash
    reply = api.call(
        "change_password",
        user.api_key,
        {
            "account_id": user.account_id,
            "old_password": user.password,
            "new_password": "n" * length,
        },
    )
    assert reply.body == {
        "event": "changed_password",
        "id": reply["id"],
        "error": {"new_password": LENGTH_RULE},
    }
    assert account_row(db, user.account_id).password_hash == before


@pytest.mark.parametrize("length", [6, 64])
def test_change_password_new_password_bounds(
    api: ApiClient, new_user: MakeUser, db: Database, length: int
) -> None:
    user = new_user()
    fresh = password_of_length(length)
    reply = api.call(
        "change_password",
        user.api_key,
        {"account_id": user.account_id, "old_password": user.password, "new_password": fresh},
    )
    assert "error" not in reply.body and reply.event == "changed_password"
    assert password_is(account_row(db, user.account_id).password_hash, fresh)


def test_change_password_bad_input(api: ApiClient, new_user: MakeUser, db: Database) -> None:
    user = new_user()
    before = account_row(db, user.account_id).password_hash
    key = user.api_key
    must_be_specified(api.call("change_password", key, {}), "account_id")
    must_be_specified(
        api.call("change_password", key, {"account_id": user.account_id, "old_password": "x"}),
        "new_password",
    )
    must_be_specified(
        api.call("change_password", key, form={"account_id": user.account_id}), "new_password"
    )
    base = {"account_id": user.account_id, "old_password": user.password, "new_password": "abcdefg"}
    for field, value in [
        ("account_id", 1),
        ("account_id", [user.account_id]),
        ("old_password", 123456),
        ("new_password", 1234567),
        ("new_password", ["abcdefgh"]),
        ("new_password", "x" * 100_000),
        ("account_id", "a" * 1000),
    ]:
        invalid_parameters(api.call("change_password", key, {**base, field: value}), field)
    reply = api.call("change_password", key, {**base, "password": "x"})
    assert reply.body == {"error": f"{INVALID}got an unexpected argument 'password' '"}
    assert account_row(db, user.account_id).password_hash == before


def test_change_password_of_passwordless_account(
    api: ApiClient, server: Server, db: Database
) -> None:
    account_id, key, _ = passwordless(server)
    assert account_row(db, account_id).password_hash is None
    fresh = new_password()
    reply = api.call(
        "change_password",
        key,
        {"account_id": account_id, "old_password": "", "new_password": fresh},
    )
    assert reply.body == {"event": "changed_password", "id": reply["id"]}
    assert password_is(account_row(db, account_id).password_hash, fresh)
    reply = api.call(
        "change_password",
        key,
        {"account_id": account_id, "old_password": "", "new_password": "zzzzzzz"},
    )
    assert reply["error"] == "invalid old password"


# --- change_email_address --------------------------------------------------------------------


def test_change_email_address(
    api: ApiClient, admin_key: str, new_user: MakeUser, db: Database
) -> None:
    user = new_user()
    target = unique_email("Changed").upper()
    reply = change_email(api, user.api_key, user.account_id, target, user.password, id="ce")
    assert (reply.status, reply.body) == (
        200,
        {"event": "changed_email_address", "id": "ce", "error": False},
    )
    row = account_row(db, user.account_id)
    assert row.email_address == target.lower()
    assert password_is(row.password_hash, user.password)
    # The old address is free, the new one taken.
    created(create(api, admin_key, signup(email_address=user.email)))
    reply = create(api, admin_key, signup(email_address=target))
    assert failed(reply) == {"email_address": "This e-mail address is already taken."}
    # Changing to the current address (any case) is a no-op success.
    reply = change_email(api, user.api_key, user.account_id, target.title(), user.password)
    assert reply["error"] is False
    assert account_row(db, user.account_id).email_address == target.lower()


def test_change_email_address_form(api: ApiClient, new_user: MakeUser, db: Database) -> None:
    user = new_user()
    target = unique_email()
    reply = api.call(
        "change_email_address",
        user.api_key,
        form={
            "account_id": user.account_id,
            "old_email_address": "ignored",
            "new_email_address": target,
            "password": user.password,
        },
    )
    assert reply.body == {"event": "changed_email_address", "id": reply["id"], "error": False}
    assert account_row(db, user.account_id).email_address == target


@pytest.mark.parametrize(
    "address", ["", "plain", "two@@x.org", "sp ace@x.org", "x@", "a" * 250 + "@x.org"]
)
def test_change_email_address_invalid(
    api: ApiClient, new_user: MakeUser, db: Database, address: str
) -> None:
    user, other = new_user(), new_user()
    reply = change_email(api, user.api_key, user.account_id, address, user.password)
    assert reply.body == {
        "event": "changed_email_address",
        "id": reply["id"],
        "error": "email_invalid",
    }
    # The address is checked first of all.
    assert change_email(api, user.api_key, other.account_id, address, "")["error"] == (
        "email_invalid"
    )
    assert account_row(db, user.account_id).email_address == user.email


def test_change_email_address_of_another_account(
    api: ApiClient, admin_key: str, new_user: MakeUser, db: Database
) -> None:
    victim, stranger = new_user(), new_user()
    mismatch = "account_id in mesg is not what user is signed in as"
    for key, password in [
        (stranger.api_key, victim.password),
        (stranger.api_key, stranger.password),
        (admin_key, ""),
        (admin_key, victim.password),
    ]:
        reply = change_email(api, key, victim.account_id, unique_email(), password)
        assert (reply.event, reply["error"]) == ("changed_email_address", mismatch)
    for account_id in ("not-a-uuid", str(uuid.uuid4())):
        reply = change_email(api, stranger.api_key, account_id, unique_email(), stranger.password)
        assert reply["error"] == mismatch
    assert account_row(db, victim.account_id).email_address == victim.email
    assert account_row(db, stranger.account_id).email_address == stranger.email


def test_change_email_address_wrong_password(
    api: ApiClient, new_user: MakeUser, db: Database
) -> None:
    user, other = new_user(), new_user()
    for password in ("", "wrong password", other.password, user.password.upper()):
        reply = change_email(api, user.api_key, user.account_id, unique_email(), password)
        assert (reply.event, reply["error"]) == ("changed_email_address", "invalid_password")
    body = {"account_id": user.account_id, "new_email_address": unique_email()}
    reply = api.call("change_email_address", user.api_key, body)
    assert reply["error"] == "invalid_password"
    # The password is checked before whether the address is free.
    reply = change_email(api, user.api_key, user.account_id, other.email, "wrong password")
    assert reply["error"] == "invalid_password"
    assert account_row(db, user.account_id).email_address == user.email


def test_change_email_address_taken(
    api: ApiClient, admin_key: str, new_user: MakeUser, db: Database
) -> None:
    user, other = new_user(), new_user()
    for address in (other.email, other.email.upper()):
        reply = change_email(api, user.api_key, user.account_id, address, user.password)
        assert reply.body == {
            "event": "changed_email_address",
            "id": reply["id"],
            "error": "email_already_taken",
        }
    assert account_row(db, user.account_id).email_address == user.email
    assert account_row(db, other.account_id).email_address == other.email
    # A deleted account's address is free.
    api.call("delete_account", admin_key, {"account_id": other.account_id})
    reply = change_email(api, user.api_key, user.account_id, other.email, user.password)
    assert reply["error"] is False
    assert account_row(db, user.account_id).email_address == other.email


def test_concurrent_changes_to_one_address(
    server: Server, new_user: MakeUser, db: Database
) -> None:
    users = [new_user() for _ in range(6)]
    target = unique_email()
    clients = [ApiClient(server.url) for _ in users]
    try:
        replies = parallel(
            [
                lambda c=client, u=user: change_email(
                    c, u.api_key, u.account_id, target, u.password
                )
                for client, user in zip(clients, users, strict=True)
            ]
        )
    finally:
        for client in clients:
            client.close()
    errors = sorted(str(r["error"]) for r in replies)
    assert errors == ["False"] + ["email_already_taken"] * 5, [r.body for r in replies]
    assert len(accounts_with_email(db, target)) == 1


def test_change_email_address_bad_input(api: ApiClient, new_user: MakeUser, db: Database) -> None:
    user = new_user()
    key = user.api_key
    must_be_specified(api.call("change_email_address", key, {}), "account_id")
    must_be_specified(
        api.call("change_email_address", key, {"account_id": user.account_id}),
        "new_email_address",
    )
    base = {
        "account_id": user.account_id,
        "new_email_address": unique_email(),
        "password": user.password,
    }
    for field, value in [
        ("account_id", 5),
        ("new_email_address", ["a@b.c"]),
        ("new_email_address", 5),
        ("password", 12345678),
        ("old_email_address", {"x": 1}),
        ("new_email_address", "a" * 100_000 + "@example.com"),
        ("password", "p" * 100_000),
    ]:
        invalid_parameters(api.call("change_email_address", key, {**base, field: value}), field)
    reply = api.call("change_email_address", key, {**base, "email_address": "x@y.z"})
    assert reply.body == {"error": f"{INVALID}got an unexpected argument 'email_address' '"}
    assert account_row(db, user.account_id).email_address == user.email


def test_change_email_address_of_passwordless_account(
    api: ApiClient, server: Server, db: Database
) -> None:
    account_id, key, _ = passwordless(server)
    chosen = new_password()
    target = unique_email()
    reply = change_email(api, key, account_id, target, chosen)
    assert reply["error"] is False, reply.body
    row = account_row(db, account_id)
    assert row.email_address == target
    # A password given by a passwordless account becomes its password.
    assert password_is(row.password_hash, chosen)
    reply = change_email(api, key, account_id, unique_email(), "something else")
    assert reply["error"] == "invalid_password"


# --- get_usernames ---------------------------------------------------------------------------


def test_get_usernames(api: ApiClient, new_user: MakeUser) -> None:
    alice = new_user(first_name="Alice", last_name="Äpfel")
    bob = new_user(first_name="Bob", last_name="Builder")
    unknown = str(uuid.uuid4())
    ids = [alice.account_id, bob.account_id, unknown, alice.account_id]
    for key in (alice.api_key, bob.api_key):
        reply = api.call("get_usernames", key, {"account_ids": ids, "id": "u"})
        assert reply.body == {
            "event": "usernames",
            "id": "u",
            "usernames": {
                alice.account_id: {"first_name": "Alice", "last_name": "Äpfel"},
                bob.account_id: {"first_name": "Bob", "last_name": "Builder"},
                unknown: {},
            },
        }
    upper = alice.account_id.upper()
    reply = api.call("get_usernames", bob.api_key, {"account_ids": [upper]})
    assert reply["usernames"] == {upper: {"first_name": "Alice", "last_name": "Äpfel"}}


def test_get_usernames_admin_and_empty(api: ApiClient, admin_key: str, new_user: MakeUser) -> None:
    user = new_user()
    reply = api.call("get_usernames", admin_key, {"account_ids": [user.account_id]})
    assert reply["usernames"] == {
        user.account_id: {"first_name": user.first_name, "last_name": user.last_name}
    }
    reply = api.call("get_usernames", user.api_key, {"account_ids": []})
    assert reply.body == {"event": "usernames", "id": reply["id"], "usernames": {}}


def test_get_usernames_invalid_uuid(api: ApiClient, new_user: MakeUser) -> None:
    user = new_user()
    reply = api.call("get_usernames", user.api_key, {"account_ids": ["bad"], "id": 1})
    assert (reply.status, reply.body) == (
        200,
        {"event": "error", "id": 1, "error": 'invalid uuid bad in account_ids -- ["bad"]'},
    )
    ids = [user.account_id, "", "x-y"]
    reply = api.call("get_usernames", user.api_key, {"account_ids": ids})
    assert reply["error"] == (f'invalid uuid  in account_ids -- ["{user.account_id}","","x-y"]')
    almost = user.account_id[:-1] + "g"
    reply = api.call("get_usernames", user.api_key, {"account_ids": [almost]})
    assert reply["error"] == f'invalid uuid {almost} in account_ids -- ["{almost}"]'
    quoted = 'q"uote'
    reply = api.call("get_usernames", user.api_key, {"account_ids": [quoted]})
    assert reply["error"] == 'invalid uuid q"uote in account_ids -- ["q\\"uote"]'


def test_get_usernames_form_arrays(api: ApiClient, new_user: MakeUser) -> None:
    alice, bob = new_user(), new_user()
    expected = {
        alice.account_id: {"first_name": alice.first_name, "last_name": alice.last_name},
        bob.account_id: {"first_name": bob.first_name, "last_name": bob.last_name},
    }
    pair = [alice.account_id, bob.account_id]
    bodies = [
        f"account_ids[]={pair[0]}&account_ids[]={pair[1]}",
        f"account_ids[0]={pair[0]}&account_ids[1]={pair[1]}",
        f"account_ids={pair[0]}&account_ids={pair[1]}",
        f"account_ids%5B%5D={pair[0]}&account_ids%5B%5D={pair[1]}",
    ]
    for content in bodies:
        reply = api.call(
            "get_usernames",
            alice.api_key,
            content=content.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert reply.event == "usernames", (content, reply.body)
        assert reply["usernames"] == expected
    reply = api.call("get_usernames", alice.api_key, form={"account_ids": pair})
    assert reply["usernames"] == expected
    # One form value is a one-element array.
    reply = api.call("get_usernames", alice.api_key, form={"account_ids": bob.account_id})
    assert reply["usernames"] == {bob.account_id: expected[bob.account_id]}
    reply = api.call("get_usernames", alice.api_key, form={"account_ids[]": ["zz", "yy"]})
    assert reply["error"] == 'invalid uuid zz in account_ids -- ["zz","yy"]'


def test_get_usernames_bad_input(api: ApiClient, new_user: MakeUser) -> None:
    user = new_user()
    key = user.api_key
    must_be_specified(api.call("get_usernames", key, {}), "account_ids")
    must_be_specified(api.call("get_usernames", key, {"account_ids": None}), "account_ids")
    for value in (user.account_id, 5, {"a": user.account_id}, [1, 2], [None], [["x"]], True):
        invalid_parameters(api.call("get_usernames", key, {"account_ids": value}), "account_ids")
    invalid_parameters(
        api.call("get_usernames", key, {"account_ids": ["x" * 100_000]}), "account_ids"
    )
    many = [str(uuid.uuid4()) for _ in range(10_001)]
    invalid_parameters(api.call("get_usernames", key, {"account_ids": many}), "account_ids")
    reply = api.call("get_usernames", key, {"account_ids": [], "names": True})
    assert reply.body == {"error": f"{INVALID}got an unexpected argument 'names' '"}


def test_get_usernames_many_ids(api: ApiClient, new_user: MakeUser) -> None:
    user = new_user()
    ids = [str(uuid.uuid4()) for _ in range(9_999)] + [user.account_id]
    reply = api.call("get_usernames", user.api_key, {"account_ids": ids})
    assert reply.event == "usernames"
    assert len(reply["usernames"]) == len(ids)
    assert reply["usernames"][user.account_id]["first_name"] == user.first_name


# --- banned and deleted callers --------------------------------------------------------------


def every_call(user: User, other: User) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("create_account", signup()),
        ("delete_account", {"account_id": user.account_id}),
        ("delete_account", {"account_id": other.account_id}),
        (
            "change_password",
            {
                "account_id": user.account_id,
                "old_password": user.password,
                "new_password": "banned-new",
            },
        ),
        (
            "change_email_address",
            {
                "account_id": user.account_id,
                "new_email_address": unique_email(),
                "password": user.password,
            },
        ),
        ("get_usernames", {"account_ids": [user.account_id, other.account_id]}),
    ]


def test_banned_caller_is_refused(
    api: ApiClient, new_user: MakeUser, server: Server, db: Database
) -> None:
    user, other = new_user(), new_user()
    before = account_row(db, user.account_id)
    with banned(server, user.account_id):
        for event, body in every_call(user, other):
            for reply in (
                api.call(event, user.api_key, body),
                api.call(event, user.api_key, body, bearer=True),
            ):
                assert reply.status == 400, (event, reply.body)
                assert reply["error"].startswith(BANNED_PREFIX), (event, reply.body)
                assert set(reply.body) == {"error"}
        after = account_row(db, user.account_id)
        assert after.password_hash == before.password_hash
        assert after.email_address == before.email_address and not after.deleted
        assert not account_row(db, other.account_id).deleted
        # A banned account's address stays taken.
        reply = create(api, other.api_key, signup(email_address=user.email))
        assert failed(reply) == {"email_address": "This e-mail address is already taken."}
    assert api.call("ping", user.api_key).event == "pong"


def test_deleted_caller_is_refused(
    api: ApiClient, admin_key: str, new_user: MakeUser, db: Database
) -> None:
    user, other = new_user(), new_user()
    assert api.call("delete_account", admin_key, {"account_id": user.account_id}).event == (
        "account_deleted"
    )
    for event, body in every_call(user, other):
        reply = api.call(event, user.api_key, body)
        assert (reply.status, reply.body) == (400, NO_ACCOUNT), event
        reply = api.call(
            event,
            user.api_key,
            form={k: v for k, v in body.items() if not isinstance(v, list | bool)},
        )
        assert (reply.status, reply.body) == (400, NO_ACCOUNT), event
    assert not account_row(db, other.account_id).deleted
    assert account_row(db, user.account_id).password_hash is None


# --- secrets at rest -------------------------------------------------------------------------


def _files_to_search(server: Server) -> list[Path]:
    roots = [server.data_dir]
    if server.database_url.startswith("sqlite:///"):
        roots.append(Path(server.database_url.removeprefix("sqlite:///")).parent)
    if server.env.get("CALCHUB_RUNTIME_ROOT"):
        roots.append(Path(server.env["CALCHUB_RUNTIME_ROOT"]))
    return [path for root in roots for path in root.rglob("*") if path.is_file()]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:  # a temporary file that went away meanwhile
        return b""


def test_no_plaintext_secrets_at_rest(
    api: ApiClient, admin_key: str, new_user: MakeUser, server: Server, db: Database
) -> None:
    # Exercise every path that handles a secret, so this test stands on its own too.
    user = new_user()
    fresh = new_password()
    reply = api.call(
        "change_password",
        user.api_key,
        {"account_id": user.account_id, "old_password": user.password, "new_password": fresh},
    )
    assert reply.event == "changed_password" and "error" not in reply.body
    created(create(api, user.api_key, signup(get_api_key=True)))
    created(create(api, admin_key, form=signup(agreed_to_terms="true", get_api_key="true")))
    assert change_email(api, user.api_key, user.account_id, unique_email(), fresh)["error"] is False
    doomed = new_user()
    api.call("delete_account", doomed.api_key, {"account_id": doomed.account_id})

    secrets = sorted(SECRETS)
    assert len(secrets) > 10
    for path in _files_to_search(server):
        content = _read(path)
        for secret in secrets:
            assert secret.encode() not in content, f"{secret!r} found in {path}"

    for table in metadata.sorted_tables:
        for row in db.execute(select(table)):
            text = repr(tuple(row))
            for secret in secrets:
                assert secret not in text, f"{secret!r} found in table {table.name}"

    hashes = [r.password_hash for r in db.execute(select(accounts.c.password_hash))]
    assert any(hashes)
    for password_hash in hashes:
        assert password_hash is None or password_hash.startswith("$argon2id$"), password_hash
    # The server's own output does not echo keys or passwords either.
    log = "".join(server.output)
    for secret in secrets:
        assert secret not in log
