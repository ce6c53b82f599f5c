"""API keys in CoCalc's current format: names, expiry, project scope, and how each edge
finds them (Bearer and Basic), next to the v1 keys that keep working."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.conftest import User
from tests.harness import ApiClient, Database, Server

CURRENT_KEY = re.compile(r"sk-[0-9A-Za-z]{16}[0-9A-Za-z]{6}")
WRONG_KEY = "No account found. Is your API key wrong?"
ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _decode_id(suffix: str) -> int:
    value = 0
    for char in suffix:
        value = value * 62 + ID_ALPHABET.index(char)
    return value


def _new_key(server: Server, account_id: str, *options: str) -> dict[str, object]:
    created = server.cli_json("admin", "api-key", "create", account_id, *options)
    assert isinstance(created, dict)
    return created


def _works(api: ApiClient, key: str, *, bearer: bool = False) -> bool:
    reply = api.call("ping", key, bearer=bearer)
    if reply.event == "pong":
        return True
    assert reply.body == {"error": WRONG_KEY}, reply.body
    return False


def _listed(server: Server, account_id: str) -> dict[int, dict[str, object]]:
    keys = server.cli_json("admin", "api-key", "list", "--account-id", account_id)
    return {k["id"]: k for k in keys}


def _project(api: ApiClient, user: User) -> str:
    reply = api.call("create_project", user.api_key, {"title": "keys", "start": False})
    assert reply.event == "project_created", reply.body
    return str(reply["project_id"])


def test_new_keys_have_cocalcs_format_and_are_stored_hashed(
    api: ApiClient, server: Server, user: User, db: Database
) -> None:
    created = _new_key(server, user.account_id, "--name", "laptop")
    key = str(created["api_key"])
    assert CURRENT_KEY.fullmatch(key), key
    assert _decode_id(key[-6:]) == created["id"]
    listed = _listed(server, user.account_id)[int(str(created["id"]))]
    assert listed["name"] == "laptop"
    assert listed["trunc"] == key[:3] + "..." + key[-6:]
    assert listed["expire"] is None and listed["project_id"] is None
    stored = db.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": created["id"]})
    assert key not in repr(stored) and key[3:19] not in repr(stored)

    assert _works(api, key) and _works(api, key, bearer=True)
    # The account's v1 key keeps working beside it.
    assert _works(api, user.api_key) and _works(api, user.api_key, bearer=True)


def test_several_keys_each_deleted_alone(api: ApiClient, server: Server, user: User) -> None:
    first = str(_new_key(server, user.account_id)["api_key"])
    second = _new_key(server, user.account_id, "--name", "ci")
    assert _works(api, first) and _works(api, str(second["api_key"]))
    deleted = server.cli_json("admin", "api-key", "delete", str(second["id"]))
    assert deleted == {"deleted": second["id"]}
    assert not _works(api, str(second["api_key"]))
    assert _works(api, first) and _works(api, user.api_key)
    failed = server.cli("admin", "api-key", "delete", str(second["id"]), check=False)
    assert failed.returncode != 0 and str(second["id"]) in failed.stderr


def test_expired_key_is_refused_at_once_and_removed(
    api: ApiClient, server: Server, user: User
) -> None:
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = _new_key(server, user.account_id, "--expire", future)
    key, key_id = str(created["api_key"]), int(str(created["id"]))
    assert _works(api, key)
    assert _listed(server, user.account_id)[key_id]["expire"] is not None

    # Clearing the expiry, then setting one in the past: refused on the very next request.
    server.cli_json("admin", "api-key", "edit", str(key_id), "--expire", "never")
    assert _listed(server, user.account_id)[key_id]["expire"] is None
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    edited = server.cli_json("admin", "api-key", "edit", str(key_id), "--expire", past)
    assert edited["id"] == key_id
    assert not _works(api, key, bearer=True)
    assert key_id not in _listed(server, user.account_id)
    assert _works(api, user.api_key)


def test_rename(server: Server, user: User) -> None:
    created = _new_key(server, user.account_id, "--name", "old")
    edited = server.cli_json("admin", "api-key", "edit", str(created["id"]), "--name", "new")
    assert edited["name"] == "new"
    failed = server.cli("admin", "api-key", "edit", "999999999", "--name", "x", check=False)
    assert failed.returncode != 0 and "999999999" in failed.stderr


@pytest.mark.parametrize(
    "key",
    [
        "sk-",
        "sk-short",
        "sk-" + "a" * 22,
        "sk-" + "a" * 16 + "zzzzzz",
        "sk_" + "b" * 24,
        "pk-" + "a" * 22,
        "sk-" + "a" * 5000,
        "sk-aaaaaaaaaaaaaaaa00000!",
    ],
)
def test_bad_keys_are_refused(api: ApiClient, key: str) -> None:
    assert not _works(api, key)
    assert not _works(api, key, bearer=True)


def test_tampered_key_with_a_real_id_is_refused(api: ApiClient, server: Server, user: User) -> None:
    key = str(_new_key(server, user.account_id)["api_key"])
    forged = "sk-" + ("A" if key[3] != "A" else "B") + key[4:]
    assert not _works(api, forged)
    assert _works(api, key)


def test_create_refusals(server: Server, user: User, make_user: Callable[..., User]) -> None:
    stranger = make_user()
    project = str(uuid.uuid4())
    for args, needle in [
        ((str(uuid.uuid4()),), "no account"),
        ((user.account_id, "--expire", "tomorrow"), "ISO 8601"),
        ((user.account_id, "--project", "not-a-uuid"), "invalid project_id"),
        ((user.account_id, "--project", project), "must be collaborator"),
        ((stranger.account_id, "--name", "x" * 201), "at most 200"),
    ]:
        failed = server.cli("admin", "api-key", "create", *args, check=False)
        assert failed.returncode != 0 and needle in failed.stderr, (args, failed.stderr)


def test_project_key_acts_as_its_project_only(
    api: ApiClient, server: Server, user: User, make_user: Callable[..., User]
) -> None:
    project = _project(api, user)
    created = _new_key(server, user.account_id, "--project", project, "--name", "proj")
    key = str(created["api_key"])
    assert CURRENT_KEY.fullmatch(key)
    assert _listed(server, user.account_id)[int(str(created["id"]))]["project_id"] == project
    assert _works(api, key)
    # No account stands behind it: account operations are refused.
    reply = api.call("query", key, {"query": {"accounts": {"account_id": None}}})
    assert reply.event == "error", reply.body
    reply = api.call("create_project", key, {"title": "from a project key"})
    assert reply.event == "error", reply.body


def test_project_key_dies_with_its_creators_membership(
    api: ApiClient, server: Server, make_user: Callable[..., User]
) -> None:
    owner, helper = make_user(), make_user()
    project = _project(api, owner)
    reply = api.call(
        "add_collaborator", owner.api_key, {"project_id": project, "account_id": helper.account_id}
    )
    assert reply.event == "success", reply.body
    created = _new_key(server, helper.account_id, "--project", project)
    key = str(created["api_key"])
    assert _works(api, key)
    reply = api.call(
        "remove_collaborator",
        owner.api_key,
        {"project_id": project, "account_id": helper.account_id},
    )
    assert reply.event == "success", reply.body
    assert not _works(api, key)
    assert int(str(created["id"])) not in _listed(server, helper.account_id)
    assert _works(api, helper.api_key)
