"""Rules for setting a project's `users` map (§2.7 and its Recommendation)."""

from __future__ import annotations

from typing import Any

import pytest

from calchub.licenses import upgrades
from calchub.userquery import users_map
from calchub.userquery.errors import QueryError
from calchub.userquery.users_map import Member, changes, validate

ME = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
RANGE = "must be between 0 and 1000000000"
NONE = dict.fromkeys(upgrades.UPGRADE_FIELDS, 0)
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
        ({"upgrades": {"cores": -1}}, f"upgrades field 'cores' {RANGE}"),
        ({"upgrades": {"memory": float("inf")}}, f"upgrades field 'memory' {RANGE}"),
        ({"upgrades": {"memory": float("nan")}}, f"upgrades field 'memory' {RANGE}"),
        ({"upgrades": {"memory": 10**400}}, f"upgrades field 'memory' {RANGE}"),
    ],
)
def test_validate_errors(entry: dict[str, Any], message: str) -> None:
    assert _error(lambda: validate({ME: entry})) == _users(message)


def test_own_hide() -> None:
    assert changes({ME: {"hide": True}}, MEMBERS, ME, False, NONE) == {
        ME: Member("owner", True, {})
    }
    assert changes({ME: {"hide": False, "group": "owner"}}, MEMBERS, ME, False, NONE) == {}


def test_others_and_membership_refused() -> None:
    assert _error(lambda: changes({OTHER: {"hide": True}}, MEMBERS, ME, False, NONE)) == _users(
        users_map.OTHERS
    )
    assert _error(
        lambda: changes({OTHER: {"upgrades": {"cores": 2}}}, MEMBERS, ME, False, NONE)
    ) == (f"FATAL: user '{ME}' tried to change user '{OTHER}' allocation toward a project")
    same = changes({OTHER: {"upgrades": {"cores": 1}}}, MEMBERS, ME, False, NONE)
    assert same == {}
    for entry in ({"group": "owner"},):
        assert _error(lambda e=entry: changes({OTHER: e}, MEMBERS, ME, False, NONE)) == _users(
            users_map.MEMBERSHIP
        )
    stranger = "33333333-3333-4333-8333-333333333333"
    assert _error(lambda: changes({stranger: {"hide": True}}, MEMBERS, ME, True, NONE)) == _users(
        users_map.MEMBERSHIP
    )


def test_upgrades_within_what_is_available() -> None:
    # Without billing nothing is available: raising is refused, zeroing always allowed.
    assert _error(lambda: changes({ME: {"upgrades": {"cores": 1}}}, MEMBERS, ME, False, NONE)) == (
        _users("not enough upgrades available: asked for 1 more of 'cores', but 0 available")
    )
    assert changes({ME: {"upgrades": {"cores": 0, "memory": 0}}}, MEMBERS, ME, False, NONE) == {
        ME: Member("owner", False, {"cores": 0, "memory": 0})
    }
    lowered = changes({OTHER: {"upgrades": {"cores": 0}}}, MEMBERS, OTHER, False, NONE)
    assert lowered == {OTHER: Member("collaborator", False, {"cores": 0})}
    some = {**NONE, "memory": 1000}
    got = changes({ME: {"upgrades": {"memory": 1000}}}, MEMBERS, ME, False, some)
    assert got == {ME: Member("owner", False, {"memory": 1000})}
    assert _error(lambda: changes({ME: {"upgrades": {"memory": 1001}}}, MEMBERS, ME, False, some))


def test_available_is_total_less_applied() -> None:
    total = {**NONE, "cores": 2}
    applied = upgrades.sum_upgrades([{"cores": 1, "memory": 500}, None, {"cores": 0.5, "x": 9}])
    got = upgrades.tally(total, applied)
    assert got.available["cores"] == 0.5 and got.excess["cores"] == 0
    assert got.available["memory"] == 0 and got.excess["memory"] == 500
    assert set(got.total) == set(upgrades.UPGRADE_FIELDS)


def test_admin_sets_anyones_upgrades() -> None:
    got = changes({OTHER: {"upgrades": {"memory": 500}}}, MEMBERS, ME, True, NONE)
    assert got == {OTHER: Member("collaborator", False, {"cores": 1, "memory": 500})}
