"""Support tickets over real HTTP: create_support_ticket stores the ticket, mails the site's
help address (a real SMTP server) and answers a URL that shows it; get_support_tickets
lists the caller's open tickets; operators work on them with `calchub admin ticket`."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select

from calchub.db.tables import support_tickets
from calchub.support.tickets import MAX_TICKETS_PER_DAY
from tests.conftest import User
from tests.harness import ApiClient, Database, Server
from tests.smtp_sink import Received, SmtpSink

MakeUser = Callable[..., User]
HELP = "support-desk@example.org"


@pytest.fixture
def help_address(server: Server) -> Iterator[str]:
    server.cli("admin", "setting", "help_email", HELP)
    yield HELP
    server.cli("admin", "setting", "help_email", "--reset")


def _ticket(user: User, **extra: Any) -> dict[str, Any]:
    return {
        "email_address": user.email,
        "subject": f"package xyz {uuid.uuid4().hex[:6]}",
        "body": "please install package xyz for use with Python3",
        **extra,
    }


def _mail_about(smtp: SmtpSink, subject: str) -> Received:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for received in smtp.messages:
            if subject in str(received.message["Subject"]):
                return received
        time.sleep(0.05)
    raise AssertionError(f"no email about {subject!r}")


def _show(server: Server, url: str, key: str) -> httpx.Response:
    path = url.split("/support/", 1)[1]
    return httpx.get(f"{server.url}/support/{path}", auth=(key, ""), timeout=30)


def test_create_mail_show_and_list(
    api: ApiClient, server: Server, smtp: SmtpSink, help_address: str, make_user: MakeUser
) -> None:
    user = make_user()
    course = str(uuid.uuid4())
    body = _ticket(
        user,
        account_id=user.account_id,
        username="J. Doe",
        tags=["member"],
        location="/projects/0010abe1-9283-4b42-b403-fa4fc1e3be57/worksheet.sagews",
        info={"user_agent": "Mozilla/5.0", "course": course},
    )
    reply = api.call("create_support_ticket", user.api_key, body)
    assert reply.event == "support_ticket_url", reply.body
    url = reply["url"]
    assert url.startswith(server.url + "/support/tickets/")
    ticket_id = int(url.rsplit("/", 1)[1])

    mail = _mail_about(smtp, body["subject"])
    assert mail.envelope_to == [help_address]
    assert mail.message["Reply-To"] == user.email
    assert f"#{ticket_id}" in str(mail.message["Subject"])
    text = mail.message.get_body(("plain",)).get_content()
    assert body["body"] in text and url in text

    listed = api.call("get_support_tickets", user.api_key, {})
    assert listed.event == "support_tickets", listed.body
    (ticket,) = listed["tickets"]
    assert ticket["id"] == ticket_id and ticket["url"] == url and ticket["status"] == "open"
    assert ticket["subject"] == body["subject"]
    assert ticket["description"] == (
        f"{body['body']}\n\n{server.url}/projects/0010abe1-9283-4b42-b403-fa4fc1e3be57/"
        f"worksheet.sagews\n\nCourse: {server.url}/projects/{course}"
    )
    assert ticket["created_at"].endswith("Z")

    shown = _show(server, url, user.api_key)
    assert shown.status_code == 200 and shown.json()["ticket"] == ticket


def test_tickets_stay_with_their_account(
    api: ApiClient, server: Server, admin_key: str, make_user: MakeUser
) -> None:
    alice, bob = make_user(), make_user()
    url = api.call(
        "create_support_ticket", alice.api_key, _ticket(alice, account_id=alice.account_id)
    )["url"]
    assert api.call("get_support_tickets", bob.api_key, {})["tickets"] == []
    assert _show(server, url, bob.api_key).status_code == 404
    assert _show(server, url, admin_key).status_code == 200
    assert _show(server, url, "sk_wrongwrongwrongwrongwrong").status_code == 401
    assert _show(server, server.url + "/support/tickets/abc", alice.api_key).status_code == 404
    # Nobody files a ticket into somebody else's list; an admin may, on a user's behalf.
    reply = api.call(
        "create_support_ticket", bob.api_key, _ticket(bob, account_id=alice.account_id)
    )
    assert reply.event == "error"
    assert reply["error"] == "account_id must be the account of the API key"
    reply = api.call(
        "create_support_ticket", admin_key, _ticket(alice, account_id=alice.account_id)
    )
    assert reply.event == "support_ticket_url", reply.body
    assert len(api.call("get_support_tickets", alice.api_key, {})["tickets"]) == 2


def test_ticket_without_account_is_not_listed_but_visible_to_its_creator(
    api: ApiClient, server: Server, make_user: MakeUser
) -> None:
    user = make_user()
    url = api.call("create_support_ticket", user.api_key, _ticket(user))["url"]
    assert api.call("get_support_tickets", user.api_key, {})["tickets"] == []
    assert _show(server, url, user.api_key).status_code == 200


def test_operators_close_and_archive(api: ApiClient, server: Server, make_user: MakeUser) -> None:
    user = make_user()
    url = api.call(
        "create_support_ticket", user.api_key, _ticket(user, account_id=user.account_id)
    )["url"]
    ticket_id = int(url.rsplit("/", 1)[1])
    open_ids = [t["id"] for t in server.cli_json("admin", "ticket", "list")]
    assert ticket_id in open_ids
    assert server.cli_json("admin", "ticket", "status", str(ticket_id), "solved") == {
        "id": ticket_id,
        "status": "solved",
    }
    assert ticket_id not in [t["id"] for t in server.cli_json("admin", "ticket", "list")]
    assert ticket_id in [t["id"] for t in server.cli_json("admin", "ticket", "list", "--all")]
    (ticket,) = api.call("get_support_tickets", user.api_key, {})["tickets"]
    assert ticket["status"] == "solved"
    server.cli_json("admin", "ticket", "status", str(ticket_id), "archived")
    assert api.call("get_support_tickets", user.api_key, {})["tickets"] == []
    bad = server.cli("admin", "ticket", "status", str(ticket_id), "gone", check=False)
    assert bad.returncode == 1 and "status must be one of" in bad.stderr
    missing = server.cli("admin", "ticket", "status", "999999999", "closed", check=False)
    assert missing.returncode == 1 and "no support ticket 999999999" in missing.stderr


def test_bad_input(api: ApiClient, user: User) -> None:
    missing = api.call("create_support_ticket", user.api_key, {"email_address": user.email})
    assert missing.status == 400 and "subject" in missing["error"]
    for change, message in (
        ({"email_address": "not-an-address"}, "invalid email_address 'not-an-address'"),
        ({"account_id": "abc"}, "account_id must be the account of the API key"),
        ({"subject": 5}, None),
        ({"body": "x" * 100_001}, None),
        ({"tags": "member"}, None),
    ):
        reply = api.call("create_support_ticket", user.api_key, _ticket(user, **change))
        if message is None:
            assert reply.status == 400 and reply["error"].startswith("invalid parameters"), (
                reply.body
            )
        else:
            assert reply.event == "error" and reply["error"] == message
    huge = {"blob": "x" * 70_000}
    reply = api.call("create_support_ticket", user.api_key, _ticket(user, info=huge))
    assert reply.event == "error" and reply["error"] == "info must be at most 65536 bytes of JSON"
    # A subject with line breaks is one line in the mail's Subject.
    reply = api.call("create_support_ticket", user.api_key, _ticket(user, subject="a\r\nBcc: x@y"))
    assert reply.event == "support_ticket_url", reply.body


def test_daily_limit(api: ApiClient, db: Database, make_user: MakeUser) -> None:
    user = make_user()
    for _ in range(MAX_TICKETS_PER_DAY):
        assert api.call("create_support_ticket", user.api_key, _ticket(user)).event == (
            "support_ticket_url"
        )
    reply = api.call("create_support_ticket", user.api_key, _ticket(user))
    assert reply.event == "error"
    assert reply["error"] == (
        f"at most {MAX_TICKETS_PER_DAY} support tickets a day -- please add to an existing one"
    )
    count = db.execute(
        select(func.count())
        .select_from(support_tickets)
        .where(support_tickets.c.created_by == user.account_id)
    )
    assert count[0][0] == MAX_TICKETS_PER_DAY
    db.execute(delete(support_tickets).where(support_tickets.c.created_by == user.account_id))
