"""Collaborators over real HTTP: add_collaborator (direct and with invite tokens),
remove_collaborator, invite_collaborator and invite_noncloud_collaborators, with the emails
they send and the sign-up that turns an email invitation into membership."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, update

from calchub.accounts.creation import VERIFY_LIFETIME
from calchub.db.tables import (
    account_creation_actions,
    accounts,
    project_invite_tokens,
    project_users,
    projects,
)
from calchub.db.types import utcnow
from tests.api.expect import assert_invalid
from tests.api.test_v2 import ok
from tests.conftest import User
from tests.harness import ApiClient, Database, Server
from tests.smtp_sink import Received, SmtpSink
from tests.web.helpers import set_challenge_time, verify_through

MakeUser = Callable[..., User]


# --- helpers -------------------------------------------------------------------------------


def _create(api: ApiClient, user: User, title: str = "Collab project") -> str:
    reply = api.call("create_project", user.api_key, {"title": title, "start": False})
    assert reply.event == "project_created", reply.body
    return str(reply["project_id"])


def _members(db: Database, project_id: str) -> dict[str, str]:
    rows = db.execute(select(project_users).where(project_users.c.project_id == project_id))
    return {row.account_id: row.group for row in rows}


def _verified(db: Database, account_id: str) -> dict[str, str]:
    (row,) = db.execute(
        select(accounts.c.email_address_verified).where(accounts.c.account_id == account_id)
    )
    return dict(row.email_address_verified or {})


def _assert_invitation_pending(db: Database, project_id: str, account_id: str, email: str) -> None:
    """The invitation to `email` waits: its account is not verified, nor a member yet."""
    assert _verified(db, account_id) == {}
    assert account_id not in _members(db, project_id)
    pending = db.execute(
        select(account_creation_actions).where(account_creation_actions.c.email_address == email)
    )
    assert len(pending) == 1


def _set_member(db: Database, project_id: str, account_id: str, group: str) -> None:
    db.execute(
        insert(project_users).values(
            project_id=project_id, account_id=account_id, group=group, hide=False, added=utcnow()
        )
    )


def _token(
    db: Database,
    project_id: str,
    *,
    usage_limit: int | None = None,
    expires_in: timedelta | None = None,
    counter: int = 0,
) -> str:
    token = f"tok-{uuid.uuid4().hex}"
    db.execute(
        insert(project_invite_tokens).values(
            token=token,
            project_id=project_id,
            created=utcnow(),
            expires=utcnow() + expires_in if expires_in is not None else None,
            usage_limit=usage_limit,
            counter=counter,
        )
    )
    return token


def _counter(db: Database, token: str) -> int:
    rows = db.execute(
        select(project_invite_tokens.c.counter).where(project_invite_tokens.c.token == token)
    )
    return int(rows[0].counter)


def _invites_to(smtp: SmtpSink, address: str) -> list[Received]:
    return [
        m
        for m in smtp.messages
        if address.lower() in (a.lower() for a in m.envelope_to)
        and m.message["X-Calchub-Category"] == "invite"
    ]


def verification_link(smtp: SmtpSink, address: str) -> str:
    """The newest verification link mailed to `address`."""
    deadline = time.monotonic() + 10
    links: list[str] = []
    while not links and time.monotonic() < deadline:
        for received in smtp.messages:
            if address.lower() in (a.lower() for a in received.envelope_to):
                part = received.message.get_body(("plain",))
                text = str(part.get_content()) if part else ""
                links += re.findall(r"\S+/auth/verify\?\S+", text)
        if not links:
            time.sleep(0.05)
    assert links, f"no verification link was mailed to {address}"
    return links[-1]


def verify_address(smtp: SmtpSink, address: str) -> None:
    """Follow the newest verification link mailed to `address` and press the page's button,
    as its owner would."""
    done = verify_through(verification_link(smtp, address))
    assert done.status_code == 200 and "Email address verified" in done.text, done.text


def _html(received: Received) -> str:
    part = received.message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def _error(reply: Any) -> str:
    assert reply.status == 200 and reply.event == "error", reply.body
    return str(reply["error"])


@pytest.fixture
def owner(make_user: MakeUser) -> User:
    return make_user()


@pytest.fixture
def project(api: ApiClient, owner: User) -> str:
    return _create(api, owner)


# --- add_collaborator ----------------------------------------------------------------------


def test_add_single_json(
    api: ApiClient, owner: User, project: str, user: User, db: Database
) -> None:
    reply = api.call(
        "add_collaborator", owner.api_key, {"project_id": project, "account_id": user.account_id}
    )
    assert reply.body == {"event": "success", "id": reply["id"]}
    assert _members(db, project) == {owner.account_id: "owner", user.account_id: "collaborator"}


def test_add_form_body(api: ApiClient, owner: User, project: str, user: User, db: Database) -> None:
    reply = api.call(
        "add_collaborator",
        owner.api_key,
        form={"project_id": project, "account_id": user.account_id.upper()},
    )
    assert reply.event == "success", reply.body
    assert _members(db, project)[user.account_id] == "collaborator"


def test_add_arrays(api: ApiClient, owner: User, make_user: MakeUser, db: Database) -> None:
    p1, p2 = _create(api, owner), _create(api, owner)
    a, b = make_user(), make_user()
    reply = api.call(
        "add_collaborator",
        owner.api_key,
        {"project_id": [p1, p2], "account_id": [a.account_id, b.account_id]},
    )
    assert reply.event == "success", reply.body
    assert _members(db, p1)[a.account_id] == "collaborator"
    assert _members(db, p2)[b.account_id] == "collaborator"
    assert b.account_id not in _members(db, p1)


def test_add_skips_existing_members(
    api: ApiClient, owner: User, project: str, user: User, db: Database
) -> None:
    _set_member(db, project, user.account_id, "viewer")
    reply = api.call(
        "add_collaborator",
        owner.api_key,
        {"project_id": [project, project], "account_id": [owner.account_id, user.account_id]},
    )
    assert reply.event == "success", reply.body
    assert _members(db, project) == {owner.account_id: "owner", user.account_id: "viewer"}


def test_add_length_mismatch(api: ApiClient, owner: User, project: str, user: User) -> None:
    reply = api.call(
        "add_collaborator",
        owner.api_key,
        {"project_id": [project], "account_id": [user.account_id, owner.account_id]},
    )
    assert _error(reply) == (
        "Error: accounts (of length 2) and projects (of length 1) must be arrays of the same length"
    )
    reply = api.call("add_collaborator", owner.api_key, {"account_id": user.account_id})
    assert "(of length 1) and projects (of length 0)" in _error(reply)


def test_add_invalid_ids(api: ApiClient, owner: User, project: str, user: User) -> None:
    reply = api.call(
        "add_collaborator", owner.api_key, {"project_id": project, "account_id": "nope"}
    )
    assert _error(reply) == "Error: all account id's must be valid uuid's, but \"nope\" is not"
    reply = api.call(
        "add_collaborator", owner.api_key, {"project_id": "bad-pid", "account_id": user.account_id}
    )
    assert _error(reply) == (
        "Error: all project id's must be valid uuid's (or empty), but \"bad-pid\" is not"
    )


def test_add_unknown_account(api: ApiClient, owner: User, project: str, db: Database) -> None:
    ghost = str(uuid.uuid4())
    reply = api.call(
        "add_collaborator", owner.api_key, {"project_id": project, "account_id": ghost}
    )
    assert _error(reply) == f'Error: no account with id "{ghost}"'
    assert ghost not in _members(db, project)


@pytest.mark.parametrize("group", [None, "viewer"])
def test_add_needs_write_access(
    api: ApiClient,
    owner: User,
    project: str,
    make_user: MakeUser,
    db: Database,
    group: str | None,
) -> None:
    caller, target = make_user(), make_user()
    if group:
        _set_member(db, project, caller.account_id, group)
    reply = api.call(
        "add_collaborator", caller.api_key, {"project_id": project, "account_id": target.account_id}
    )
    assert _error(reply) == (
        f"Error: user {caller.account_id} does not have write access to project {project}"
    )
    assert target.account_id not in _members(db, project)


def test_add_by_collaborator_and_admin(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, admin_key: str, db: Database
) -> None:
    collab, a, b = make_user(), make_user(), make_user()
    _set_member(db, project, collab.account_id, "collaborator")
    reply = api.call(
        "add_collaborator", collab.api_key, {"project_id": project, "account_id": a.account_id}
    )
    assert reply.event == "success", reply.body
    reply = api.call(
        "add_collaborator", admin_key, {"project_id": project, "account_id": b.account_id}
    )
    assert reply.event == "success", reply.body
    assert _members(db, project)[b.account_id] == "collaborator"


def test_deleted_projects_and_accounts_take_no_members(
    api: ApiClient, owner: User, make_user: MakeUser, db: Database, admin_key: str
) -> None:
    project = _create(api, owner, "doomed")
    token = _token(db, project)
    newcomer, gone = make_user(), make_user()
    db.execute(update(projects).where(projects.c.project_id == project).values(deleted=True))
    for key in (owner.api_key, admin_key):
        reply = api.call(
            "add_collaborator", key, {"project_id": project, "account_id": newcomer.account_id}
        )
        assert _error(reply) == f'Error: no project with id "{project}"'
    reply = api.call(
        "add_collaborator",
        newcomer.api_key,
        {"account_id": newcomer.account_id, "token_id": token},
    )
    assert _error(reply) == f'Error: no project with id "{project}"'
    assert newcomer.account_id not in _members(db, project)
    # A deleted account is not added to a live project either, by any route.
    live = _create(api, owner, "live")
    assert api.call("delete_account", gone.api_key, {"account_id": gone.account_id}).event == (
        "account_deleted"
    )
    reply = api.call(
        "add_collaborator", owner.api_key, {"project_id": live, "account_id": gone.account_id}
    )
    assert _error(reply) == f'Error: no account with id "{gone.account_id}"'
    reply = api.call(
        "invite_collaborator", owner.api_key, {"project_id": live, "account_id": gone.account_id}
    )
    assert _error(reply) == f'no account with id "{gone.account_id}"'
    assert gone.account_id not in _members(db, live)


def test_add_to_missing_project(api: ApiClient, admin_key: str, owner: User, user: User) -> None:
    ghost = str(uuid.uuid4())
    reply = api.call(
        "add_collaborator", admin_key, {"project_id": ghost, "account_id": user.account_id}
    )
    assert _error(reply) == f'Error: no project with id "{ghost}"'
    reply = api.call(
        "add_collaborator", user.api_key, {"project_id": ghost, "account_id": user.account_id}
    )
    assert _error(reply) == f'Error: no project with id "{ghost}"'


def test_add_other_users_to_other_projects(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, db: Database
) -> None:
    """Write access on one project does not reach a second one in the same request."""
    other = make_user()
    theirs = _create(api, other)
    reply = api.call(
        "add_collaborator",
        owner.api_key,
        {"project_id": [project, theirs], "account_id": [other.account_id, owner.account_id]},
    )
    assert _error(reply) == (
        f"Error: user {owner.account_id} does not have write access to project {theirs}"
    )
    assert other.account_id not in _members(db, project)  # nothing half-written


def test_add_self_course_rules(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, db: Database
) -> None:
    student = make_user()
    reply = api.call(
        "add_collaborator",
        student.api_key,
        {"project_id": project, "account_id": student.account_id},
    )
    assert _error(reply) == f'Error: cannot add self to "{project}" -- must be an admin'
    course = _create(api, owner, "Course")
    db.execute(
        update(projects)
        .where(projects.c.project_id == project)
        .values(course={"project_id": course})
    )
    reply = api.call(
        "add_collaborator",
        student.api_key,
        {"project_id": project, "account_id": student.account_id},
    )
    assert _error(reply) == (
        f'Error: cannot add self to "{project}" -- must be owner or collaborator on course project'
    )
    _set_member(db, course, student.account_id, "collaborator")
    reply = api.call(
        "add_collaborator",
        student.api_key,
        {"project_id": project, "account_id": student.account_id},
    )
    assert reply.event == "success", reply.body
    assert _members(db, project)[student.account_id] == "collaborator"


def test_add_with_token(api: ApiClient, project: str, user: User, db: Database) -> None:
    token = _token(db, project, usage_limit=2)
    reply = api.call(
        "add_collaborator", user.api_key, {"account_id": user.account_id, "token_id": token}
    )
    assert reply.event == "success" and reply["project_id"] == project, reply.body
    assert _members(db, project)[user.account_id] == "collaborator"
    assert _counter(db, token) == 1
    # Already a member: no second use is counted.
    reply = api.call(
        "add_collaborator", user.api_key, {"account_id": user.account_id, "token_id": token}
    )
    assert reply.event == "success", reply.body
    assert _counter(db, token) == 1


def test_add_with_token_arrays_and_form(
    api: ApiClient, owner: User, make_user: MakeUser, db: Database
) -> None:
    p1, p2 = _create(api, owner), _create(api, owner)
    t1, t2 = _token(db, p1), _token(db, p2)
    joiner = make_user()
    reply = api.call(
        "add_collaborator",
        joiner.api_key,
        {"account_id": [joiner.account_id, joiner.account_id], "token_id": [t1, t2]},
    )
    assert reply.event == "success" and reply["project_id"] == [p1, p2], reply.body
    other = make_user()
    reply = api.call(
        "add_collaborator", other.api_key, form={"account_id": other.account_id, "token_id": t1}
    )
    assert reply.event == "success" and reply["project_id"] == p1, reply.body
    assert _counter(db, t1) == 2


def test_token_errors(api: ApiClient, project: str, make_user: MakeUser, db: Database) -> None:
    user = make_user()

    def add(token: Any) -> str:
        return _error(
            api.call(
                "add_collaborator", user.api_key, {"account_id": user.account_id, "token_id": token}
            )
        )

    prefix = "Error: Project invite token is not valid - "
    assert add("no-such-token") == prefix + "no such token"
    nul = api.call(
        "add_collaborator", user.api_key, {"account_id": user.account_id, "token_id": "a\x00b"}
    )
    assert_invalid(nul, "token_id")
    assert add(_token(db, project, expires_in=timedelta(hours=-1))) == (
        prefix + "the token already expired"
    )
    assert add(_token(db, project, usage_limit=3, counter=3)) == (
        prefix + "the token can only be used 3 times"
    )
    assert add([_token(db, project), None]) == (
        "Error: If tokens are specified, they must all be non-null."
    )
    assert user.account_id not in _members(db, project)


def test_token_limit_counts_each_add(
    api: ApiClient, project: str, make_user: MakeUser, db: Database
) -> None:
    a, b = make_user(), make_user()
    token = _token(db, project, usage_limit=1)
    reply = api.call(
        "add_collaborator",
        a.api_key,
        {"account_id": [a.account_id, b.account_id], "token_id": [token, token]},
    )
    assert _error(reply) == (
        "Error: Project invite token is not valid - the token can only be used 1 times"
    )
    members = _members(db, project)
    assert a.account_id not in members and b.account_id not in members
    assert _counter(db, token) == 0


def test_add_bad_types(api: ApiClient, owner: User, project: str) -> None:
    assert_invalid(
        api.call("add_collaborator", owner.api_key, {"project_id": project, "account_id": 5}),
        "account_id",
    )
    huge = [str(uuid.uuid4()) for _ in range(10_001)]
    reply = api.call("add_collaborator", owner.api_key, {"project_id": huge, "account_id": huge})
    assert reply.status == 400, reply.status
    reply = api.call("add_collaborator", owner.api_key, {"project_id": project})
    assert reply.status == 400 and "account_id" in reply["error"]


def test_add_many_at_once(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, db: Database
) -> None:
    users = [make_user() for _ in range(5)]
    ids = [u.account_id for u in users]
    reply = api.call(
        "add_collaborator", owner.api_key, {"project_id": [project] * 5, "account_id": ids}
    )
    assert reply.event == "success", reply.body
    assert set(ids) <= set(_members(db, project))


# --- remove_collaborator -------------------------------------------------------------------


def test_remove_collaborator(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, db: Database
) -> None:
    a, b = make_user(), make_user()
    _set_member(db, project, a.account_id, "collaborator")
    _set_member(db, project, b.account_id, "viewer")
    reply = api.call(
        "remove_collaborator", owner.api_key, {"project_id": project, "account_id": a.account_id}
    )
    assert reply.event == "success", reply.body
    reply = api.call(
        "remove_collaborator",
        owner.api_key,
        form={"project_id": project, "account_id": b.account_id},
    )
    assert reply.event == "success", reply.body
    assert _members(db, project) == {owner.account_id: "owner"}


def test_owner_is_never_removed(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, admin_key: str, db: Database
) -> None:
    collab = make_user()
    _set_member(db, project, collab.account_id, "collaborator")
    for key in (collab.api_key, admin_key, owner.api_key):
        reply = api.call(
            "remove_collaborator", key, {"project_id": project, "account_id": owner.account_id}
        )
        assert reply.event == "success", reply.body
    assert _members(db, project)[owner.account_id] == "owner"


def test_remove_non_members_is_a_no_op(
    api: ApiClient, owner: User, project: str, user: User, db: Database
) -> None:
    for account_id in (user.account_id, str(uuid.uuid4())):
        reply = api.call(
            "remove_collaborator", owner.api_key, {"project_id": project, "account_id": account_id}
        )
        assert reply.event == "success", reply.body
    assert _members(db, project) == {owner.account_id: "owner"}


@pytest.mark.parametrize("group", [None, "viewer"])
def test_remove_needs_write_access(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, db: Database, group: str | None
) -> None:
    caller, victim = make_user(), make_user()
    _set_member(db, project, victim.account_id, "collaborator")
    if group:
        _set_member(db, project, caller.account_id, group)
    reply = api.call(
        "remove_collaborator",
        caller.api_key,
        {"project_id": project, "account_id": victim.account_id},
    )
    assert _error(reply) == (
        f"User {caller.account_id} does not have write access to project {project}"
    )
    assert _members(db, project)[victim.account_id] == "collaborator"


def test_remove_by_collaborator_and_admin(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, admin_key: str, db: Database
) -> None:
    a, b = make_user(), make_user()
    _set_member(db, project, a.account_id, "collaborator")
    _set_member(db, project, b.account_id, "collaborator")
    assert (
        api.call(
            "remove_collaborator", a.api_key, {"project_id": project, "account_id": b.account_id}
        ).event
        == "success"
    )
    assert (
        api.call(
            "remove_collaborator", admin_key, {"project_id": project, "account_id": a.account_id}
        ).event
        == "success"
    )
    assert _members(db, project) == {owner.account_id: "owner"}


def test_remove_bad_ids(api: ApiClient, owner: User, project: str) -> None:
    reply = api.call(
        "remove_collaborator", owner.api_key, {"project_id": project, "account_id": "x"}
    )
    assert _error(reply) == "invalid account_id -- x"
    reply = api.call(
        "remove_collaborator", owner.api_key, {"project_id": "nope", "account_id": owner.account_id}
    )
    assert _error(reply) == (
        "Internal error determining user permission -- invalid project_id -- nope"
    )
    assert_invalid(
        api.call("remove_collaborator", owner.api_key, {"project_id": project, "account_id": [1]}),
        "account_id",
    )


# --- invite_collaborator -------------------------------------------------------------------


def _invite(api: ApiClient, key: str, project: str, account_id: str, **fields: Any) -> Any:
    return api.call(
        "invite_collaborator", key, {"project_id": project, "account_id": account_id, **fields}
    )


def test_invite_without_email_adds_silently(
    api: ApiClient, owner: User, project: str, user: User, db: Database, smtp: SmtpSink
) -> None:
    reply = _invite(api, owner.api_key, project, user.account_id)
    assert reply.event == "success", reply.body
    assert _members(db, project)[user.account_id] == "collaborator"
    assert _invites_to(smtp, user.email) == []


def test_invite_sends_sanitized_email(
    api: ApiClient, owner: User, project: str, user: User, smtp: SmtpSink, db: Database
) -> None:
    body = (
        "<p>Join <b>us</b>!</p><script>alert('x')</script>"
        '<a href="javascript:alert(1)">bad</a> <a href="https://example.org/x">good</a>'
        '<img src="http://evil.example/t.png" onerror="alert(2)">'
    )
    reply = _invite(
        api,
        owner.api_key,
        project,
        user.account_id,
        title="Thesis",
        email=body,
        replyto="boss@example.com",
        replyto_name="Boss Person",
        link2proj="https://phish.example/projects/x",
    )
    assert reply.event == "success", reply.body
    (mail,) = _invites_to(smtp, user.email)
    assert mail.message["Subject"] == (
        "Boss Person invited you to collaborate on CoCalc in project 'Thesis'"
    )
    assert _raw_header(mail, "Reply-To") == '"Boss Person" <boss@example.com>'
    html = _html(mail)
    assert "<p>Join <b>us</b>!</p>" in html
    assert "<script" not in html and "<img" not in html and "javascript:" not in html
    assert "&lt;script&gt;" in html
    assert '<a href="https://example.org/x">good</a>' in html
    assert "phish.example" not in html
    assert f"/projects/{project}" in html
    invite = db.execute(select(projects.c.invite).where(projects.c.project_id == project))[0][0]
    assert invite[user.email]["error"] is None


def _raw_header(mail: Received, name: str) -> str:
    # The header as sent, before the parser normalises its quoting.
    return str(dict(mail.message.raw_items())[name])


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ('Eve", all@victim.example <', '"Eve\\", all@victim.example <" <eve@example.com>'),
        ("Back\\slash", '"Back\\\\slash" <eve@example.com>'),
        ("Ève\r\nBcc: x@y", None),
    ],
)
def test_invite_reply_to_name_cannot_add_recipients(
    api: ApiClient,
    owner: User,
    make_user: MakeUser,
    smtp: SmtpSink,
    name: str,
    raw: str | None,
) -> None:
    project = _create(api, owner, "Names")
    invitee = make_user()
    reply = _invite(
        api,
        owner.api_key,
        project,
        invitee.account_id,
        email="hello",
        replyto="eve@example.com",
        replyto_name=name,
    )
    assert reply.event == "success", reply.body
    (mail,) = _invites_to(smtp, invitee.email)
    (address,) = mail.message["Reply-To"].addresses
    assert address.addr_spec == "eve@example.com"
    assert address.display_name == " ".join(name.split())
    if raw is not None:
        assert _raw_header(mail, "Reply-To") == raw
    assert mail.message["Bcc"] is None


def test_invite_reply_to_name_without_address(
    api: ApiClient, owner: User, make_user: MakeUser, smtp: SmtpSink
) -> None:
    project = _create(api, owner, "Names")
    invitee = make_user()
    reply = _invite(
        api, owner.api_key, project, invitee.account_id, email="hi", replyto_name="Boss"
    )
    assert reply.event == "success", reply.body
    (mail,) = _invites_to(smtp, invitee.email)
    (address,) = mail.message["Reply-To"].addresses
    # The site's own address is not presented under the inviter's name.
    assert address.display_name == "" and address.addr_spec.startswith("noreply@")


def test_invite_subject_and_reply_to_defaults(
    api: ApiClient, owner: User, make_user: MakeUser, smtp: SmtpSink
) -> None:
    project = _create(api, owner, "Default title")
    a, b = make_user(), make_user()
    assert _invite(api, owner.api_key, project, a.account_id, email="").event == "success"
    (mail,) = _invites_to(smtp, a.email)
    assert mail.message["Subject"] == (
        "Invitation to CoCalc for collaborating in project 'Default title'"
    )
    reply_to = mail.message["Reply-To"]
    assert reply_to and reply_to.startswith("noreply@")  # the organization_email default
    reply = _invite(
        api,
        owner.api_key,
        project,
        b.account_id,
        email="hi",
        subject="Custom\r\nBcc: x@y",
        replyto="bad",
    )
    assert reply.event == "success", reply.body
    (mail,) = _invites_to(smtp, b.email)
    assert mail.message["Subject"] == "Custom Bcc: x@y"
    assert mail.message["Bcc"] is None


def test_invite_email_deduplicated_for_a_week(
    api: ApiClient, owner: User, project: str, user: User, smtp: SmtpSink, db: Database
) -> None:
    for _ in range(2):
        assert _invite(api, owner.api_key, project, user.account_id, email="hi").event == "success"
    assert len(_invites_to(smtp, user.email)) == 1
    invite = db.execute(select(projects.c.invite).where(projects.c.project_id == project))[0][0]
    invite[user.email]["time"] = (utcnow() - timedelta(days=8)).isoformat()
    db.execute(update(projects).where(projects.c.project_id == project).values(invite=invite))
    assert _invite(api, owner.api_key, project, user.account_id, email="hi").event == "success"
    assert len(_invites_to(smtp, user.email)) == 2


def test_invite_keeps_owner_and_promotes_viewer(
    api: ApiClient, owner: User, project: str, user: User, db: Database, admin_key: str
) -> None:
    _set_member(db, project, user.account_id, "viewer")
    assert _invite(api, owner.api_key, project, user.account_id).event == "success"
    assert _invite(api, admin_key, project, owner.account_id).event == "success"
    assert _members(db, project) == {owner.account_id: "owner", user.account_id: "collaborator"}


def test_invite_errors(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, db: Database
) -> None:
    stranger, viewer, target = make_user(), make_user(), make_user()
    _set_member(db, project, viewer.account_id, "viewer")
    for caller in (stranger, viewer):
        reply = _invite(api, caller.api_key, project, target.account_id)
        assert _error(reply) == (
            f"User {caller.account_id} does not have write access to project {project}"
        )
    assert _error(_invite(api, owner.api_key, project, "abc")) == "invalid account_id -- abc"
    ghost = str(uuid.uuid4())
    assert _error(_invite(api, owner.api_key, project, ghost)) == f'no account with id "{ghost}"'
    assert set(_members(db, project)) == {owner.account_id, viewer.account_id}
    assert_invalid(_invite(api, owner.api_key, project, target.account_id, email=["x"]), "email")


def test_invite_form_by_collaborator(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, db: Database
) -> None:
    collab, target = make_user(), make_user()
    _set_member(db, project, collab.account_id, "collaborator")
    reply = api.call(
        "invite_collaborator",
        collab.api_key,
        form={"project_id": project, "account_id": target.account_id},
    )
    assert reply.event == "success", reply.body
    assert _members(db, project)[target.account_id] == "collaborator"


# --- invite_noncloud_collaborators ---------------------------------------------------------


def _noncloud(api: ApiClient, key: str, project: str, to: str, **fields: Any) -> Any:
    body = {
        "project_id": project,
        "to": to,
        "email": "Please <b>join</b><script>x()</script>",
        "title": "Shared",
        "link2proj": "https://elsewhere.example/p",
        **fields,
    }
    return api.call("invite_noncloud_collaborators", key, body)


def _fresh_address() -> str:
    return f"invitee-{uuid.uuid4().hex[:10]}@example.com"


def test_noncloud_invite_then_sign_up(
    api: ApiClient,
    owner: User,
    project: str,
    smtp: SmtpSink,
    db: Database,
    make_user: MakeUser,
) -> None:
    first, second = _fresh_address(), _fresh_address()
    to = f"{first.upper()}, {second}"
    reply = _noncloud(api, owner.api_key, project, to)
    assert reply.body == {
        "event": "invite_noncloud_collaborators_resp",
        "id": reply["id"],
        "mesg": f"Invited {to} to collaborate on a project.",
    }
    (mail,) = _invites_to(smtp, first)
    assert mail.message["Subject"] == "CoCalc Invitation"
    html = _html(mail)
    assert "<b>join</b>" in html and "<script" not in html
    assert len(_invites_to(smtp, second)) == 1
    actions = db.execute(
        select(account_creation_actions).where(account_creation_actions.c.email_address == first)
    )
    assert [row.action for row in actions] == [
        {"action": "add_to_project", "group": "collaborator", "project_id": project}
    ]
    assert actions[0].expire - utcnow() > timedelta(days=13)
    # A second invitation within a week sends nothing more.
    assert (
        _noncloud(api, owner.api_key, project, first).event == "invite_noncloud_collaborators_resp"
    )
    assert len(_invites_to(smtp, first)) == 1
    newcomer = make_user(email=first)
    # Signing up with the address is not enough: its owner must follow the mailed link.
    assert newcomer.account_id not in _members(db, project)
    verify_address(smtp, first)
    assert _members(db, project)[newcomer.account_id] == "collaborator"
    left = db.execute(
        select(account_creation_actions).where(account_creation_actions.c.email_address == first)
    )
    assert left == []


def test_opening_the_verification_link_alone_changes_nothing(
    api: ApiClient,
    owner: User,
    project: str,
    smtp: SmtpSink,
    db: Database,
    make_user: MakeUser,
) -> None:
    """Mail gateways open (prefetch) every link of a message: opening the link must neither
    verify the address nor hand its invitations to whoever signed up with it."""
    address = _fresh_address()
    reply = _noncloud(api, owner.api_key, project, address)
    assert reply.event == "invite_noncloud_collaborators_resp", reply.body
    newcomer = make_user(email=address)
    link = verification_link(smtp, address)
    with httpx.Client(timeout=60) as scanner:
        for method in ("GET", "HEAD", "GET"):
            assert scanner.request(method, link).status_code == 200
        page = scanner.get(link, headers={"Accept": "text/html"})
    assert f">{address}</strong>" in page.text and "Verify this address" in page.text
    _assert_invitation_pending(db, project, newcomer.account_id, address)
    # The button does it, once.
    verify_address(smtp, address)
    assert _members(db, project)[newcomer.account_id] == "collaborator"
    assert set(_verified(db, newcomer.account_id)) == {address}
    assert verify_through(link).status_code == 400


def test_an_expired_verification_link_leaves_invitations_pending(
    api: ApiClient,
    server: Server,
    owner: User,
    project: str,
    smtp: SmtpSink,
    db: Database,
    make_user: MakeUser,
) -> None:
    """A leaked old welcome mail must not verify the address nor hand over its invitations;
    a new verification email does, for the address's owner."""
    address = _fresh_address()
    reply = _noncloud(api, owner.api_key, project, address)
    assert reply.event == "invite_noncloud_collaborators_resp", reply.body
    newcomer = make_user(email=address)
    link = verification_link(smtp, address)
    set_challenge_time(
        db, newcomer.account_id, (utcnow() - VERIFY_LIFETIME - timedelta(minutes=1)).isoformat()
    )
    refused = verify_through(link)
    assert refused.status_code == 400 and "This link does not work" in refused.text
    _assert_invitation_pending(db, project, newcomer.account_id, address)
    # A new verification email, and its link works.
    assert ok(server, newcomer.api_key, "accounts/send-verification-email", {}) == {
        "status": "success"
    }
    fresh = verification_link(smtp, address)
    assert fresh != link
    verify_address(smtp, address)
    assert _members(db, project)[newcomer.account_id] == "collaborator"
    assert verify_through(link).status_code == 400


