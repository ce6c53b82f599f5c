"""unlink_passport over real HTTP."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from calchub.db.tables import (
    accounts,
)
from tests.api.accounts.helpers import (
    MakeUser,
    delete_user,
)
from tests.api.expect import NO_ACCOUNT_KEY, assert_invalid, missing, unexpected
from tests.harness import ApiClient, Database, Server

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
