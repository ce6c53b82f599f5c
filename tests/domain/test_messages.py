"""Messages between accounts through the domain: sending by id or address, threads, the
four mailboxes, and the limits."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from calchub.errors import Invalid, LimitExceeded, NotSignedIn
from calchub.hub import Hub
from calchub.messages.get import get_messages
from calchub.messages.send import send_message
from tests.domain.conftest import MakePerson


async def test_send_and_read_back(hub: Hub, make_person: MakePerson) -> None:
    ada, bob, cy = await make_person(), await make_person(), await make_person()
    first = await send_message(hub, ada.actor, [bob.actor.caller, cy.email.upper()], "Hi", "b1")
    assert isinstance(first, int)
    (got,) = await get_messages(hub, bob.actor)
    assert got["id"] == first and got["subject"] == "Hi" and got["body"] == "b1"
    assert got["from_id"] == ada.actor.caller
    assert got["to_ids"] == [bob.actor.caller, cy.actor.caller]
    assert got["thread_id"] is None
    assert (got["read"], got["saved"], got["deleted"]) == (False, False, False)
    assert [m["id"] for m in await get_messages(hub, cy.actor, kind="new")] == [first]
    (new,) = await get_messages(hub, cy.actor, kind="new")
    assert sorted(new) == sorted(
        ["id", "subject", "body", "from_id", "to_ids", "sent", "thread_id"]
    )
    (sent,) = await get_messages(hub, ada.actor, kind="sent")
    assert sent["id"] == first and sent["read"] is False
    assert await get_messages(hub, ada.actor) == []
    assert await get_messages(hub, bob.actor, kind="starred") == []
    assert await get_messages(hub, bob.actor, kind="liked") == []
    # A reply joins the thread; newest first; cutoff and paging.
    reply = await send_message(hub, bob.actor, [ada.actor.caller], "Re: Hi", "b2", first)
    again = await send_message(hub, ada.actor, [bob.actor.caller], "Re: Re", "b3", reply)
    inbox = await get_messages(hub, bob.actor)
    assert [m["id"] for m in inbox] == [again, first]
    assert inbox[0]["thread_id"] == first
    assert [m["id"] for m in await get_messages(hub, bob.actor, limit=1, offset=1)] == [first]
    before = inbox[1]["sent"] - timedelta(seconds=1)
    assert [m["id"] for m in await get_messages(hub, bob.actor, cutoff=before)] == [again, first]
    after = inbox[0]["sent"] + timedelta(seconds=1)
    assert await get_messages(hub, bob.actor, cutoff=after) == []


async def test_recipients_and_replies_reveal_nothing(hub: Hub, make_person: MakePerson) -> None:
    ada, bob, eve = await make_person(), await make_person(), await make_person()
    # Addresses without an account are dropped; none left means nothing is sent.
    assert await send_message(hub, ada.actor, ["nobody@example.com"], "s", "b") is None
    assert await send_message(hub, ada.actor, [], "s", "b") is None
    private = await send_message(hub, ada.actor, [bob.actor.caller], "private", "b")
    # Replying to someone else's message starts no thread in it.
    mine = await send_message(hub, eve.actor, [bob.actor.caller], "x", "y", private)
    (got,) = [m for m in await get_messages(hub, bob.actor) if m["id"] == mine]
    assert got["thread_id"] is None
    # Duplicates collapse.
    twice = await send_message(hub, ada.actor, [bob.actor.caller, bob.email], "d", "d")
    assert [
        m["to_ids"] for m in await get_messages(hub, ada.actor, kind="sent") if m["id"] == twice
    ] == [[bob.actor.caller]]


async def test_send_errors(hub: Hub, make_person: MakePerson) -> None:
    ada, bob = await make_person(), await make_person()
    ghost = str(uuid.uuid4())
    with pytest.raises(Invalid, match=f"invalid account_id -- {ghost}"):
        await send_message(hub, ada.actor, [bob.actor.caller, ghost], "s", "b")
    with pytest.raises(Invalid, match="invalid account_id -- not-an-id"):
        await send_message(hub, ada.actor, ["not-an-id"], "s", "b")
    with pytest.raises(Invalid, match="at most 100 recipients"):
        await send_message(hub, ada.actor, [bob.actor.caller] * 101, "s", "b")
    with pytest.raises(Invalid, match="subject must be at most"):
        await send_message(hub, ada.actor, [bob.actor.caller], "s" * 2000, "b")
    with pytest.raises(Invalid, match="body must be at most"):
        await send_message(hub, ada.actor, [bob.actor.caller], "s", "b" * 100_001)
    with pytest.raises(Invalid, match="NUL"):
        await send_message(hub, ada.actor, [bob.actor.caller], "s\x00", "b")
    with pytest.raises(NotSignedIn):
        await send_message(hub, type(ada.actor).anonymous(), [bob.actor.caller], "s", "b")
    assert await get_messages(hub, bob.actor) == []
    with pytest.raises(Invalid, match="limit must be at most 500"):
        await get_messages(hub, bob.actor, limit=501)
    with pytest.raises(Invalid, match="must not be negative"):
        await get_messages(hub, bob.actor, offset=-1)
    with pytest.raises(Invalid, match="type must be one of"):
        await get_messages(hub, bob.actor, kind="all")


async def test_sending_is_throttled(hub: Hub, make_person: MakePerson) -> None:
    ada, bob = await make_person(), await make_person()
    admin = await make_person(admin=True)
    for n in range(5):
        assert await send_message(hub, ada.actor, [bob.actor.caller], f"{n}", "b")
    with pytest.raises(LimitExceeded, match="at most 5 message"):
        await send_message(hub, ada.actor, [bob.actor.caller], "six", "b")
    assert [m["subject"] for m in await get_messages(hub, bob.actor)] == ["4", "3", "2", "1", "0"]
    for n in range(6):
        assert await send_message(hub, admin.actor, [bob.actor.caller], f"a{n}", "b")
