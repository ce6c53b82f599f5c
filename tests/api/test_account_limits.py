"""Per-account limits: projects owned, projects created per minute, projects running at once
and invitation emails per hour, each a site setting."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.conftest import User
from tests.harness import ApiClient, Server
from tests.smtp_sink import SmtpSink

MakeUser = Callable[..., User]


@contextmanager
def setting(server: Server, name: str, value: str) -> Iterator[None]:
    server.cli("admin", "setting", name, value)
    try:
        yield
    finally:
        server.cli("admin", "setting", name, "--reset")


def _create(api: ApiClient, key: str) -> Any:
    return api.call("create_project", key, {"title": "limits"}).body


def test_project_creations_per_minute(
    api: ApiClient, server: Server, make_user: MakeUser, admin_key: str
) -> None:
    user = make_user()
    with setting(server, "project_creations_per_minute", "3"):
        made = [_create(api, user.api_key) for _ in range(4)]
        assert [m["event"] for m in made[:3]] == ["project_created"] * 3
        assert made[3]["event"] == "error"
        assert made[3]["error"] == "too many new projects: at most 3 a minute; try again shortly"
        # Admins are not limited.
        assert all(_create(api, admin_key)["event"] == "project_created" for _ in range(4))


def test_projects_per_account(api: ApiClient, server: Server, make_user: MakeUser) -> None:
    user = make_user()
    with setting(server, "max_projects_per_account", "2"):
        assert _create(api, user.api_key)["event"] == "project_created"
        assert _create(api, user.api_key)["event"] == "project_created"
        refused = _create(api, user.api_key)
        assert refused["error"] == (
            "you own 2 projects, the most this site allows; delete one first"
        )


def test_running_projects_per_owner(api: ApiClient, server: Server, make_user: MakeUser) -> None:
    user = make_user()
    first, second = (str(_create(api, user.api_key)["project_id"]) for _ in range(2))

    def run(project_id: str) -> Any:
        body = {"project_id": project_id, "command": "echo", "args": ["ok"]}
        return api.call("project_exec", user.api_key, body).body

    with setting(server, "max_running_projects_per_account", "1"):
        assert run(first)["stdout"] == "ok\n"
        refused = run(second)
        assert refused["error"] == (
            "the owner of this project has 1 projects running, the most this site allows at "
            "once; stop one of them first"
        )
        # The project already running keeps working.
        assert run(first)["stdout"] == "ok\n"
    assert run(second)["stdout"] == "ok\n"


def test_invitation_emails_per_hour(
    api: ApiClient, server: Server, make_user: MakeUser, smtp: SmtpSink
) -> None:
    inviter = make_user()
    project = str(_create(api, inviter.api_key)["project_id"])
    addresses = [f"limit-{uuid.uuid4().hex[:10]}@example.com" for _ in range(3)]

    def invite(address: str) -> Any:
        body = {
            "project_id": project,
            "to": address,
            "email": "join me",
            "title": "T",
            "link2proj": "x",
        }
        return api.call("invite_noncloud_collaborators", inviter.api_key, body).body

    with setting(server, "invitation_emails_per_hour", "2"):
        ok = "invite_noncloud_collaborators_resp"
        assert invite(addresses[0])["event"] == ok
        # Inviting the same address again within a week sends nothing and costs nothing.
        assert invite(addresses[0])["event"] == ok
        assert invite(addresses[1])["event"] == ok
        refused = invite(addresses[2])
        assert refused["error"] == (
            "too many invitation emails: at most 2 an hour; try again later"
        )
    sent_to = {a.lower() for m in smtp.messages for a in m.envelope_to}
    assert addresses[0] in sent_to and addresses[1] in sent_to
    assert addresses[2] not in sent_to
