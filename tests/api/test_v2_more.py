"""REST v2 projects/get, get-one, update, restore, collaborators/list, change-user-type and
copy-path-status over real HTTP: answers, CoCalc's refusal texts, bad input, other users'
ids, admins and project keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.api.bridge import new_key
from tests.api.test_v2 import error, ok, v2
from tests.conftest import User
from tests.harness import ApiClient, Server
from tests.smtp_sink import SmtpSink
from tests.web.helpers import browser_client, link_in, mail_to, sign_in, sign_up, verify_through

MakeUser = Callable[..., User]


@contextmanager
def projects_of(server: Server, user: User, *titles: str) -> Iterator[list[str]]:
    """New projects of `user`, deleted afterwards whatever happens."""
    made: list[str] = []
    try:
        for title in titles:
            made.append(ok(server, user.api_key, "projects/create", {"title": title})["project_id"])
        yield made
    finally:
        for project_id in made:
            v2(server, user.api_key, "projects/delete", {"project_id": project_id})


def test_get_lists_own_projects_newest_first(
    server: Server, make_user: MakeUser, admin_key: str
) -> None:
    alice, bob = make_user(), make_user()
    with projects_of(server, alice, "first", "second") as (first, second):
        listed = ok(server, alice.api_key, "projects/get", {})
        assert listed == [
            {"project_id": second, "title": "second", "description": "", "name": None},
            {"project_id": first, "title": "first", "description": "", "name": None},
        ]
        assert ok(server, alice.api_key, "projects/get", {"limit": 1}) == listed[:1]
        assert ok(server, alice.api_key, "projects/get", {"limit": 0}) == []
        assert ok(server, bob.api_key, "projects/get", {}) == []
        # Only admins may name an account, even one's own.
        refusal = "The `account_id` field may only be specified by account administrators."
        assert error(server, bob.api_key, "projects/get", {"account_id": alice.account_id}) == (
            refusal
        )
        assert error(server, alice.api_key, "projects/get", {"account_id": alice.account_id}) == (
            refusal
        )
        as_admin = ok(server, admin_key, "projects/get", {"account_id": alice.account_id})
        assert [p["project_id"] for p in as_admin] == [second, first]
        assert error(server, admin_key, "projects/get", {"account_id": "x"}) == (
            "account_id must be a valid uuid"
        )
        # Deleted projects are left out; restored ones come back.
        ok(server, alice.api_key, "projects/delete", {"project_id": first})
        assert [p["project_id"] for p in ok(server, alice.api_key, "projects/get")] == [second]
        ok(server, alice.api_key, "projects/restore", {"project_id": first})
        restored = [p["project_id"] for p in ok(server, alice.api_key, "projects/get")]
        assert restored == [first, second]
    assert error(server, None, "projects/get", {}) == "Must be signed in."
    for bad in ({"limit": "many"}, {"limit": -1}, {"limit": 10**12}, {"account_id": 5}):
        assert error(server, alice.api_key, "projects/get", bad)


def test_get_one_returns_latest_or_makes_one(server: Server, make_user: MakeUser) -> None:
    carol = make_user()
    made = ok(server, carol.api_key, "projects/get-one", {})
    try:
        assert made["title"] == "Untitled Project"
        assert uuid.UUID(made["project_id"])
        assert ok(server, carol.api_key, "projects/get-one", {}) == made
    finally:
        ok(server, carol.api_key, "projects/delete", {"project_id": made["project_id"]})
    assert error(server, None, "projects/get-one", {}) == "Must be signed in."


def test_update(server: Server, make_user: MakeUser, admin_key: str) -> None:
    owner, stranger = make_user(), make_user()
    with projects_of(server, owner, "old") as (project,):
        change = {"project_id": project, "title": "new", "description": "about", "name": "nm"}
        assert ok(server, owner.api_key, "projects/update", change) == {"status": "ok"}
        # Empty fields are left as they are.
        ok(server, owner.api_key, "projects/update", {"project_id": project, "title": ""})
        assert ok(server, owner.api_key, "projects/get") == [
            {"project_id": project, "title": "new", "description": "about", "name": "nm"}
        ]
        assert error(server, stranger.api_key, "projects/update", {**change, "title": "x"})
        assert error(
            server,
            stranger.api_key,
            "projects/update",
            {"project_id": project, "title": "x", "account_id": owner.account_id},
        )
        admin_change = {"project_id": project, "title": "by admin", "account_id": owner.account_id}
        assert ok(server, admin_key, "projects/update", admin_change) == {"status": "ok"}
        assert ok(server, owner.api_key, "projects/get")[0]["title"] == "by admin"
        assert error(server, owner.api_key, "projects/update", {"title": "x"}) == (
            "project_id must be a valid uuid"
        )
        assert error(server, owner.api_key, "projects/update", {**change, "title": 5})
        assert error(server, owner.api_key, "projects/update", {**change, "title": "t" * 5000})
        assert error(server, None, "projects/update", change) == "must be signed in"


def test_restore(server: Server, make_user: MakeUser, admin_key: str) -> None:
    owner, stranger = make_user(), make_user()
    with projects_of(server, owner, "gone") as (project,):
        body = {"project_id": project}
        ok(server, owner.api_key, "projects/delete", body)
        refusal = "must be an owner to restore a project"
        assert error(server, stranger.api_key, "projects/restore", body) == refusal
        missing = {"project_id": str(uuid.uuid4())}
        assert error(server, owner.api_key, "projects/restore", missing) == refusal
        assert ok(server, admin_key, "projects/restore", body) == {"status": "ok"}
        ok(server, owner.api_key, "projects/delete", body)
        assert ok(server, owner.api_key, "projects/restore", body) == {"status": "ok"}
        assert [p["project_id"] for p in ok(server, owner.api_key, "projects/get")] == [project]
        assert error(server, owner.api_key, "projects/restore", {"project_id": "x"}) == (
            "project_id must be a valid uuid"
        )
        assert error(server, None, "projects/restore", body) == "must be signed in"


def test_collaborators_list_and_change_user_type(
    server: Server, make_user: MakeUser, admin_key: str
) -> None:
    owner = make_user(first_name="Olga", last_name="Owner")
    helper = make_user(first_name="Hal", last_name="Helper")
    stranger = make_user()
    with projects_of(server, owner, "team") as (project,):
        member = {"project_id": project, "account_id": helper.account_id}
        ok(server, owner.api_key, "projects/collaborators/add", member)
        listed = ok(server, owner.api_key, "projects/collaborators/list", {"project_id": project})
        assert sorted(listed, key=lambda m: m["first_name"]) == [
            {"account_id": helper.account_id, "first_name": "Hal", "last_name": "Helper"},
            {"account_id": owner.account_id, "first_name": "Olga", "last_name": "Owner"},
        ]
        body = {"project_id": project}
        assert ok(server, helper.api_key, "projects/collaborators/list", body) == listed
        assert ok(server, stranger.api_key, "projects/collaborators/list", body) == []
        assert len(ok(server, admin_key, "projects/collaborators/list", body)) == 2
        project_key = new_key(server, owner.account_id, "--project", project)
        assert len(ok(server, project_key, "projects/collaborators/list", body)) == 2
        assert error(server, owner.api_key, "projects/collaborators/list", {"project_id": 1})

        change = "projects/collaborators/change-user-type"
        promote = {"project_id": project, "target_account_id": helper.account_id}
        assert error(server, helper.api_key, change, {**promote, "new_group": "owner"}) == (
            "Only project owners can change user types"
        )
        assert error(server, stranger.api_key, change, {**promote, "new_group": "owner"}) == (
            "Only project owners can change user types"
        )
        assert error(server, owner.api_key, change, {**promote, "new_group": "viewer"}) == (
            "New group must be either 'owner' or 'collaborator'"
        )
        assert (
            error(
                server,
                owner.api_key,
                change,
                {**promote, "target_account_id": stranger.account_id, "new_group": "owner"},
            )
            == "Target user is not a member of this project"
        )
        last = {"project_id": project, "target_account_id": owner.account_id}
        assert error(server, owner.api_key, change, {**last, "new_group": "collaborator"}) == (
            "Cannot change the last owner to collaborator. At least one owner is required."
        )
        assert ok(server, owner.api_key, change, {**promote, "new_group": "owner"}) == {
            "status": "ok"
        }
        # Now two owners: the first may step down, and the new owner decides.
        assert ok(server, helper.api_key, change, {**last, "new_group": "collaborator"}) == {
            "status": "ok"
        }
        assert error(server, owner.api_key, change, {**promote, "new_group": "collaborator"}) == (
            "Only project owners can change user types"
        )
        assert error(server, owner.api_key, change, {**promote, "target_account_id": "x"}) == (
            "target_account_id must be a valid uuid"
        )
        assert error(server, owner.api_key, change, {**promote, "new_group": 7})
        assert error(server, None, change, {**promote, "new_group": "owner"}) == (
            "must be signed in"
        )
        # Give it back so that the owner can delete the project afterwards.
        ok(server, helper.api_key, change, {**last, "new_group": "owner"})


def test_copy_path_status(server: Server, make_user: MakeUser) -> None:
    owner, stranger = make_user(), make_user()
    with projects_of(server, owner, "copies") as (project,):
        write = {"project_id": project, "path": "src/a.txt", "content": "x"}
        ok(server, owner.api_key, "projects/write-text-file", write)
        order = {
            "src_project_id": project,
            "path": "src",
            "target_project_id": project,
            "target_path": "dst",
            "wait_until_done": False,
        }
        copy_id = ok(server, owner.api_key, "projects/copy-path", order)["copy_id"]
        status = ok(server, owner.api_key, "projects/copy-path-status", {"copy_id": copy_id})
        assert set(status) == {"started", "finished", "copy_error"}
        assert error(
            server, stranger.api_key, "projects/copy-path-status", {"copy_id": copy_id}
        ) == ("must be a collaborator on the target project")
        for bad in (str(uuid.uuid4()), "x", "../../etc"):
            assert error(server, owner.api_key, "projects/copy-path-status", {"copy_id": bad}) == (
                "copy_id not found"
            )
        assert error(server, owner.api_key, "projects/copy-path-status", {"copy_id": 5})
        assert error(server, None, "projects/copy-path-status", {"copy_id": copy_id}) == (
            "must be signed in"
        )


# --- accounts ------------------------------------------------------------------------------


def test_profile(server: Server, make_user: MakeUser, admin_key: str) -> None:
    ada, other = make_user(first_name="Ada", last_name="Prof"), make_user()
    public = ok(server, other.api_key, "accounts/profile", {"account_id": ada.account_id})
    assert public == {
        "profile": {
            "account_id": ada.account_id,
            "first_name": "Ada",
            "last_name": "Prof",
            "image": None,
            "color": None,
            "name": None,
        }
    }
    # Anyone who knows the id sees the public profile, and only that.
    assert ok(server, None, "accounts/profile", {"account_id": ada.account_id}) == public
    own = ok(server, ada.api_key, "accounts/profile", {})["profile"]
    assert own == {
        **public["profile"],
        "is_admin": False,
        "is_partner": False,
        "is_anonymous": False,
        "email_address": ada.email,
    }
    assert ok(server, admin_key, "accounts/profile", {})["profile"]["is_admin"] is True
    assert ok(server, None, "accounts/profile", {}) == {"profile": {}}
    missing = str(uuid.uuid4())
    assert error(server, ada.api_key, "accounts/profile", {"account_id": missing}) == (
        f"no account with id {missing}"
    )
    assert error(server, ada.api_key, "accounts/profile", {"account_id": "../x"}) == (
        "no account with id ../x"
    )
    assert error(server, ada.api_key, "accounts/profile", {"account_id": 5})
    assert error(server, ada.api_key, "accounts/profile", {"account_id": "x" * 5000})


def test_set_name(server: Server, make_user: MakeUser, admin_key: str) -> None:
    bea, other = make_user(), make_user()
    change = {"first_name": "Bea", "last_name": "Named"}
    assert ok(server, bea.api_key, "accounts/set-name", change) == {"status": "success"}
    # Empty fields are left as they are.
    ok(server, bea.api_key, "accounts/set-name", {"first_name": "", "last_name": "Again"})
    mine = ok(server, bea.api_key, "accounts/profile", {})["profile"]
    assert (mine["first_name"], mine["last_name"]) == ("Bea", "Again")
    refusal = "The `account_id` field may only be specified by account administrators."
    assert (
        error(server, other.api_key, "accounts/set-name", {**change, "account_id": bea.account_id})
        == refusal
    )
    by_admin = {"first_name": "Set", "last_name": "ByAdmin", "account_id": bea.account_id}
    assert ok(server, admin_key, "accounts/set-name", by_admin) == {"status": "success"}
    theirs = ok(server, other.api_key, "accounts/profile", {"account_id": bea.account_id})
    assert (theirs["profile"]["first_name"], theirs["profile"]["last_name"]) == (
        "Set",
        "ByAdmin",
    )
    assert error(server, None, "accounts/set-name", change) == (
        "Must be signed in to edit account name."
    )
    assert error(server, bea.api_key, "accounts/set-name", {"first_name": 5})
    assert error(server, bea.api_key, "accounts/set-name", {"first_name": "x" * 5000})
    assert "control characters" in error(
        server, bea.api_key, "accounts/set-name", {"first_name": "a\x00b"}
    )


def test_get_email_address(server: Server, make_user: MakeUser, admin_key: str) -> None:
    cy, other = make_user(), make_user()
    body = {"account_id": cy.account_id}
    assert ok(server, admin_key, "accounts/get-email-address", body) == {"email_address": cy.email}
    refusal = "you must be an admin or partner to get the email address of any account_id"
    assert error(server, other.api_key, "accounts/get-email-address", body) == refusal
    assert error(server, cy.api_key, "accounts/get-email-address", body) == refusal
    assert error(server, None, "accounts/get-email-address", body) == refusal
    unknown = {"account_id": str(uuid.uuid4())}
    assert ok(server, admin_key, "accounts/get-email-address", unknown) == {}
    assert ok(server, admin_key, "accounts/get-email-address", {"account_id": "x"}) == {}
    assert error(server, admin_key, "accounts/get-email-address", {"account_id": 5})


def test_sign_out_all_ends_web_sessions(server: Server, api: ApiClient, admin_key: str) -> None:
    account = sign_up(api, admin_key)
    key = new_key(server, account.account_id)
    with browser_client(server) as browser:
        assert sign_in(browser, account.email, account.password).status_code == 303
        assert browser.get("/app/keys").status_code == 200
        # Without `all` only the calling browser's own session would end; a key has none.
        assert ok(server, key, "accounts/sign-out", {}) == {"status": "success"}
        assert browser.get("/app/keys").status_code == 200
        assert ok(server, key, "accounts/sign-out", {"all": True}) == {"status": "success"}
        after = browser.get("/app/keys")
        assert after.status_code == 303 and after.headers["location"].startswith("/app/sign-in")
    # The key is no session: it still works.
    assert ok(server, key, "accounts/profile", {})["profile"]["account_id"] == account.account_id
    assert ok(server, None, "accounts/sign-out", {"all": True}) == {"status": "success"}
    assert error(server, key, "accounts/sign-out", {"all": "maybe"})


def test_send_verification_email(server: Server, make_user: MakeUser, smtp: SmtpSink) -> None:
    dee = make_user()
    before = len(mail_to(smtp, dee.email, count=0, timeout=0))
    assert ok(server, dee.api_key, "accounts/send-verification-email", {}) == {"status": "success"}
    received = mail_to(smtp, dee.email, count=before + 1)
    assert len(received) == before + 1
    link = link_in(received[-1], r"\S*/auth/verify\?\S+")
    assert "token=" in link
    done = verify_through(link)
    assert done.status_code == 200 and "Email address verified" in done.text
    assert error(server, None, "accounts/send-verification-email", {}) == "must be signed in"


def test_auth_routes_point_to_the_web_pages(server: Server, user: User) -> None:
    """auth/* is a browser's cookie session: the answer says where that happens instead."""
    for path in ("auth/sign-in", "auth/sign-up", "auth/password-reset", "auth/anything"):
        for key in (None, user.api_key):
            status, answer = v2(server, key, path, {"email": user.email, "password": "x"})
            assert status == 200, answer
            assert answer == {
                "error": "signing in and out is done on this server's web pages "
                "(/app/sign-in); the API authenticates with API keys"
            }


def test_set_email_address(server: Server, make_user: MakeUser) -> None:
    eve, other = make_user(), make_user()
    new = f"new-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email_address": new, "password": eve.password}
    assert error(server, eve.api_key, "accounts/set-email-address", {**body, "password": "no"}) == (
        "password is incorrect"
    )
    assert error(
        server, eve.api_key, "accounts/set-email-address", {**body, "email_address": "nope"}
    ) == ("email address is not valid")
    assert error(
        server, eve.api_key, "accounts/set-email-address", {**body, "email_address": other.email}
    ) == (f'The email address "{other.email}" is already in use by another account.')
    assert ok(server, eve.api_key, "accounts/set-email-address", body) == {"status": "success"}
    assert ok(server, eve.api_key, "accounts/profile", {})["profile"]["email_address"] == new
    assert error(server, eve.api_key, "accounts/set-email-address", {**body, "password": 5})
    assert error(server, None, "accounts/set-email-address", body) == "must be signed in"


def test_set_password(server: Server, make_user: MakeUser) -> None:
    fay = make_user()
    new = "a much better password 42"
    body = {"currentPassword": fay.password, "newPassword": new}
    assert error(
        server, fay.api_key, "accounts/set-password", {**body, "currentPassword": "wrong"}
    ) == ("Current password is incorrect.")
    assert error(server, fay.api_key, "accounts/set-password", {**body, "newPassword": "x"})
    assert ok(server, fay.api_key, "accounts/set-password", body) == {"status": "success"}
    # The old password is no longer the current one.
    assert error(server, fay.api_key, "accounts/set-password", body) == (
        "Current password is incorrect."
    )
    assert ok(
        server, fay.api_key, "accounts/set-password", {"currentPassword": new, "newPassword": new}
    ) == {"status": "success"}
    assert error(server, fay.api_key, "accounts/set-password", {"newPassword": ["x"]})
    assert error(server, None, "accounts/set-password", body) == "must be signed in"


def test_delete_account(server: Server, make_user: MakeUser) -> None:
    gus, other = make_user(), make_user()
    assert error(server, None, "accounts/delete", {}) == "must be signed in"
    assert ok(server, gus.api_key, "accounts/delete", {"account_id": other.account_id}) == {
        "status": "success"
    }
    # Only the caller's own account goes, whatever the body says.
    assert ok(server, other.api_key, "accounts/profile", {})["profile"]["account_id"] == (
        other.account_id
    )
    assert ok(server, gus.api_key, "accounts/profile", {}) == {"profile": {}}
    assert error(server, gus.api_key, "accounts/delete", {}) == "must be signed in"


def test_file_access(server: Server, make_user: MakeUser) -> None:
    hal, other = make_user(), make_user()
    with projects_of(server, hal, "worked on") as (project,):
        opened = {
            "project_id": project,
            "path": "notes.md",
            "users": {hal.account_id: {"open": "{now}"}},
        }
        ok(server, hal.api_key, "user-query", {"query": {"file_use": opened}})
        expected = {"files": [{"path": "notes.md", "project_id": project, "title": "worked on"}]}
        assert ok(server, hal.api_key, "file-access", {}) == expected
        assert ok(server, hal.api_key, "file-access", {"interval": "3 hours"}) == expected
        assert ok(server, hal.api_key, "file-access", {"interval": "2 Weeks"}) == expected
        assert ok(server, hal.api_key, "file-access", {"interval": "999999999 years"}) == expected
        # Only the caller's own activity.
        assert ok(server, other.api_key, "file-access", {}) == {"files": []}
        assert ok(server, None, "file-access", {}) == {"files": []}
        for bad in ("soon", "1 fortnight", "1; drop table projects", "-1 day", "1e9 days"):
            assert error(server, hal.api_key, "file-access", {"interval": bad}) == (
                f"invalid interval '{bad}'"
            )
        assert error(server, hal.api_key, "file-access", {"interval": 5})
        assert error(server, hal.api_key, "file-access", {"interval": "1" * 500})
