"""Public paths over real HTTP: public_get_text_file (blank key allowed) and
copy_public_path_between_projects, with the public-path rule."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from sqlalchemy import select

from calchub.db.tables import copy_paths
from tests.api.expect import NO_ACCOUNT_KEY
from tests.api.project_files import (
    add_member,
    create_project,
    new_id,
    publish,
    read,
    sh,
    write,
)
from tests.conftest import User
from tests.harness import ApiClient, Database


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    return make_user()


@pytest.fixture
def shared(api: ApiClient, owner: User, db: Database) -> str:
    """A project with `pub/` and `one.txt` public, `pub2/` disabled, the rest private."""
    project_id = create_project(api, owner.api_key)
    for path, text in (
        ("pub/a.txt", "public a"),
        ("pub/sub/b.txt", "public b"),
        ("pubx/c.txt", "private c"),
        ("pub2/d.txt", "disabled d"),
        ("one.txt", "just this"),
        ("private.txt", "private"),
    ):
        write(api, owner.api_key, project_id, path, text)
    publish(db, project_id, "pub")
    publish(db, project_id, "one.txt")
    publish(db, project_id, "pub2", disabled=True)
    return project_id


def _get(api: ApiClient, key: str | None, project_id: str, path: str) -> object:
    return api.call("public_get_text_file", key, {"project_id": project_id, "path": path})


def _not_public(project_id: str, path: str) -> str:
    return f"path '{path}' of project with id '{project_id}' is not public"


def test_public_file_read_with_any_or_blank_key(
    api: ApiClient, shared: str, make_user: Callable[..., User]
) -> None:
    stranger = make_user()
    for key in (stranger.api_key, ""):
        reply = api.call(
            "public_get_text_file", key, {"project_id": shared, "path": "pub/sub/b.txt", "id": 7}
        )
        assert reply.body == {"event": "public_text_file_contents", "id": 7, "data": "public b"}
    reply = api.call("public_get_text_file", "", {"project_id": shared, "path": "one.txt"})
    assert reply["data"] == "just this"


def test_private_disabled_and_tricky_paths_are_refused(
    api: ApiClient, shared: str, make_user: Callable[..., User]
) -> None:
    key = make_user().api_key
    for path in (
        "private.txt",
        "pubx/c.txt",  # a prefix of the name is not a parent folder
        "pub2/d.txt",  # disabled
        "pub/../private.txt",
        "pub/sub/../../private.txt",
        "/etc/passwd",
        f"/projects/{shared}/private.txt",
        "",
    ):
        reply = api.call("public_get_text_file", key, {"project_id": shared, "path": path})
        assert reply.body == {
            "event": "error",
            "id": reply["id"],
            "error": _not_public(shared, path),
        }, path
    missing_project = new_id()
    reply = api.call("public_get_text_file", "", {"project_id": missing_project, "path": "a"})
    assert reply["error"] == _not_public(missing_project, "a")


def test_whole_project_public(api: ApiClient, owner: User, db: Database) -> None:
    project_id = create_project(api, owner.api_key)
    write(api, owner.api_key, project_id, "deep/x.txt", "x")
    publish(db, project_id, "")
    assert (
        api.call("public_get_text_file", "", {"project_id": project_id, "path": "deep/x.txt"})[
            "data"
        ]
        == "x"
    )
    reply = api.call("public_get_text_file", "", {"project_id": project_id, "path": "nope.txt"})
    assert reply.event == "error" and "ENOENT" in reply["error"]


def test_public_read_still_needs_a_valid_key_if_one_is_given(api: ApiClient, shared: str) -> None:
    reply = api.call("public_get_text_file", "sk_wrong", {"project_id": shared, "path": "one.txt"})
    assert reply.status == 400 and reply.body == NO_ACCOUNT_KEY
    # Other endpoints never accept a blank key.
    reply = api.call("copy_path_status", "", {"src_project_id": shared})
    assert reply.status == 400 and reply.body == NO_ACCOUNT_KEY


def test_copy_public_path(
    api: ApiClient, shared: str, make_user: Callable[..., User], db: Database
) -> None:
    reader = make_user()
    mine = create_project(api, reader.api_key)
    body = {"src_project_id": shared, "src_path": "pub", "target_project_id": mine}
    reply = api.call("copy_public_path_between_projects", reader.api_key, body)
    assert reply.body == {"event": "success", "id": reply["id"]}
    assert read(api, reader.api_key, mine, "pub/sub/b.txt") == "public b"
    assert read(api, reader.api_key, mine, "pubx/c.txt") is None
    body = {**body, "src_path": "pub/a.txt", "target_path": "got/"}
    reply = api.call("copy_public_path_between_projects", reader.api_key, body)
    assert reply.event == "success", reply.body
    assert read(api, reader.api_key, mine, "got/a.txt") == "public a"
    listed = api.call(
        "copy_path_status", reader.api_key, {"target_project_id": mine, "pending": False}
    )["data"]
    assert len(listed) == 2
    rows = db.execute(select(copy_paths.c.public).where(copy_paths.c.target_project_id == mine))
    assert [r.public for r in rows] == [True, True]


def test_copy_public_path_refusals(
    api: ApiClient, shared: str, owner: User, make_user: Callable[..., User], db: Database
) -> None:
    reader, viewer = make_user(), make_user()
    mine = create_project(api, reader.api_key)
    for path in ("private.txt", "pub2", "pub/../private.txt", "pubx"):
        body = {"src_project_id": shared, "src_path": path, "target_project_id": mine}
        reply = api.call("copy_public_path_between_projects", reader.api_key, body)
        assert reply["error"] == _not_public(shared, path), path
    # Write access to the target is needed; read access to the source is not.
    other = create_project(api, owner.api_key)
    add_member(db, other, viewer.account_id, "viewer")
    for key, target in ((reader.api_key, other), (viewer.api_key, other), (reader.api_key, "x")):
        body = {"src_project_id": shared, "src_path": "pub", "target_project_id": target}
        reply = api.call("copy_public_path_between_projects", key, body)
        assert reply["error"] == f"user must have write access to target project {target}"
    assert read(api, owner.api_key, other, "pub/a.txt") is None


def test_publishing_through_query(
    api: ApiClient, owner: User, make_user: Callable[..., User]
) -> None:
    """The way clients share: a public_paths row set with `query`, then read by anyone."""
    project_id = create_project(api, owner.api_key)
    write(api, owner.api_key, project_id, "A1/doc1.txt", "Handout #1 text")
    stranger = make_user()
    query = {"public_paths": {"project_id": project_id, "path": "A1/", "description": "Handout"}}
    # Only someone with write access to the project may publish its paths.
    reply = api.call("query", stranger.api_key, {"query": query})
    assert reply.event == "error", reply.body
    assert _get(api, "", project_id, "A1/doc1.txt").body["error"] == _not_public(
        project_id, "A1/doc1.txt"
    )
    reply = api.call("query", owner.api_key, {"query": query})
    assert reply.event == "query", reply.body
    reply = api.call("public_get_text_file", "", {"project_id": project_id, "path": "A1/doc1.txt"})
    assert reply["data"] == "Handout #1 text"
    # Disabling it through query withdraws it again.
    query["public_paths"]["disabled"] = True
    assert api.call("query", owner.api_key, {"query": query}).event == "query"
    reply = api.call("public_get_text_file", "", {"project_id": project_id, "path": "A1/doc1.txt"})
    assert reply["error"] == _not_public(project_id, "A1/doc1.txt")


# --- links: a public path is public only if what it leads to is -----------------------------

SECRET = "TOP-SECRET-c41e"

LINKS = (
    f"mkdir -p pub/sub private other && echo '{SECRET}' > private.txt "
    f"&& echo '{SECRET} in a folder' > private/secret.txt && echo plain > pub/a.txt "
    "&& echo elsewhere > other/x.txt && echo linked > one.txt "
    "&& ln -s ../private.txt pub/to_secret && ln -s ../private pub/to_private "
    "&& ln -s ../one.txt pub/to_one && ln -s ../other pub/to_other "
    "&& ln -s ../other/x.txt pub/to_other_file && ln -s /etc/passwd pub/to_passwd "
    "&& ln -s to_hop pub/to_chain && ln -s sub/hop pub/to_hop "
    "&& ln -s ../../private.txt pub/sub/hop && ln -s a.txt pub/to_a && ln -s to_a pub/to_to_a "
    "&& head -c 21000000 /dev/zero > private/big.bin && ln -s ../private/big.bin pub/to_big"
)


@pytest.fixture
def linked(api: ApiClient, owner: User, db: Database) -> str:
    """`pub/`, `other/` and `one.txt` public; `pub/` full of links, some to private places."""
    project_id = create_project(api, owner.api_key)
    sh(api, owner.api_key, project_id, LINKS)
    for path in ("pub", "other", "one.txt"):
        publish(db, project_id, path)
    return project_id


def _secret_free(reply: object) -> None:
    assert SECRET not in json.dumps(getattr(reply, "body", reply))


def test_links_to_private_places_are_not_public(
    api: ApiClient, linked: str, make_user: Callable[..., User]
) -> None:
    key = make_user().api_key
    for path in (
        "pub/to_secret",  # a link to a private file
        "pub/to_private/secret.txt",  # inside a linked private folder
        "pub/to_private",  # the linked folder itself: not even that it is one
        "pub/to_big",  # nor the size of what it points at
        "pub/to_chain",  # three links in a row
        "pub/to_passwd",  # out of the home
    ):
        for caller in (key, ""):
            reply = _get(api, caller, linked, path)
            _secret_free(reply)
            assert reply.body == {
                "event": "error",
                "id": reply["id"],
                "error": _not_public(linked, path),
            }, path


def test_links_to_public_places_are_read(
    api: ApiClient, linked: str, make_user: Callable[..., User]
) -> None:
    key = make_user().api_key
    for path, text in (
        ("pub/a.txt", "plain\n"),
        ("pub/to_a", "plain\n"),
        ("pub/to_to_a", "plain\n"),  # a chain that stays public
        ("pub/to_one", "linked\n"),  # a public file
        ("pub/to_other/x.txt", "elsewhere\n"),  # into another public path
        ("pub/to_other_file", "elsewhere\n"),
    ):
        reply = _get(api, key, linked, path)
        assert reply.body == {"event": "public_text_file_contents", "id": reply["id"], "data": text}


def test_a_whole_public_project_still_keeps_links_out_of_it(
    api: ApiClient, owner: User, db: Database
) -> None:
    project_id = create_project(api, owner.api_key)
    sh(api, owner.api_key, project_id, "ln -s /etc/passwd passwd && echo in > in.txt")
    publish(db, project_id, "")
    assert _get(api, "", project_id, "passwd").body["error"] == _not_public(project_id, "passwd")
    assert "root:" not in json.dumps(_get(api, "", project_id, "passwd").body)
    assert _get(api, "", project_id, "in.txt").body["data"] == "in\n"


def test_members_still_read_through_links(api: ApiClient, owner: User, linked: str) -> None:
    assert read(api, owner.api_key, linked, "pub/to_secret") == f"{SECRET}\n"
    assert read(api, owner.api_key, linked, "pub/to_private/secret.txt") == (
        f"{SECRET} in a folder\n"
    )


def _copy_public(api: ApiClient, key: str, src: str, path: str, target: str, to: str) -> object:
    body = {"src_project_id": src, "src_path": path, "target_project_id": target, "target_path": to}
    return api.call("copy_public_path_between_projects", key, body)


def _everything(api: ApiClient, key: str, project_id: str) -> str:
    """Every name and readable byte in the project, links followed."""
    return sh(
        api, key, project_id, "find -L . 2>/dev/null; find -L . -type f -exec cat {} + 2>/dev/null"
    )


def test_copies_through_links_to_private_places_are_refused(
    api: ApiClient, linked: str, make_user: Callable[..., User]
) -> None:
    reader = make_user()
    mine = create_project(api, reader.api_key)
    for path in ("pub/to_private", "pub/to_private/", "pub/to_private/secret.txt"):
        reply = _copy_public(api, reader.api_key, linked, path, mine, "stolen")
        _secret_free(reply)
        assert reply.body == {
            "event": "error",
            "id": reply["id"],
            "error": _not_public(linked, path),
        }, path
    failed = api.call(
        "copy_path_status", reader.api_key, {"target_project_id": mine, "failed": True}
    )["data"]
    assert sorted(op["error"] for op in failed) == sorted(
        _not_public(linked, p)
        for p in ("pub/to_private", "pub/to_private/", "pub/to_private/secret.txt")
    )
    assert SECRET not in _everything(api, reader.api_key, mine)


def test_public_copies_keep_links_as_links(
    api: ApiClient, linked: str, make_user: Callable[..., User]
) -> None:
    reader = make_user()
    mine = create_project(api, reader.api_key)
    for path, to in (
        ("pub", "whole"),
        ("pub/to_secret", "one_link"),  # copied as the link it is
        ("pub/to_passwd", "passwd_link"),
        ("pub/to_other", "via_link"),  # a linked folder in another public path
    ):
        reply = _copy_public(api, reader.api_key, linked, path, mine, to)
        assert reply.body == {"event": "success", "id": reply["id"]}, path
    links = sh(api, reader.api_key, mine, "readlink whole/to_secret one_link passwd_link")
    assert links.split() == ["../private.txt", "../private.txt", "/etc/passwd"]
    assert read(api, reader.api_key, mine, "via_link/x.txt") == "elsewhere\n"
    assert read(api, reader.api_key, mine, "whole/a.txt") == "plain\n"
    assert read(api, reader.api_key, mine, "whole/to_secret") is None
    assert SECRET not in _everything(api, reader.api_key, mine)
