"""change_password over real HTTP."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from calchub.db.tables import (
    auth_tokens,
)
from tests.api.accounts.helpers import (
    INVALID,
    LENGTH_RULE,
    SECRETS,
    MakeUser,
    account_row,
    invalid_parameters,
    must_be_specified,
    new_password,
    password_is,
    password_of_length,
    passwordless,
)
from tests.harness import ApiClient, Database, Server

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
