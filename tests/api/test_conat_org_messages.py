"""org.* and messages.* through `POST /api/conat/hub`, over real HTTP: arguments, answers
and CoCalc's `Error: ...` refusals."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from tests.api.bridge import hub
from tests.conftest import User
from tests.harness import Server

MakeUser = Callable[..., User]
NOT_ALLOWED = "Error: user must be an admin of the organization or site-admin"


def test_org_over_the_bridge(server: Server, admin_key: str, make_user: MakeUser) -> None:
    boss, member, outsider = make_user(), make_user(), make_user()
    name = f"o{uuid.uuid4().hex[:12]}"
    assert hub(server, boss.api_key, "org.create", {"name": name}) == {
        "error": "Error: only admins may create organizations"
    }
    org_id = hub(server, admin_key, "org.create", {"name": name})
    assert isinstance(org_id, str) and uuid.UUID(org_id)
    assert hub(server, admin_key, "org.create", {"name": name}) == {
        "error": f"Error: name {name} is already used by some account or organization"
    }
    assert hub(server, admin_key, "org.addAdmin", {"name": name, "user": boss.email}) is None
    assert hub(server, admin_key, "org.addUser", {"name": name, "user": member.account_id}) is None
    assert hub(server, boss.api_key, "org.set", {"name": name, "title": "T"}) is None
    got = hub(server, boss.api_key, "org.get", {"name": name})
    assert got == {
        "name": name,
        "title": "T",
        "description": None,
        "link": None,
        "email_address": None,
        "admin_account_ids": [boss.account_id],
    }
    # The caller is the key's account, whatever account_id the client sends.
    forged = {"name": name, "account_id": boss.account_id}
    assert hub(server, outsider.api_key, "org.get", forged) == {"error": NOT_ALLOWED}
    assert hub(server, outsider.api_key, "org.getAll") == {"error": "Error: must be a site admin"}
    assert {"name": name, "title": "T", "admin_account_ids": [boss.account_id]} in hub(
        server, admin_key, "org.getAll"
    )
    users = hub(server, boss.api_key, "org.getUsers", {"name": name})
    assert {u["account_id"] for u in users} == {boss.account_id, member.account_id}
    (mine,) = [u for u in users if u["account_id"] == member.account_id]
    assert mine["email_address"] == member.email
    new = hub(
        server,
        boss.api_key,
        "org.createUser",
        {"name": name, "email": f"n{uuid.uuid4().hex[:8]}@example.com", "firstName": "N"},
    )
    assert isinstance(new, str) and uuid.UUID(new)
    link = hub(server, boss.api_key, "org.createToken", {"user": new})
    assert set(link) == {"token", "url"} and link["url"].endswith(link["token"])
    assert hub(server, boss.api_key, "org.expireToken", {"token": link["token"]}) is None
    assert hub(server, outsider.api_key, "org.createToken", {"user": new}) == {"error": NOT_ALLOWED}
    assert (
        hub(server, boss.api_key, "org.message", {"name": name, "subject": "S", "body": "B"})
        is None
    )
    (received,) = hub(server, member.api_key, "messages.get", {})
    assert received["subject"] == "S" and received["from_id"] == boss.account_id
    assert hub(server, boss.api_key, "org.removeUser", {"name": name, "user": boss.email}) == {
        "error": "Error: admin cannot be removed from org; first remove them from being an admin"
    }
    assert hub(server, boss.api_key, "org.removeUser", {"name": name, "user": member.email}) is None
    assert hub(server, admin_key, "org.removeAdmin", {"name": name, "user": boss.email}) is None
    assert hub(server, boss.api_key, "org.get", {"name": name}) == {"error": NOT_ALLOWED}
    # Bad arguments.
    assert hub(server, admin_key, "org.get", {}) == {"error": "Error: name must be specified"}
    assert hub(server, admin_key, "org.get", {"name": 5}) == {
        "error": "Error: name must be a string"
    }
    assert hub(server, admin_key, "org.get", {"name": "nope-x"}) == {
        "error": "Error: no org named 'nope-x'"
    }
    assert hub(server, admin_key, "org.create", {"name": "x" * 1000})["error"].startswith(
        "Error: name must be 1 to 39"
    )
    assert hub(server, admin_key, "org.addUser", {"name": name, "user": "a@b"}) == {
        "error": "Error: cannot find user 'a@b'"
    }


def test_messages_over_the_bridge(server: Server, make_user: MakeUser) -> None:
    ada, bob = make_user(), make_user()
    sent = hub(
        server,
        ada.api_key,
        "messages.send",
        {"to_ids": [bob.email, "nobody@example.com"], "subject": "Hello", "body": "**hi**"},
    )
    assert isinstance(sent, int)
    (got,) = hub(server, bob.api_key, "messages.get", {"type": "received"})
    assert set(got) == {
        "id",
        "subject",
        "body",
        "from_id",
        "to_ids",
        "sent",
        "thread_id",
        "read",
        "saved",
        "deleted",
    }
    assert got["id"] == sent and got["to_ids"] == [bob.account_id]
    assert got["sent"].endswith("Z")
    (new,) = hub(
        server, bob.api_key, "messages.get", {"type": "new", "cutoff": "2000-01-01T00:00:00Z"}
    )
    assert len(new) == 7
    assert hub(server, bob.api_key, "messages.get", {"type": "liked"}) == []
    reply = hub(
        server,
        bob.api_key,
        "messages.send",
        {"to_ids": [ada.account_id], "subject": "Re", "body": "b", "reply_id": sent},
    )
    (back,) = hub(server, ada.api_key, "messages.get", {})
    assert back["id"] == reply and back["thread_id"] == sent
    assert (
        hub(
            server,
            ada.api_key,
            "messages.send",
            {"to_ids": ["nobody@example.com"], "subject": "s", "body": "b"},
        )
        is None
    )
    ghost = str(uuid.uuid4())
    assert hub(
        server, ada.api_key, "messages.send", {"to_ids": [ghost], "subject": "s", "body": "b"}
    ) == {"error": f"Error: invalid account_id -- {ghost}"}
    assert hub(server, ada.api_key, "messages.get", {"limit": 501}) == {
        "error": "Error: limit must be at most 500"
    }
    for bad in (
        {"to_ids": "x", "subject": "s", "body": "b"},
        {"to_ids": [bob.account_id], "subject": 1, "body": "b"},
        {"to_ids": [bob.account_id], "subject": "s"},
        {"to_ids": [bob.account_id], "subject": "s", "body": "b", "reply_id": "1"},
    ):
        assert "error" in hub(server, ada.api_key, "messages.send", bad)
    huge = {"to_ids": [bob.account_id], "subject": "s", "body": "b", "reply_id": 10**30}
    assert isinstance(hub(server, ada.api_key, "messages.send", huge), int)
    for bad_get in (
        {"limit": "x"},
        {"offset": 10**30},
        {"cutoff": "soon"},
        {"cutoff": 5},
        {"type": "all"},
        {"limit": -1},
    ):
        assert "error" in hub(server, ada.api_key, "messages.get", bad_get), bad_get
