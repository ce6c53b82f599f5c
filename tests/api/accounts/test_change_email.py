"""change_email_address over real HTTP."""

from __future__ import annotations

import uuid

import pytest

from tests.api.accounts.helpers import (
    INVALID,
    MakeUser,
    account_row,
    accounts_with_email,
    change_email,
    create,
    created,
    failed,
    invalid_parameters,
    must_be_specified,
    new_password,
    parallel,
    password_is,
    passwordless,
    signup,
    unique_email,
)
from tests.harness import ApiClient, Database, Server

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
