"""Banned and deleted callers are refused everywhere."""

from __future__ import annotations

from typing import Any

from tests.api.accounts.helpers import (
    BANNED_PREFIX,
    NO_ACCOUNT,
    MakeUser,
    account_row,
    banned,
    create,
    failed,
    signup,
    unique_email,
)
from tests.conftest import User
from tests.harness import ApiClient, Database, Server

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
