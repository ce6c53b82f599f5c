"""user_auth: tokens that sign a browser in as an account, over real HTTP."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from calchub.db.tables import (
    accounts,
    auth_tokens,
    central_log,
    user_auth_failures,
)
from tests.api.accounts.helpers import (
    BASE62,
    LOCKED,
    MakeUser,
    ago,
    assert_error,
    auth_ok,
    delete_user,
    make_admin,
    sha256,
)
from tests.api.expect import assert_invalid, missing, unexpected
from tests.conftest import User
from tests.harness import ApiClient, Database, Server

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


def test_concurrent_guesses_are_verified_one_at_a_time(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    """16 guesses sent at once, the right one among them: at most one is checked, the rest
    are locked out, so the right password cannot win a race against the lockout."""
    target, attacker = make_user(), make_user()
    guesses = [f"wrong-{n}" for n in range(15)] + [target.password]

    def guess(password: str) -> Any:
        return api.call(
            "user_auth", attacker.api_key, {"account_id": target.account_id, "password": password}
        )

    with ThreadPoolExecutor(max_workers=len(guesses)) as pool:
        replies = list(pool.map(guess, guesses))
    verdicts = [reply.get("error") or reply.event for reply in replies]
    assert verdicts.count(LOCKED) >= len(guesses) - 1, verdicts
    checked = [v for v in verdicts if v != LOCKED]
    # Whichever guess was checked first, every other one was refused unseen.
    assert len(checked) <= 1, verdicts
    rows = db.execute(
        select(user_auth_failures).where(user_auth_failures.c.target_id == target.account_id)
    )
    assert len(rows) == (0 if checked == ["user_auth_token"] else 1)


def test_many_callers_cannot_keep_guessing_one_account(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    target = make_user()
    callers = [make_user() for _ in range(21)]
    answers = [
        api.call(
            "user_auth", c.api_key, {"account_id": target.account_id, "password": "nope-nope"}
        ).get("error")
        for c in callers
    ]
    assert answers[:20] == ["incorrect password"] * 20
    assert answers[20] == "too many failed attempts for this account; try again later"
    # The account's owner is not locked out of their own account by strangers.
    reply = api.call(
        "user_auth", target.api_key, {"account_id": target.account_id, "password": target.password}
    )
    assert reply.event == "user_auth_token", reply.body
    failures = user_auth_failures.c
    db.execute(delete(user_auth_failures).where(failures.target_id == target.account_id))
