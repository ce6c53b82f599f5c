"""Organizations through the domain: who may create and manage them, members and admins,
accounts created for members, sign-in tokens and messages to all members."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from calchub.accounts.auth_tokens import redeem_auth_token
from calchub.db.tables import accounts
from calchub.errors import Conflict, Invalid, NotFound, NotSignedIn, Refused
from calchub.hub import Hub
from calchub.messages.get import get_messages
from calchub.organizations import orgs
from calchub.organizations.access import NOT_ALLOWED
from tests.domain.conftest import MakePerson


def _name() -> str:
    return f"org-{uuid.uuid4().hex[:12]}"


async def _org_of(hub: Hub, account_id: str) -> str | None:
    async with hub.engine.connect() as conn:
        value = await conn.scalar(select(accounts.c.org).where(accounts.c.account_id == account_id))
    return None if value is None else str(value)


async def test_site_admins_create_and_appoint(hub: Hub, make_person: MakePerson) -> None:
    site, boss, member, outsider = (
        await make_person(admin=True),
        await make_person(),
        await make_person(),
        await make_person(),
    )
    name = _name()
    with pytest.raises(Refused, match="only admins may create organizations"):
        await orgs.create(hub, boss.actor, name)
    org_id = await orgs.create(hub, site.actor, name)
    assert uuid.UUID(org_id)
    with pytest.raises(Conflict, match=f"name {name} is already used"):
        await orgs.create(hub, site.actor, name)
    for bad in ("", "x" * 40, "a b", "../x", "-lead"):
        with pytest.raises(Invalid):
            await orgs.create(hub, site.actor, bad)
    with pytest.raises(Refused, match="only site admins can make a user an organization admin"):
        await orgs.add_admin(hub, boss.actor, name, boss.actor.caller)
    await orgs.add_admin(hub, site.actor, name, boss.email)
    await orgs.add_admin(hub, site.actor, name, boss.actor.caller)  # no duplicate
    assert await _org_of(hub, boss.actor.caller) == name
    with pytest.raises(Refused, match="only site admins can add/move a user to an org"):
        await orgs.add_user(hub, boss.actor, name, member.actor.caller)
    await orgs.add_user(hub, site.actor, name, member.actor.caller)
    got = await orgs.get(hub, boss.actor, name)
    assert got == {
        "name": name,
        "title": None,
        "description": None,
        "link": None,
        "email_address": None,
        "admin_account_ids": [boss.actor.caller],
    }
    assert {"name": name, "title": None, "admin_account_ids": [boss.actor.caller]} in (
        await orgs.get_all(hub, site.actor)
    )
    with pytest.raises(Refused, match="must be a site admin"):
        await orgs.get_all(hub, boss.actor)
    # Members and outsiders do not manage it.
    for who in (member, outsider):
        with pytest.raises(Refused, match=NOT_ALLOWED):
            await orgs.get(hub, who.actor, name)
        with pytest.raises(Refused, match=NOT_ALLOWED):
            await orgs.get_users(hub, who.actor, name)
    with pytest.raises(NotSignedIn):
        await orgs.get(hub, type(site.actor).anonymous(), name)
    users = await orgs.get_users(hub, boss.actor, name)
    assert {u["account_id"] for u in users} == {boss.actor.caller, member.actor.caller}
    assert set(users[0]) == {
        "first_name",
        "last_name",
        "account_id",
        "email_address",
        "last_active",
    }
    # Unknown accounts and orgs.
    with pytest.raises(NotFound, match=r"no such account .nobody@example\.com."):
        await orgs.add_admin(hub, site.actor, name, "nobody@example.com")
    with pytest.raises(NotFound, match="cannot find user"):
        await orgs.add_user(hub, site.actor, name, str(uuid.uuid4()))
    with pytest.raises(NotFound, match="no org named 'missing-org'"):
        await orgs.get(hub, site.actor, "missing-org")
    with pytest.raises(NotFound, match="no org named"):
        await orgs.add_user(hub, site.actor, "missing-org", outsider.actor.caller)
    # One organization per account.
    other = _name()
    await orgs.create(hub, site.actor, other)
    with pytest.raises(Conflict, match="already member of another organization"):
        await orgs.add_admin(hub, site.actor, other, member.email)
    await orgs.add_user(hub, site.actor, other, boss.actor.caller)
    assert await _org_of(hub, boss.actor.caller) == other
    assert (await orgs.get(hub, site.actor, name))["admin_account_ids"] == []


async def test_org_admins_manage_their_members(hub: Hub, make_person: MakePerson) -> None:
    site, boss, member, rival = (
        await make_person(admin=True),
        await make_person(),
        await make_person(),
        await make_person(),
    )
    name, elsewhere = _name(), _name()
    await orgs.create(hub, site.actor, name)
    await orgs.create(hub, site.actor, elsewhere)
    await orgs.add_admin(hub, site.actor, name, boss.actor.caller)
    await orgs.add_admin(hub, site.actor, elsewhere, rival.actor.caller)
    await orgs.add_user(hub, site.actor, name, member.actor.caller)
    await orgs.set_fields(
        hub,
        boss.actor,
        name,
        {"title": "Maths", "link": "https://example.org", "description": None},
    )
    got = await orgs.get(hub, boss.actor, name)
    assert (got["title"], got["link"], got["description"]) == ("Maths", "https://example.org", None)
    with pytest.raises(Invalid, match="email_address"):
        await orgs.set_fields(hub, boss.actor, name, {"email_address": "not an address"})
    with pytest.raises(Invalid, match="title must be at most"):
        await orgs.set_fields(hub, boss.actor, name, {"title": "t" * 1000})
    with pytest.raises(Refused, match=NOT_ALLOWED):
        await orgs.set_fields(hub, rival.actor, name, {"title": "taken over"})
    # An admin of another org can neither remove nor see this org's members.
    with pytest.raises(Refused, match=NOT_ALLOWED):
        await orgs.remove_user(hub, rival.actor, name, member.actor.caller)
    await orgs.remove_user(hub, rival.actor, elsewhere, member.actor.caller)  # not theirs: no-op
    assert await _org_of(hub, member.actor.caller) == name
    # Accounts created by the org's admin belong to it.
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    new_id = await orgs.create_user(hub, boss.actor, name, email, "New", "Member")
    assert await _org_of(hub, new_id) == name
    with pytest.raises(Refused, match=NOT_ALLOWED):
        await orgs.create_user(hub, rival.actor, name, f"x{email}")
    with pytest.raises(Refused, match=NOT_ALLOWED):
        await orgs.create_user(hub, boss.actor, _name(), f"y{email}")
    # Sign-in links for members, not for site admins, not across orgs.
    link = await orgs.create_token(hub, boss.actor, email)
    assert link["url"].endswith(f"/auth/impersonate?auth_token={link['token']}")
    assert len(link["token"]) == 24
    assert await redeem_auth_token(hub, link["token"]) == new_id
    await orgs.expire_token(hub, boss.actor, link["token"])
    assert await redeem_auth_token(hub, link["token"]) is None
    with pytest.raises(Refused, match=NOT_ALLOWED):
        await orgs.create_token(hub, rival.actor, new_id)
    with pytest.raises(Refused, match="user is not in an org"):
        await orgs.create_token(hub, boss.actor, site.actor.caller)
    await orgs.add_user(hub, site.actor, name, site.actor.caller)
    with pytest.raises(Refused, match="only site admins may sign in as a site admin"):
        await orgs.create_token(hub, boss.actor, site.actor.caller)
    # One message to every member.
    await orgs.message(hub, boss.actor, name, "Welcome", "to the org")
    (received,) = await get_messages(hub, member.actor)
    assert received["subject"] == "Welcome" and received["from_id"] == boss.actor.caller
    assert set(received["to_ids"]) == {
        boss.actor.caller,
        member.actor.caller,
        new_id,
        site.actor.caller,
    }
    with pytest.raises(Refused, match=NOT_ALLOWED):
        await orgs.message(hub, rival.actor, name, "spam", "spam")
    # Admins are demoted before they are removed.
    with pytest.raises(Refused, match="first remove them from being an admin"):
        await orgs.remove_user(hub, boss.actor, name, boss.actor.caller)
    await orgs.remove_admin(hub, site.actor, name, boss.email)
    await orgs.remove_user(hub, site.actor, name, boss.actor.caller)
    assert await _org_of(hub, boss.actor.caller) is None
    with pytest.raises(Refused, match=NOT_ALLOWED):
        await orgs.get(hub, boss.actor, name)