def test_noncloud_existing_account_added_directly(
    api: ApiClient, owner: User, project: str, user: User, smtp: SmtpSink, db: Database
) -> None:
    verify_address(smtp, user.email)
    other = _fresh_address()
    reply = api.call(
        "invite_noncloud_collaborators",
        owner.api_key,
        form={
            "project_id": project,
            "to": f"{user.email};{other}",
            "email": "hello",
            "title": "T",
            "link2proj": "x",
            "subject": "Come along",
        },
    )
    assert reply.event == "invite_noncloud_collaborators_resp", reply.body
    assert reply["mesg"].startswith(f"Invited {user.email};{other} to collaborate on a project.")
    assert user.email in reply["mesg"].split("project.", 1)[1]
    assert _members(db, project)[user.account_id] == "collaborator"
    assert _invites_to(smtp, user.email) == []
    (mail,) = _invites_to(smtp, other)
    assert mail.message["Subject"] == "Come along"


def test_noncloud_email_change_claims_invitation_once_confirmed(
    api: ApiClient, owner: User, project: str, user: User, db: Database, smtp: SmtpSink
) -> None:
    address = _fresh_address()
    assert (
        _noncloud(api, owner.api_key, project, address).event
        == "invite_noncloud_collaborators_resp"
    )
    reply = api.call(
        "change_email_address",
        user.api_key,
        {"account_id": user.account_id, "new_email_address": address, "password": user.password},
    )
    assert reply.event == "changed_email_address" and not reply.get("error"), reply.body
    assert user.account_id not in _members(db, project)
    verify_address(smtp, address)
    assert _members(db, project)[user.account_id] == "collaborator"


