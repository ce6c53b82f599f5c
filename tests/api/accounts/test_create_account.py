"""create_account over real HTTP, with the site settings that govern it."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import delete, insert, select

from calchub.db.tables import (
    registration_tokens,
)
from tests.api.accounts.helpers import (
    INVALID,
    LENGTH_RULE,
    SECRETS,
    MakeUser,
    account_row,
    accounts_with_email,
    change_email,
    create,
    created,
    failed,
    fresh_ip,
    invalid_parameters,
    key_count,
    mail_to,
    parallel,
    password_is,
    password_of_length,
    plain_text,
    signup,
    site_setting,
    unique_email,
    verify_link,
)
from tests.harness import ApiClient, Database, Reply, Server
from tests.smtp_sink import SmtpSink
from tests.web.helpers import verify_through

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
    assert verify_through(wrong).status_code == 400
    # Opening the link only asks.
    assert api.http.get(link).status_code == 200
    assert account_row(db, account_id).email_address_verified in (None, {})
    upper = urlencode({"email": address.upper(), "token": token})
    response = verify_through(f"{server.url}/auth/verify?{upper}")
    assert response.status_code == 200, response.text
    assert "Email address verified" in response.text
    verified = account_row(db, account_id).email_address_verified
    assert set(verified) == {address}

    # The link is single-use.
    second = verify_through(link)
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
    assert verify_through(link).status_code == 400
    swapped = link.replace(
        body["email_address"].replace("@", "%40"), new_address.replace("@", "%40")
    )
    assert swapped != link
    assert verify_through(swapped).status_code == 400
    assert account_row(db, moved).email_address_verified in (None, {})
    # A deleted account's link is void too.
    body = signup()
    doomed = created(create(api, admin_key, body))
    link = verify_link(smtp, server, body["email_address"])
    assert api.call("delete_account", admin_key, {"account_id": doomed}).event == "account_deleted"
    assert verify_through(link).status_code == 400
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
