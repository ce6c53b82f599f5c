"""The one access rule (calchub.access): every role against every kind of operation."""

from __future__ import annotations

import pytest

from calchub.access import Role, may_act_for_account, role_of
from calchub.actor import Actor

PROJECT = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
ME = "33333333-3333-4333-8333-333333333333"


@pytest.mark.parametrize(
    ("actor", "group", "role"),
    [
        (Actor(ME), "owner", Role.OWNER),
        (Actor(ME), "collaborator", Role.COLLABORATOR),
        (Actor(ME), "viewer", Role.VIEWER),
        (Actor(ME), None, Role.NONE),
        (Actor(ME), "invited", Role.NONE),
        (Actor(ME, is_admin=True), None, Role.ADMIN),
        (Actor(ME, is_admin=True), "viewer", Role.ADMIN),
        (Actor(ME, is_admin=True), "owner", Role.OWNER),
        (Actor(None, project_id=PROJECT), None, Role.PROJECT),
        (Actor(None, project_id=OTHER), None, Role.NONE),
        # A project key never borrows an account's membership.
        (Actor(ME, project_id=OTHER), "owner", Role.NONE),
        (Actor.anonymous(), None, Role.NONE),
    ],
)
def test_role_of(actor: Actor, group: str | None, role: Role) -> None:
    assert role_of(actor, PROJECT, group) is role


@pytest.mark.parametrize(
    ("role", "read", "write", "own"),
    [
        (Role.NONE, False, False, False),
        (Role.VIEWER, True, False, False),
        (Role.COLLABORATOR, True, True, False),
        (Role.OWNER, True, True, True),
        (Role.PROJECT, True, True, True),
        (Role.ADMIN, True, True, True),
    ],
)
def test_what_each_role_may_do(role: Role, read: bool, write: bool, own: bool) -> None:
    assert (role.may_read, role.may_write, role.may_own) == (read, write, own)


def test_acting_for_an_account() -> None:
    assert may_act_for_account(Actor(ME), ME.upper())
    assert not may_act_for_account(Actor(ME), OTHER)
    assert may_act_for_account(Actor(ME, is_admin=True), OTHER)
    assert not may_act_for_account(Actor(None, project_id=PROJECT), ME)
    assert not may_act_for_account(Actor.anonymous(), ME)
