"""The site-license tables of `query` over real HTTP (spec §3.15): admins' `site_licenses`,
managers' `manager_site_licenses`, anybody's `site_license_public_info`, and the admins'
search and usage tables."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from calchub.db.tables import projects, site_licenses
from calchub.db.types import utcnow
from tests.api.queries import create, err, join, ok, q
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]
ADMIN_ONLY = "FATAL: user must be an admin"
BAD_MANAGERS = "Error: managers must be an array of valid uuid's"
MULTI_ONLY = "Error: only query requesting multiple results is implemented"


def _new_license(api: ApiClient, admin_key: str, **fields: Any) -> str:
    license_id = str(uuid.uuid4())
    ok(q(api, admin_key, {"site_licenses": {"id": license_id, **fields}}))
    return license_id


def _stored(db: Database, license_id: str) -> Any:
    rows = db.execute(select(site_licenses).where(site_licenses.c.id == license_id))
    return rows[0] if rows else None


def _apply(db: Database, project_id: str, license_id: str, *, running: bool) -> None:
    """The license applied to the project, which is (or is not) running."""
    current = db.execute(select(projects.c.site_license).where(projects.c.project_id == project_id))
    licenses = dict(current[0].site_license or {})
    licenses[license_id] = {}
    db.execute(
        update(projects)
        .where(projects.c.project_id == project_id)
        .values(site_license=licenses, run_state="running" if running else "opened")
    )


@pytest.fixture
def people(api: ApiClient, db: Database, make_user: MakeUser, admin_key: str) -> dict[str, Any]:
    """A license managed by `manager`, who owns a project with `collab` in it."""
    manager, collab, stranger = make_user(), make_user(), make_user(last_name="Outsider")
    project_id = create(api, manager)
    join(db, project_id, collab)
    license_id = _new_license(
        api, admin_key, title="Physics 101", managers=[manager.account_id], run_limit=3
    )
    return {
        "manager": manager,
        "collab": collab,
        "stranger": stranger,
        "project_id": project_id,
        "license_id": license_id,
    }


# --- site_licenses --------------------------------------------------------------------------


def test_site_licenses_admin_set_and_get(
    api: ApiClient, db: Database, admin_key: str, user: User
) -> None:
    license_id = str(uuid.uuid4()).upper()  # stored in lower case
    fields = {
        "title": "Course license",
        "description": "For the spring term",
        "info": {"purchased": {"by": "office"}},
        "expires": "2031-02-03T04:05:06.789Z",
        "activates": "2021-01-01T00:00:00Z",
        "managers": [user.account_id.upper()],
        "restricted": False,
        "upgrades": {"memory": 1000, "cores": 1},
        "quota": {"ram": 2, "cpu": 1, "disk": 3, "member": True, "user": "academic"},
        "run_limit": 10,
        "apply_limit": 20,
    }
    assert ok(q(api, admin_key, {"site_licenses": {"id": license_id, **fields}})) == {}
    stored = _stored(db, license_id.lower())
    assert stored is not None and stored.managers == [user.account_id]
    assert stored.created is not None  # filled in when the license is created

    row = ok(
        q(api, admin_key, {"site_licenses": {"id": license_id.lower(), **dict.fromkeys(fields)}})
    )
    assert row["site_licenses"] == {
        "id": license_id.lower(),
        **fields,
        "expires": "2031-02-03T04:05:06.789Z",
        "activates": "2021-01-01T00:00:00.000Z",
        "managers": [user.account_id],
    }
    listed = ok(q(api, admin_key, {"site_licenses": [{"id": None, "created": None}]}))
    assert license_id.lower() in {entry["id"] for entry in listed["site_licenses"]}


def test_site_licenses_maps_merge_and_arrays_replace(
    api: ApiClient, db: Database, admin_key: str, make_user: MakeUser
) -> None:
    first, second = make_user(), make_user()
    license_id = _new_license(
        api, admin_key, info={"a": 1}, upgrades={"memory": 500}, managers=[first.account_id]
    )
    ok(
        q(
            api,
            admin_key,
            {
                "site_licenses": {
                    "id": license_id,
                    "info": {"b": 2},
                    "upgrades": {"cores": 2},
                    "managers": [second.account_id],
                }
            },
        )
    )
    stored = _stored(db, license_id)
    assert stored.info == {"a": 1, "b": 2}
    assert stored.upgrades == {"memory": 500, "cores": 2}
    assert stored.managers == [second.account_id]
    # With {set:true} a null removes a key from a map.
    ok(
        q(
            api,
            admin_key,
            {"site_licenses": {"id": license_id, "info": {"a": None}}},
            options=[{"set": True}],
        )
    )
    assert _stored(db, license_id).info == {"b": 2}


def test_site_licenses_default_order_is_most_recently_used_first(
    api: ApiClient, admin_key: str
) -> None:
    now = utcnow()
    older = _new_license(api, admin_key, last_used=(now - timedelta(days=2)).isoformat())
    newer = _new_license(api, admin_key, last_used=(now - timedelta(days=1)).isoformat())
    never = _new_license(api, admin_key)
    rows = ok(q(api, admin_key, {"site_licenses": [{"id": None, "last_used": None}]}))
    order = [row["id"] for row in rows["site_licenses"] if row["id"] in (older, newer, never)]
    # Descending puts NULLs first, as PostgreSQL does.
    assert order == [never, newer, older]
    # The default limit of 500 is separate from the order, so a user's limit applies alone.
    limited = ok(q(api, admin_key, {"site_licenses": [{"id": None}]}, options=[{"limit": 1}]))
    assert len(limited["site_licenses"]) == 1


NEW = "<a new license id>"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "abc"}, 'error: invalid input syntax for type uuid: "abc"'),
        ({"title": "no id"}, "FATAL: query must specify (primary) key 'id'"),
        ({"id": NEW, "run_limit": "many"}, 'error: invalid input syntax for type integer: "many"'),
        (
            {"id": NEW, "run_limit": 2**40},
            f'error: value "{2**40}" is out of range for type integer',
        ),
        ({"id": NEW, "restricted": "yes"}, 'error: invalid input syntax for type boolean: "yes"'),
        ({"id": NEW, "expires": "soon"}, 'error: invalid input syntax for type timestamp: "soon"'),
        (
            {"id": NEW, "info": "text"},
            "FATAL: error setting 'info' -- Error: site_licenses.info must be an object",
        ),
        (
            {"id": NEW, "quota": [1, 2]},
            "FATAL: error setting 'quota' -- Error: site_licenses.quota must be an object",
        ),
        ({"id": NEW, "managers": "someone"}, BAD_MANAGERS),
        ({"id": NEW, "managers": ["not-a-uuid"]}, BAD_MANAGERS),
        ({"id": NEW, "owner": "me"}, "FATAL: changing site_licenses.owner not allowed"),
    ],
)
def test_site_licenses_bad_input(
    api: ApiClient, db: Database, admin_key: str, fields: dict[str, Any], message: str
) -> None:
    license_id = str(uuid.uuid4())
    query = {name: license_id if value == NEW else value for name, value in fields.items()}
    assert err(q(api, admin_key, {"site_licenses": query})) == message
    assert _stored(db, license_id) is None  # nothing half-written


def test_site_licenses_other_errors(api: ApiClient, admin_key: str) -> None:
    license_id = _new_license(api, admin_key)
    assert (
        err(q(api, admin_key, {"site_licenses": {"id": license_id}}, options=[{"delete": True}]))
        == "FATAL: delete from site_licenses not allowed"
    )
    assert (
        err(q(api, admin_key, {"site_licenses": {"id": license_id, "owner": None}}))
        == "FATAL: user get query not allowed for site_licenses.owner"
    )


def test_site_licenses_huge_text_is_stored(api: ApiClient, db: Database, admin_key: str) -> None:
    description = "x" * 200_000
    license_id = _new_license(api, admin_key, description=description)
    assert _stored(db, license_id).description == description


# --- manager_site_licenses ------------------------------------------------------------------


def test_manager_lists_own_licenses_with_every_column(
    api: ApiClient, admin_key: str, people: dict[str, Any]
) -> None:
    manager, stranger = people["manager"], people["stranger"]
    rows = ok(q(api, manager.api_key, {"manager_site_licenses": [{"id": None}]}))
    mine = [row for row in rows["manager_site_licenses"] if row["id"] == people["license_id"]]
    assert len(mine) == 1
    # Every stored column comes back, whatever was asked for.
    assert mine[0]["title"] == "Physics 101"
    assert mine[0]["managers"] == [manager.account_id]
    assert mine[0]["run_limit"] == 3
    assert "created" in mine[0]
    others = ok(q(api, stranger.api_key, {"manager_site_licenses": [{"id": None}]}))
    assert people["license_id"] not in {row["id"] for row in others["manager_site_licenses"]}
    # Admins see only the licenses they manage too.
    admins = ok(q(api, admin_key, {"manager_site_licenses": [{"id": None}]}))
    assert people["license_id"] not in {row["id"] for row in admins["manager_site_licenses"]}


def test_manager_list_needs_the_array_form(api: ApiClient, people: dict[str, Any]) -> None:
    reply = q(api, people["manager"].api_key, {"manager_site_licenses": {"id": None}})
    assert err(reply) == MULTI_ONLY
    reply = q(api, people["manager"].api_key, {"manager_site_licenses": [{"secret": None}]})
    assert err(reply) == "FATAL: user get query not allowed for manager_site_licenses.secret"


def test_manager_changes_title_description_and_managers(
    api: ApiClient, db: Database, people: dict[str, Any]
) -> None:
    manager, collab = people["manager"], people["collab"]
    license_id = people["license_id"]
    query = {
        "id": license_id,
        "title": "Physics 102",
        "description": "renamed",
        "managers": [manager.account_id, collab.account_id.upper()],
    }
    assert ok(q(api, manager.api_key, {"manager_site_licenses": query})) == {}
    stored = _stored(db, license_id)
    assert (stored.title, stored.description) == ("Physics 102", "renamed")
    assert stored.managers == [manager.account_id, collab.account_id]
    # The new manager may now change it as well.
    ok(q(api, collab.api_key, {"manager_site_licenses": {"id": license_id, "title": "P3"}}))
    assert _stored(db, license_id).title == "P3"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": 5}, "Error: title must be a string"),
        ({"description": ["x"]}, "Error: description must be a string"),
        ({"managers": "abc"}, BAD_MANAGERS),
        ({"managers": ["abc"]}, BAD_MANAGERS),
        ({"run_limit": 100}, "FATAL: changing manager_site_licenses.run_limit not allowed"),
        ({"quota": {"ram": 100}}, "FATAL: changing manager_site_licenses.quota not allowed"),
    ],
)
def test_manager_set_bad_input(
    api: ApiClient, db: Database, people: dict[str, Any], fields: dict[str, Any], message: str
) -> None:
    license_id = people["license_id"]
    reply = q(
        api, people["manager"].api_key, {"manager_site_licenses": {"id": license_id, **fields}}
    )
    assert err(reply) == message
    stored = _stored(db, license_id)
    assert (stored.title, stored.run_limit, stored.quota) == ("Physics 101", 3, None)


def test_manager_set_refused_to_everybody_else(
    api: ApiClient, db: Database, admin_key: str, people: dict[str, Any]
) -> None:
    license_id = people["license_id"]
    for key in (people["collab"].api_key, people["stranger"].api_key, admin_key):
        reply = q(api, key, {"manager_site_licenses": {"id": license_id, "title": "mine"}})
        assert err(reply) == "Error: user must be a manager of the license to change it"
    unknown = str(uuid.uuid4())
    reply = q(
        api, people["manager"].api_key, {"manager_site_licenses": {"id": unknown, "title": "x"}}
    )
    assert err(reply) == "Error: user must be a manager of the license to change it"
    reply = q(api, people["manager"].api_key, {"manager_site_licenses": {"title": "x"}})
    assert err(reply) == "FATAL: query must specify (primary) key 'id'"
    reply = q(
        api, people["manager"].api_key, {"manager_site_licenses": {"id": "nope", "title": "x"}}
    )
    assert err(reply) == 'error: invalid input syntax for type uuid: "nope"'
    assert _stored(db, license_id).title == "Physics 101"


# --- site_license_public_info ---------------------------------------------------------------


def test_public_info_for_anybody_managers_only_for_managers(
    api: ApiClient, db: Database, admin_key: str, make_user: MakeUser, people: dict[str, Any]
) -> None:
    license_id = people["license_id"]
    running = create(api, people["stranger"])
    stopped = create(api, people["stranger"])
    _apply(db, running, license_id, running=True)
    _apply(db, stopped, license_id, running=False)
    _apply(db, people["project_id"], license_id, running=False)

    stranger_view = ok(
        q(
            api,
            people["stranger"].api_key,
            {"site_license_public_info": {"id": license_id.upper(), "running": None}},
        )
    )["site_license_public_info"]
    assert stranger_view == {
        "title": "Physics 101",
        "description": None,
        "expires": None,
        "activates": None,
        "upgrades": None,
        "quota": None,
        "run_limit": 3,
        "running": 1,
        "applied": 3,
        "is_manager": False,
    }
    manager_view = ok(
        q(
            api,
            people["manager"].api_key,
            {"site_license_public_info": {"id": license_id, "title": None}},
        )
    )["site_license_public_info"]
    assert manager_view["managers"] == [people["manager"].account_id]
    assert manager_view["is_manager"] is True
    admin_view = ok(
        q(api, admin_key, {"site_license_public_info": {"id": license_id, "title": None}})
    )
    assert admin_view["site_license_public_info"]["managers"] == [people["manager"].account_id]
    assert admin_view["site_license_public_info"]["is_manager"] is False


@pytest.mark.parametrize(
    "query",
    [
        {"site_license_public_info": {"title": None}},
        {"site_license_public_info": {"id": "abc", "title": None}},
        {"site_license_public_info": {"id": 12, "title": None}},
        {
            "site_license_public_info": [
                {"id": "00000000-0000-4000-8000-000000000000", "title": None}
            ]
        },
    ],
)
def test_public_info_needs_one_license_id(api: ApiClient, user: User, query: Any) -> None:
    assert err(q(api, user.api_key, query)) == "must be a single object query with id specified"


def test_public_info_unknown_license(api: ApiClient, user: User) -> None:
    license_id = str(uuid.uuid4())
    reply = q(api, user.api_key, {"site_license_public_info": {"id": license_id, "title": None}})
    assert err(reply) == f"Error: no license with id {license_id}"


# --- admin-only search and usage ------------------------------------------------------------


def test_matching_site_licenses(api: ApiClient, admin_key: str, make_user: MakeUser) -> None:
    tag = uuid.uuid4().hex[:10]
    manager = make_user(last_name=f"Curie{tag}")
    now = utcnow()
    first = _new_license(
        api, admin_key, title=f"Chemistry {tag}", last_used=(now - timedelta(days=1)).isoformat()
    )
    second = _new_license(
        api,
        admin_key,
        description=f"chemistry lab {tag}",
        managers=[manager.account_id],
        last_used=now.isoformat(),
    )
    third = _new_license(api, admin_key, title=f"Biology {tag}", info={"note": "Zoology"})

    def search(text: Any, options: Any = None) -> list[str]:
        reply = q(
            api,
            admin_key,
            {"matching_site_licenses": [{"search": text, "id": None}]},
            options=options,
        )
        rows = ok(reply)["matching_site_licenses"]
        assert all(set(row) == {"id"} for row in rows)
        return [row["id"] for row in rows]

    # Every term must match; the most recently used license comes first.
    assert search(f"CHEMISTRY {tag}") == [second, first]
    assert search(f"curie{tag}") == [second]
    assert search(f"zoology {tag}") == [third]
    assert search(f'"chemistry lab {tag}"') == [second]
    assert search(first.upper()) == [first]
    assert search(f"chemistry {tag}", [{"limit": 1}]) == [second]
    assert search(f"no-such-license-{tag}") == []
    assert (
        err(q(api, admin_key, {"matching_site_licenses": {"search": tag, "id": None}}))
        == MULTI_ONLY
    )
    reply = q(api, admin_key, {"matching_site_licenses": [{"search": 5, "id": None}]})
    assert err(reply) == "Error: search must be a string"


def test_site_license_usage_stats(
    api: ApiClient, db: Database, admin_key: str, people: dict[str, Any]
) -> None:
    license_id = people["license_id"]
    for running in (True, True, False):
        _apply(db, create(api, people["stranger"]), license_id, running=running)
    before = utcnow() - timedelta(seconds=5)
    stats = ok(q(api, admin_key, {"site_license_usage_stats": {"running": None, "time": None}}))
    result = stats["site_license_usage_stats"]
    assert result["running"][license_id] == 2
    assert result["time"] >= before.strftime("%Y-%m-%dT%H:%M:%S")


def test_projects_using_site_license(
    api: ApiClient, db: Database, admin_key: str, people: dict[str, Any]
) -> None:
    license_id = people["license_id"]
    owner = people["stranger"]
    long_title = "T" * 100
    running = create(api, owner, title=long_title)
    used_recently = create(api, owner)
    unlicensed = create(api, owner)
    _apply(db, running, license_id, running=True)
    _apply(db, used_recently, license_id, running=False)
    db.execute(
        update(projects).where(projects.c.project_id == unlicensed).values(run_state="running")
    )
    db.execute(
        update(projects)
        .where(projects.c.project_id == used_recently)
        .values(last_activity=utcnow())
    )
    query = [{"license_id": license_id, "project_id": None, "title": None, "users": None}]
    rows = ok(q(api, admin_key, {"projects_using_site_license": query}))[
        "projects_using_site_license"
    ]
    assert rows == [
        {
            "project_id": running,
            "title": "T" * 80,
            "users": {owner.account_id: {"group": "owner"}},
            "license_id": license_id,
        }
    ]
    since = (utcnow() - timedelta(hours=1)).isoformat()
    query = [{"license_id": license_id, "cutoff": since, "project_id": None}]
    rows = ok(q(api, admin_key, {"projects_using_site_license": query}))[
        "projects_using_site_license"
    ]
    assert {row["project_id"] for row in rows} == {running, used_recently}
    query = [{"license_id": license_id, "cutoff": since, "limit": 1, "project_id": None}]
    rows = ok(q(api, admin_key, {"projects_using_site_license": query}))[
        "projects_using_site_license"
    ]
    assert len(rows) == 1


def test_projects_using_site_license_errors(api: ApiClient, admin_key: str) -> None:
    license_id = str(uuid.uuid4())
    reply = q(
        api, admin_key, {"projects_using_site_license": {"license_id": license_id, "title": None}}
    )
    assert err(reply) == "query must be an array (you must request to get multiple values back)"
    reply = q(api, admin_key, {"projects_using_site_license": [{"license_id": "x", "title": None}]})
    assert err(reply) == "query must be of the form [{license_id:uuid, ...}]"
    reply = q(
        api,
        admin_key,
        {
            "projects_using_site_license": [
                {"license_id": license_id, "cutoff": "later", "title": None}
            ]
        },
    )
    assert err(reply) == 'error: invalid input syntax for type timestamp: "later"'
    reply = q(
        api,
        admin_key,
        {"projects_using_site_license": [{"license_id": license_id, "limit": "-1", "title": None}]},
    )
    assert err(reply) == "ERROR -- opts.limit = '-1' is not an integer"


def test_number_of_projects_using_site_license(
    api: ApiClient, db: Database, admin_key: str, people: dict[str, Any]
) -> None:
    license_id = people["license_id"]
    owner = people["stranger"]
    _apply(db, create(api, owner), license_id, running=True)
    recent = create(api, owner)
    _apply(db, recent, license_id, running=False)
    db.execute(
        update(projects).where(projects.c.project_id == recent).values(last_activity=utcnow())
    )
    table = "number_of_projects_using_site_license"
    result = ok(q(api, admin_key, {table: {"license_id": license_id, "number": None}}))
    assert result == {table: {"license_id": license_id, "number": 1}}
    since = "2000-01-01T00:00:00.000Z"
    result = ok(
        q(api, admin_key, {table: {"license_id": license_id, "cutoff": since, "number": None}})
    )
    assert result[table]["number"] == 2
    assert err(q(api, admin_key, {table: [{"license_id": license_id, "number": None}]})) == (
        "query must NOT be an array (do not request multiple values back)"
    )
    shape = "query must be of the form {license_id:uuid, cutoff?:<date>, count:null...}]"
    assert err(q(api, admin_key, {table: {"license_id": "x", "number": None}})) == shape
    assert (
        err(q(api, admin_key, {table: {"license_id": license_id, "number": 3, "cutoff": None}}))
        == shape
    )


# --- who may do what ------------------------------------------------------------------------

ADMIN_GETS = [
    {"site_licenses": [{"id": None}]},
    {"matching_site_licenses": [{"search": "a", "id": None}]},
    {"site_license_usage_stats": {"running": None}},
    {"projects_using_site_license": [{"license_id": str(uuid.uuid4()), "project_id": None}]},
    {"number_of_projects_using_site_license": {"license_id": str(uuid.uuid4()), "number": None}},
]


@pytest.mark.parametrize("role", ["manager", "collab", "stranger"])
def test_admin_tables_refuse_non_admins(
    api: ApiClient, db: Database, people: dict[str, Any], role: str
) -> None:
    key = people[role].api_key
    for query in ADMIN_GETS:
        assert err(q(api, key, query)) == ADMIN_ONLY, query
    license_id = people["license_id"]
    reply = q(api, key, {"site_licenses": {"id": license_id, "title": "taken over"}})
    assert err(reply) == ADMIN_ONLY
    reply = q(api, key, {"site_licenses": {"id": str(uuid.uuid4()), "title": "forged"}})
    assert err(reply) == ADMIN_ONLY
    assert _stored(db, license_id).title == "Physics 101"


def test_admin_tables_answer_admins(api: ApiClient, admin_key: str) -> None:
    for query in ADMIN_GETS:
        assert set(ok(q(api, admin_key, query))) == set(query), query


@pytest.mark.parametrize("role", ["manager", "collab", "stranger"])
def test_public_info_and_manager_list_for_everybody(
    api: ApiClient, people: dict[str, Any], role: str
) -> None:
    key = people[role].api_key
    info = ok(
        q(api, key, {"site_license_public_info": {"id": people["license_id"], "title": None}})
    )
    assert info["site_license_public_info"]["is_manager"] is (role == "manager")
    listed = ok(q(api, key, {"manager_site_licenses": [{"id": None}]}))["manager_site_licenses"]
    assert (people["license_id"] in {row["id"] for row in listed}) is (role == "manager")
