"""`get_syncdoc_history` over real HTTP (api-v1.md): every patch of a document, oldest first,
with its author; only for owners, collaborators and admins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from calchub.db.tables import accounts
from tests.api.sync_documents import MakeUser, Team, add_patch, add_syncstring, sha1, team
from tests.harness import ApiClient, Database

__all__ = ["team"]

BASE = datetime(2021, 11, 15, 2, 25, 12, 123000, tzinfo=UTC)


def _at(seconds: int) -> str:
    moment = BASE + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _history(api: ApiClient, key: str, string_id: object, **extra: object) -> object:
    return api.call("get_syncdoc_history", key, {"string_id": string_id, **extra})


def _document(db: Database, team: Team) -> tuple[str, str]:
    """A document edited by the owner, the project itself, the collaborator and an account
    that no longer exists (authors by index: 0, 1, 2, 3)."""
    gone = str(uuid.uuid4())
    authors = [team.owner.account_id, team.project_id, team.collab.account_id, gone]
    string_id = add_syncstring(db, team.project_id, "essay.md", authors)
    add_patch(db, string_id, BASE + timedelta(seconds=2), 2, "[1,2,3]", format=1)
    add_patch(db, string_id, BASE, 0, "[]", snapshot="hello")
    add_patch(db, string_id, BASE + timedelta(seconds=1), 1, "[42]")
    add_patch(db, string_id, BASE + timedelta(seconds=3), 3, "[9]")
    add_patch(db, string_id, BASE + timedelta(seconds=4), 7, "[0]")  # no such author index
    return string_id, gone


def test_history_without_and_with_patches(api: ApiClient, db: Database, team: Team) -> None:
    db.execute(
        update(accounts)
        .where(accounts.c.account_id == team.collab.account_id)
        .values(first_name="Ada", last_name="L" * 100)
    )
    string_id, gone = _document(db, team)
    owner_name = f"{team.owner.first_name} {team.owner.last_name}"
    authors = [
        {"account_id": team.owner.account_id, "user": owner_name},
        {"account_id": team.project_id, "user": "Project: Sync project"},
        # Names are cut to 80 characters, ending with an ellipsis.
        {"account_id": team.collab.account_id, "user": ("Ada " + "L" * 100)[:79] + "…"},
    ]
    reply = _history(api, team.collab.api_key, string_id)
    assert reply.status == 200 and reply.event == "syncdoc_history", reply.body
    history = reply["history"]
    assert [entry["time_utc"] for entry in history] == [_at(s) for s in range(5)]
    assert history[0] == {"time_utc": _at(0), "format": None, **authors[0], "patch_length": 2}
    assert history[1] == {"time_utc": _at(1), "format": None, **authors[1], "patch_length": 4}
    assert history[2] == {"time_utc": _at(2), "format": 1, **authors[2], "patch_length": 7}
    # An author whose account is gone keeps its id; an index past the list has no author.
    assert history[3] == {
        "time_utc": _at(3),
        "format": None,
        "account_id": gone,
        "patch_length": 3,
    }
    assert "account_id" not in history[4] and "user" not in history[4]
    full = _history(api, team.owner.api_key, string_id, patches=True)["history"]
    assert full[0] == {
        "time_utc": _at(0),
        "format": None,
        **authors[0],
        "patch": "[]",
        "snapshot": "hello",
    }
    assert full[2] == {"time_utc": _at(2), "format": 1, **authors[2], "patch": "[1,2,3]"}
    assert all("patch_length" not in entry for entry in full)


def test_history_of_an_unused_document_is_empty(api: ApiClient, db: Database, team: Team) -> None:
    string_id = add_syncstring(db, team.project_id, "empty.md")
    reply = _history(api, team.owner.api_key, string_id)
    assert reply.body == {"event": "syncdoc_history", "id": reply["id"], "history": []}


def test_history_access(
    api: ApiClient, db: Database, admin_key: str, make_user: MakeUser, team: Team
) -> None:
    string_id, _ = _document(db, team)
    assert len(_history(api, admin_key, string_id)["history"]) == 5
    assert len(_history(api, team.collab.api_key, string_id)["history"]) == 5
    for key in (team.viewer.api_key, team.stranger.api_key):
        reply = _history(api, key, string_id)
        assert reply.status == 200 and reply.event == "error"
        assert reply["error"] == (
            f"unable to get syncdoc history for string_id {string_id} -- must have write access"
        )
    unknown = sha1("nothing here")
    assert _history(api, team.owner.api_key, unknown)["error"] == (
        f"unable to get syncdoc history for string_id {unknown} -- no such syncdoc"
    )
    for bad in ("abc", "x" * 41, "../" * 14 + "ab"):
        assert _history(api, team.owner.api_key, bad)["error"] == (
            f"unable to get syncdoc history for string_id {bad} -- "
            "string_id must be specified and valid"
        )


def test_history_message_validation(api: ApiClient, team: Team) -> None:
    reply = api.call("get_syncdoc_history", team.owner.api_key, {})
    assert reply.status == 400
    assert reply.body == {
        "error": "invalid parameters 'Error: misc.defaults -- TypeError: property "
        "'string_id' must be specified: '"
    }
    reply = api.call("get_syncdoc_history", team.owner.api_key, {"string_id": "a", "x": 1})
    assert reply.status == 400 and "unexpected argument 'x'" in reply["error"]
    # Form bodies work too (patches coerced to a boolean).
    string_id = sha1("form")
    reply = api.call(
        "get_syncdoc_history", team.owner.api_key, form={"string_id": string_id, "patches": "false"}
    )
    assert reply["error"].endswith("-- no such syncdoc")
