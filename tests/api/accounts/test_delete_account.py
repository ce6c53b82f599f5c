"""delete_account over real HTTP."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from calchub.db.tables import (
    auth_tokens,
)
from tests.api.accounts.helpers import (
    INVALID,
    NO_ACCOUNT,
    SECRETS,
    MakeUser,
    account_row,
    banned,
    create,
    created,
    failed,
    invalid_parameters,
    key_count,
    must_be_specified,
    signup,
)
from tests.harness import ApiClient, Database, Server

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