def test_claiming_an_invited_address_grants_nothing(
    api: ApiClient,
    owner: User,
    project: str,
    make_user: MakeUser,
    db: Database,
    smtp: SmtpSink,
) -> None:
    """Whoever sets an invited address on their own account, by signing up with it or by
    changing to it, must not become a member: only the mailbox's owner can confirm it."""
    victim_address, squatted = _fresh_address(), _fresh_address()
    assert _noncloud(api, owner.api_key, project, victim_address).event == (
        "invite_noncloud_collaborators_resp"
    )
    attacker = make_user()
    reply = api.call(
        "change_email_address",
        attacker.api_key,
        {
            "account_id": attacker.account_id,
            "new_email_address": victim_address,
            "password": attacker.password,
        },
    )
    assert reply.event == "changed_email_address" and not reply.get("error"), reply.body
    assert attacker.account_id not in _members(db, project)
    # The pending invitation is still there for the address's real owner.
    pending = db.execute(
        select(account_creation_actions).where(
            account_creation_actions.c.email_address == victim_address
        )
    )
    assert len(pending) == 1
    # An account holding an unconfirmed address is not "an existing account" either: the
    # address gets an invitation email instead of a direct add.
    squatter = make_user(email=squatted)
    reply = _noncloud(api, owner.api_key, project, squatted)
    assert reply["mesg"] == f"Invited {squatted} to collaborate on a project.", reply.body
    assert squatter.account_id not in _members(db, project)
    assert len(_invites_to(smtp, squatted)) == 1


