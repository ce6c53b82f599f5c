"""Hubs keep API-key answers and site settings in memory; every change that can alter one must
still refuse (or change) the very next request on every hub sharing the database, whoever
made the change: the other hub, the admin command line, or a plain SQL statement."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import update

from calchub.db.tables import accounts, api_keys
from tests.conftest import User
from tests.harness import ApiClient, Database, Server

WRONG_KEY = "No account found. Is your API key wrong?"
ADMIN_QUERY = {"query": {"site_settings": [{"name": None, "value": None}]}}


@pytest.fixture(scope="module")
def hubs(server: Server, second_hub: Server) -> Iterator[list[ApiClient]]:
    clients = [ApiClient(server.url), ApiClient(second_hub.url)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def _pongs(hubs: list[ApiClient], key: str) -> list[bool]:
    return [hub.call("ping", key).event == "pong" for hub in hubs]


def _warm(hubs: list[ApiClient], key: str) -> None:
    # Several answers in a row on each hub: from here on they could come from memory.
    for _ in range(3):
        assert _pongs(hubs, key) == [True, True]


def _key_ids(server: Server, account_id: str) -> list[int]:
    return [
        k["id"] for k in server.cli_json("admin", "api-key", "list", "--account-id", account_id)
    ]


def test_a_key_deleted_by_the_command_line_is_refused_at_once_everywhere(
    server: Server, hubs: list[ApiClient], user: User
) -> None:
    _warm(hubs, user.api_key)
    for key_id in _key_ids(server, user.account_id):
        server.cli("admin", "api-key", "delete", str(key_id))
    for hub in hubs:
        assert hub.call("ping", user.api_key).body == {"error": WRONG_KEY}


def test_a_ban_and_its_lifting_take_effect_on_the_next_request_everywhere(
    server: Server, hubs: list[ApiClient], user: User
) -> None:
    _warm(hubs, user.api_key)
    server.cli("admin", "ban", user.account_id)
    for hub in hubs:
        assert "BANNED" in hub.call("ping", user.api_key).body["error"]
    server.cli("admin", "unban", user.account_id)
    assert _pongs(hubs, user.api_key) == [True, True]


def test_losing_admin_rights_is_seen_by_the_next_request_on_the_other_hub(
    hubs: list[ApiClient], user: User, db: Database
) -> None:
    db.execute(
        update(accounts).where(accounts.c.account_id == user.account_id).values(groups=["admin"])
    )
    for _ in range(3):
        for hub in hubs:
            assert hub.call("query", user.api_key, ADMIN_QUERY).event == "query"
    db.execute(update(accounts).where(accounts.c.account_id == user.account_id).values(groups=[]))
    for hub in hubs:
        reply = hub.call("query", user.api_key, ADMIN_QUERY)
        assert reply.body["error"] == "FATAL: user must be an admin"


def test_a_deleted_account_is_refused_on_the_next_request_everywhere(
    hubs: list[ApiClient], user: User, db: Database
) -> None:
    _warm(hubs, user.api_key)
    db.execute(
        update(accounts).where(accounts.c.account_id == user.account_id).values(deleted=True)
    )
    for hub in hubs:
        assert hub.call("ping", user.api_key).body == {"error": WRONG_KEY}


def test_an_expiry_moved_into_the_past_is_seen_at_once(
    hubs: list[ApiClient], user: User, db: Database
) -> None:
    _warm(hubs, user.api_key)
    db.execute(
        update(api_keys)
        .where(api_keys.c.account_id == user.account_id)
        .values(expire=api_keys.c.created)
    )
    for hub in hubs:
        assert hub.call("ping", user.api_key).body == {"error": WRONG_KEY}


def test_recording_a_keys_last_use_does_not_disturb_other_keys(
    hubs: list[ApiClient], user: User, db: Database
) -> None:
    # Writes that cannot change an answer (last use, names) keep every key working.
    _warm(hubs, user.api_key)
    db.execute(
        update(api_keys).where(api_keys.c.account_id == user.account_id).values(name="renamed")
    )
    db.execute(
        update(accounts).where(accounts.c.account_id == user.account_id).values(first_name="Ada")
    )
    assert _pongs(hubs, user.api_key) == [True, True]


def test_a_changed_site_setting_is_used_by_the_next_request_everywhere(
    server: Server, hubs: list[ApiClient], user: User
) -> None:
    # The help address appears in a banned caller's error; it is read from the settings.
    server.cli("admin", "ban", user.account_id)
    try:
        for address in ("first-desk@example.org", "second-desk@example.org"):
            server.cli("admin", "setting", "help_email", address)
            for _ in range(2):
                for hub in hubs:
                    assert address in hub.call("ping", user.api_key).body["error"]
    finally:
        server.cli("admin", "setting", "help_email", "--reset")
        server.cli("admin", "unban", user.account_id)
