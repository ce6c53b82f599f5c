"""public_get_directory_listing over real HTTP: what a public listing shows, its order and
pages, and every way of reaching a folder that is not public."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from calchub.db.tables import projects
from calchub.runtime import MAX_LISTING_ENTRIES
from tests.api.project_files import create_project, new_id, publish, sh, write
from tests.conftest import User
from tests.harness import ApiClient, Database, Reply

# Modification times set in the project, in seconds.
T1, T2, T3 = 1600000000, 1650000000, 1700000000.5


@pytest.fixture(scope="module")
def owner(api: ApiClient, admin_key: str) -> User:
    reply = api.call(
        "create_account",
        admin_key,
        {
            "first_name": "Listing",
            "last_name": "Owner",
            "email_address": f"listing-{new_id()[:8]}@example.com",
            "password": "correct horse",
            "agreed_to_terms": True,
            "get_api_key": True,
        },
    )
    assert reply.event == "account_created", reply.body
    return User(reply["account_id"], reply["api_key"], "", "", "", "")


@pytest.fixture(scope="module")
def shared(api: ApiClient, owner: User, db: Database) -> str:
    """`pub/` and `one.txt` public, `pub2/` disabled, the rest private; links in `pub/`
    lead to private places, outside the home, and back into `pub/`."""
    project_id = create_project(api, owner.api_key)
    for path, text in (
        ("pub/a.txt", "aaa"),
        ("pub/b.txt", "b"),
        ("pub/.hidden", "hh"),
        ("pub/sub/c.txt", "cccc"),
        ("pubx/x.txt", "private x"),
        ("pub2/d.txt", "disabled d"),
        ("one.txt", "just this"),
        ("private.txt", "private"),
        ("privdir/secret.txt", "secret"),
    ):
        write(api, owner.api_key, project_id, path, text)
    sh(
        api,
        owner.api_key,
        project_id,
        f"touch -d @{T1} pub/b.txt pub/.hidden && touch -d @{T2} pub/sub "
        f"&& touch -d @{T3} pub/a.txt "
        "&& cd pub && ln -s ../privdir to_private && ln -s ../private.txt to_secret "
        "&& ln -s /etc to_etc && ln -s sub to_sub "
        "&& touch -h -d @1500000000 to_private to_secret to_etc to_sub",
    )
    publish(db, project_id, "pub")
    publish(db, project_id, "one.txt")
    publish(db, project_id, "pub2", disabled=True)
    return project_id


def listing(api: ApiClient, key: str | None, project_id: str, path: str, **opts: Any) -> Reply:
    return api.call(
        "public_get_directory_listing", key, {"project_id": project_id, "path": path, **opts}
    )


def files(reply: Reply) -> list[dict[str, Any]]:
    assert reply.event == "public_directory_listing", reply.body
    return list(reply["result"]["files"])


def names(reply: Reply) -> list[str]:
    return [entry["name"] for entry in files(reply)]


PUB_ENTRIES = [
    {"name": "a.txt", "size": 3, "mtime": T3},
    {"name": "b.txt", "size": 1, "mtime": T1},
    {"name": "sub", "isdir": True, "mtime": T2},
    {"name": "to_etc", "isdir": True, "mtime": 1500000000},
    {"name": "to_private", "isdir": True, "mtime": 1500000000},
    # A link to a file is listed with the link's own size, never the target's.
    {"name": "to_secret", "size": len("../private.txt"), "mtime": 1500000000},
    {"name": "to_sub", "isdir": True, "mtime": 1500000000},
]


def test_public_folder_with_any_or_blank_key(
    api: ApiClient, shared: str, make_user: Callable[..., User]
) -> None:
    for key in (make_user().api_key, ""):
        reply = listing(api, key, shared, "pub", id=5)
        assert reply.body == {
            "event": "public_directory_listing",
            "id": 5,
            "result": {"files": PUB_ENTRIES},
        }
    (entry,) = files(listing(api, "", shared, "pub/sub"))
    assert entry["name"] == "c.txt" and entry["size"] == 4 and "isdir" not in entry
    # The same folder spelt otherwise, and a folder through a link that stays inside pub/.
    for path in ("pub/", "pub/.", "./pub"):
        assert files(listing(api, "", shared, path)) == PUB_ENTRIES, path
    assert names(listing(api, "", shared, "pub/to_sub")) == ["c.txt"]


def test_hidden_time_start_and_limit(api: ApiClient, shared: str) -> None:
    assert names(listing(api, "", shared, "pub", hidden=True))[0] == ".hidden"
    assert ".hidden" not in names(listing(api, "", shared, "pub", hidden=False))
    assert names(listing(api, "", shared, "pub", hidden=True, time=True))[:4] == [
        "a.txt",
        "sub",
        ".hidden",
        "b.txt",
    ]
    newest = names(listing(api, "", shared, "pub", time=True))
    # Newest first; equal times by name.
    assert newest == ["a.txt", "sub", "b.txt", "to_etc", "to_private", "to_secret", "to_sub"]
    first = listing(api, "", shared, "pub", time=True, start=0, limit=2)
    assert first["result"] == {"files": files(first), "more": True}
    assert names(first) == ["a.txt", "sub"]
    assert names(listing(api, "", shared, "pub", time=True, start=2, limit=2)) == [
        "b.txt",
        "to_etc",
    ]
    last = listing(api, "", shared, "pub", start=5, limit=2)
    assert names(last) == ["to_secret", "to_sub"] and "more" not in last["result"]
    assert names(listing(api, "", shared, "pub", start=6, limit=-1)) == ["to_sub"]
    assert names(listing(api, "", shared, "pub", start=7)) == []
    assert names(listing(api, "", shared, "pub", start=100)) == []
    none = listing(api, "", shared, "pub", limit=0)
    assert none["result"] == {"files": [], "more": True}


def test_form_body(api: ApiClient, shared: str) -> None:
    form = {"project_id": shared, "path": "pub", "hidden": "true", "time": "1", "limit": "1"}
    reply = api.call("public_get_directory_listing", "", form=form)
    assert reply["result"] == {"files": [{"name": "a.txt", "size": 3, "mtime": T3}], "more": True}


def test_folders_above_public_paths_show_only_the_way_there(api: ApiClient, shared: str) -> None:
    assert names(listing(api, "", shared, "")) == ["one.txt", "pub"]
    assert names(listing(api, "", shared, ".", hidden=True)) == ["one.txt", "pub"]


def test_not_public(api: ApiClient, shared: str, make_user: Callable[..., User]) -> None:
    key = make_user().api_key
    for path in (
        "privdir",
        "pubx",  # a prefix of the name is not a parent folder
        "pub2",  # disabled
        "pub/..",
        "pub/../privdir",
        "pub/sub/../../privdir",
        "pub/to_private",  # a link to a private folder
        "pub/to_private/",
        "pub/to_etc",  # a link out of the home
        "pub/to_etc/ssl",
        "/etc",
        f"/projects/{shared}/pub",
        "..",
        "../..",
        "/",
    ):
        reply = listing(api, key, shared, path)
        assert reply.body == {"event": "error", "id": reply["id"], "error": "not_public"}, path
    for project_id in (new_id(), "not-a-uuid", shared + "x"):
        assert listing(api, "", project_id, "pub")["error"] == "not_public"


def test_link_to_a_private_file_shows_nothing_of_it(api: ApiClient, shared: str) -> None:
    reply = listing(api, "", shared, "pub/to_secret")
    assert reply["error"] == f"ENOTDIR: not a directory, scandir '/projects/{shared}/pub/to_secret'"


def test_missing_folder_and_file_instead_of_folder(api: ApiClient, shared: str) -> None:
    home = f"/projects/{shared}"
    assert listing(api, "", shared, "pub/nope")["error"] == (
        f"ENOENT: no such file or directory, scandir '{home}/pub/nope'"
    )
    assert listing(api, "", shared, "pub/a.txt")["error"] == (
        f"ENOTDIR: not a directory, scandir '{home}/pub/a.txt'"
    )
    assert listing(api, "", shared, "one.txt")["error"] == (
        f"ENOTDIR: not a directory, scandir '{home}/one.txt'"
    )


@pytest.mark.parametrize(
    ("name", "value", "low"),
    [("start", -1, 0), ("start", 10**30, 0), ("limit", -2, -1), ("limit", 10**6, -1)],
)
def test_out_of_range_start_and_limit(
    api: ApiClient, shared: str, name: str, value: int, low: int
) -> None:
    reply = listing(api, "", shared, "pub", **{name: value})
    error = f"ILLEGAL VALUE {name}='{value}' (must be in [{low}, {MAX_LISTING_ENTRIES}])"
    assert reply.body == {"event": "error", "id": reply["id"], "error": error}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hidden": "yes"}, "hidden"),
        ({"time": 1}, "time"),
        ({"start": "3"}, "start"),
        ({"limit": 1.5}, "limit"),
        ({"path": 7}, "path"),
        ({"project_id": ["a"]}, "project_id"),
    ],
)
def test_wrong_types(api: ApiClient, shared: str, body: dict[str, Any], field: str) -> None:
    reply = api.call(
        "public_get_directory_listing", "", {"project_id": shared, "path": "pub", **body}
    )
    assert reply.status == 400
    assert reply["error"].startswith(
        f"invalid parameters 'Error: misc.defaults -- TypeError: property '{field}' is invalid"
    ), reply.body


def test_missing_fields_and_bad_key(api: ApiClient, shared: str) -> None:
    reply = api.call("public_get_directory_listing", "", {"project_id": shared})
    assert reply.status == 400 and "property 'path' must be specified" in reply["error"]
    reply = api.call("public_get_directory_listing", "sk_wrong", {"project_id": shared, "path": ""})
    assert reply.status == 400


def test_public_listings_never_start_the_project(api: ApiClient, owner: User, db: Database) -> None:
    reply = api.call("create_project", owner.api_key, {"title": "cold", "start": False})
    project_id = str(reply["project_id"])
    publish(db, project_id, "pub")

    def run_state() -> str:
        rows = db.execute(select(projects.c.run_state).where(projects.c.project_id == project_id))
        return str(rows[0].run_state)

    assert listing(api, "", project_id, "private")["error"] == "not_public"
    assert run_state() == "opened"
    # A public path is listed where it lies: the project is not started for it.
    assert listing(api, "", project_id, "pub")["error"].startswith("ENOENT")
    assert names(listing(api, "", project_id, "")) == []
    assert run_state() == "opened"


def test_deleted_project_is_not_public(api: ApiClient, owner: User, db: Database) -> None:
    project_id = create_project(api, owner.api_key)
    write(api, owner.api_key, project_id, "pub/a.txt", "a")
    publish(db, project_id, "")
    assert names(listing(api, "", project_id, "pub")) == ["a.txt"]
    db.execute(update(projects).where(projects.c.project_id == project_id).values(deleted=True))
    assert listing(api, "", project_id, "pub")["error"] == "not_public"
