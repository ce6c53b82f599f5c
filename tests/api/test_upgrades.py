"""Member upgrades over real HTTP: get_available_upgrades, and a member setting their own
upgrades on a project through `query` (within what they have; nothing without billing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update

from calchub.db.tables import project_users
from calchub.licenses.upgrades import UPGRADE_FIELDS
from tests.api.expect import NO_ACCOUNT_KEY, unexpected
from tests.api.queries import create, err, join, ok, q
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]
ZEROS = dict.fromkeys(UPGRADE_FIELDS, 0)
USERS_ERROR = "FATAL: error setting 'users' -- Error: "


def _set_upgrades(
    api: ApiClient, key: str, project_id: str, account_id: str, upgrades: dict[str, Any]
) -> Any:
    query = {"projects": {"project_id": project_id, "users": {account_id: {"upgrades": upgrades}}}}
    return q(api, key, query)


def _stored(db: Database, project_id: str, account_id: str) -> Any:
    rows = db.execute(
        select(project_users.c.upgrades).where(
            project_users.c.project_id == project_id, project_users.c.account_id == account_id
        )
    )
    return rows[0].upgrades


def test_available_upgrades_are_zero_without_billing(api: ApiClient, user: User) -> None:
    reply = api.call("get_available_upgrades", user.api_key, {"id": "u1"})
    assert reply.status == 200
    assert reply.body == {
        "event": "available_upgrades",
        "id": "u1",
        "total": ZEROS,
        "excess": ZEROS,
        "available": ZEROS,
    }
    reply = api.call("get_available_upgrades", user.api_key, form={"id": "u2"}, bearer=True)
    assert reply.event == "available_upgrades" and reply["available"] == ZEROS


def test_upgrades_applied_by_an_admin_show_as_excess(
    api: ApiClient, db: Database, make_user: MakeUser, admin_key: str
) -> None:
    owner, other = make_user(), make_user()
    first, second = create(api, owner), create(api, owner)
    assert ok(_set_upgrades(api, admin_key, first, owner.account_id, {"cores": 1})) == {}
    assert ok(_set_upgrades(api, admin_key, second, owner.account_id, {"cores": 2})) == {}
    db.execute(
        update(project_users)
        .where(project_users.c.project_id == second)
        .values(upgrades={"memory": 500, "cores": 2, "unknown": 7, "network": "x"})
    )
    reply = api.call("get_available_upgrades", owner.api_key, {})
    assert reply["excess"] == {**ZEROS, "cores": 3, "memory": 500}
    assert reply["total"] == ZEROS and reply["available"] == ZEROS
    # Another account's upgrades are its own.
    reply = api.call("get_available_upgrades", other.api_key, {})
    assert reply["excess"] == ZEROS


def test_available_upgrades_bad_input_and_auth(api: ApiClient, user: User) -> None:
    reply = api.call("get_available_upgrades", user.api_key, {"account_id": user.account_id})
    assert (reply.status, reply.body) == (400, unexpected("account_id"))
    reply = api.call("get_available_upgrades", None, {})
    assert (reply.status, reply.body) == (
        400,
        {"error": "You must provide authentication via an API key."},
    )
    reply = api.call("get_available_upgrades", "sk_wrong", {})
    assert (reply.status, reply.body) == (400, NO_ACCOUNT_KEY)


def test_member_zeroes_own_upgrades(
    api: ApiClient, db: Database, make_user: MakeUser, admin_key: str
) -> None:
    owner, collab = make_user(), make_user()
    project = create(api, owner)
    join(db, project, collab)
    # A course tool zeroes every student's upgrades: all zero is always accepted.
    assert ok(_set_upgrades(api, collab.api_key, project, collab.account_id, ZEROS)) == {}
    assert _stored(db, project, collab.account_id) == ZEROS
    # Upgrades an admin gave may be lowered by the member, not raised again.
    assert ok(_set_upgrades(api, admin_key, project, owner.account_id, {"memory": 1000})) == {}
    assert ok(_set_upgrades(api, owner.api_key, project, owner.account_id, {"memory": 0})) == {}
    assert _stored(db, project, owner.account_id) == {"memory": 0}
    reply = _set_upgrades(api, owner.api_key, project, owner.account_id, {"memory": 1})
    assert err(reply) == USERS_ERROR + (
        "not enough upgrades available: asked for 1 more of 'memory', but 0 available"
    )


def test_member_cannot_upgrade_beyond_available(
    api: ApiClient, db: Database, make_user: MakeUser
) -> None:
    owner, collab, stranger = make_user(), make_user(), make_user()
    project = create(api, owner)
    join(db, project, collab)
    reply = _set_upgrades(api, owner.api_key, project, owner.account_id, {"cores": 4})
    assert err(reply) == USERS_ERROR + (
        "not enough upgrades available: asked for 4 more of 'cores', but 0 available"
    )
    reply = _set_upgrades(api, owner.api_key, project, owner.account_id, {"cores": 0.5})
    assert "asked for 0.5 more of 'cores'" in err(reply)
    # A negative amount would hand back upgrades to spend elsewhere.
    reply = _set_upgrades(api, owner.api_key, project, owner.account_id, {"cores": -4})
    assert err(reply) == USERS_ERROR + "upgrades field 'cores' must be between 0 and 1000000000"
    reply = _set_upgrades(api, owner.api_key, project, owner.account_id, {"cores": 10**400})
    assert err(reply) == USERS_ERROR + "upgrades field 'cores' must be between 0 and 1000000000"
    assert _stored(db, project, owner.account_id) is None
    # Another member's upgrades, or a project one is not in, stay out of reach.
    reply = _set_upgrades(api, owner.api_key, project, collab.account_id, ZEROS)
    assert err(reply) == (
        f"FATAL: user '{owner.account_id}' tried to change user '{collab.account_id}' "
        "allocation toward a project"
    )
    reply = _set_upgrades(api, stranger.api_key, project, stranger.account_id, ZEROS)
    assert reply.event == "error"
    assert _stored(db, project, collab.account_id) is None
    reply = _set_upgrades(api, owner.api_key, project, owner.account_id, {"gpu": 0})
    assert err(reply) == USERS_ERROR + "invalid upgrades field 'gpu'"
    reply = _set_upgrades(api, owner.api_key, project, owner.account_id, {"cores": "4"})
    assert err(reply) == USERS_ERROR + "invalid upgrades field 'cores'"
