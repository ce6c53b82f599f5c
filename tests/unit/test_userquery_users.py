"""Rules for setting a project's `users` map (§2.7 and its Recommendation)."""

from __future__ import annotations

from typing import Any

import pytest

from calchub.userquery import users_map
from calchub.userquery.errors import QueryError
from calchub.userquery.users_map import Member, changes, validate

ME = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
MEMBERS = {
    ME: Member("owner", False, {}),
    OTHER: Member("collaborator", False, {"cores": 1}),
}


def _error(call: Any) -> str:
    with pytest.raises(QueryError) as info:
        call()
    return info.value.message


def _users(message: str) -> str:
    return f"FATAL: error setting 'users' -- Error: {message}"


def test_validate_drops_non_uuid_keys() -> None:
    assert validate({"not-a-uuid": {"hide": True}, ME: {"hide": True}}) == {ME: {"hide": True}}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"foo": 1}, "unknown field 'foo"),
        ({"group": "viewer"}, "invalid value for field 'group'"),
        ({"hide": "yes"}, "invalid type for field 'hide'"),
        ({"upgrades": 3}, "invalid type for field 'upgrades'"),
        ({"upgrades": {"gpu": 1}}, "invalid upgrades field 'gpu'"),
        ({"ssh_keys": {}}, users_map.SSH_KEYS),
    ],
)
def test_validate_errors(entry: dict[str, Any], message: str) -> None:
    assert _error(lambda: validate({ME: entry})) == _users(message)


def test_own_hide() -> None:
    assert changes({ME: {"hide": True}}, MEMBERS, ME, False) == {ME: Member("owner", True, {})}
    assert changes({ME: {"hide": False, "group": "owner"}}, MEMBERS, ME, False) == {}


def test_others_and_membership_refused() -> None:
    assert _error(lambda: changes({OTHER: {"hide": True}}, MEMBERS, ME, False)) == _users(
        users_map.OTHERS
    )
    assert _error(lambda: changes({OTHER: {"upgrades": {"cores": 2}}}, MEMBERS, ME, False)) == (
        f"FATAL: user '{ME}' tried to change user '{OTHER}' allocation toward a project"
    )
    same = changes({OTHER: {"upgrades": {"cores": 1}}}, MEMBERS, ME, False)
    assert same == {}
    for entry in ({"group": "owner"},):
        assert _error(lambda e=entry: changes({OTHER: e}, MEMBERS, ME, False)) == _users(
            users_map.MEMBERSHIP
        )
    stranger = "33333333-3333-4333-8333-333333333333"
    assert _error(lambda: changes({stranger: {"hide": True}}, MEMBERS, ME, True)) == _users(
        users_map.MEMBERSHIP
    )


def test_upgrades_need_admin() -> None:
    assert _error(lambda: changes({ME: {"upgrades": {"cores": 1}}}, MEMBERS, ME, False)) == (
        _users(users_map.UPGRADES)
    )
    got = changes({OTHER: {"upgrades": {"memory": 500}}}, MEMBERS, ME, True)
    assert got == {OTHER: Member("collaborator", False, {"cores": 1, "memory": 500})}