def test_expired_invitation_is_not_applied(
    api: ApiClient,
    owner: User,
    project: str,
    db: Database,
    make_user: MakeUser,
    smtp: SmtpSink,
) -> None:
    address = _fresh_address()
    assert (
        _noncloud(api, owner.api_key, project, address).event
        == "invite_noncloud_collaborators_resp"
    )
    db.execute(
        update(account_creation_actions)
        .where(account_creation_actions.c.email_address == address)
        .values(expire=utcnow() - timedelta(minutes=1))
    )
    newcomer = make_user(email=address)
    verify_address(smtp, address)
    assert newcomer.account_id not in _members(db, project)


def test_noncloud_recipient_errors(
    api: ApiClient, owner: User, project: str, smtp: SmtpSink
) -> None:
    good = _fresh_address()
    assert _error(_noncloud(api, owner.api_key, project, "a@b.c " * 200)) == (
        "Specify less recipients when adding collaborators to project."
    )
    assert _error(_noncloud(api, owner.api_key, project, f"{good}, not-an-address")) == (
        "invalid email address 'not-an-address'"
    )
    long = "X" * 130 + "@example.com"
    assert _error(_noncloud(api, owner.api_key, project, long)) == (
        f"email address must be at most 128 characters: '{long.lower()}'"
    )
    assert _invites_to(smtp, good) == []  # all recipients are checked before any is invited


def test_noncloud_permissions_and_types(
    api: ApiClient, owner: User, project: str, make_user: MakeUser, db: Database, admin_key: str
) -> None:
    stranger, viewer, collab = make_user(), make_user(), make_user()
    _set_member(db, project, viewer.account_id, "viewer")
    _set_member(db, project, collab.account_id, "collaborator")
    for caller in (stranger, viewer):
        assert _error(_noncloud(api, caller.api_key, project, _fresh_address())) == (
            f"User {caller.account_id} does not have write access to project {project}"
        )
    for key in (collab.api_key, admin_key):
        reply = _noncloud(api, key, project, _fresh_address())
        assert reply.event == "invite_noncloud_collaborators_resp", reply.body
    assert_invalid(_noncloud(api, owner.api_key, project, ["a@b"]), "to")
    reply = api.call(
        "invite_noncloud_collaborators", owner.api_key, {"project_id": project, "to": "a@b"}
    )
    assert reply.status == 400 and "email" in reply["error"]
