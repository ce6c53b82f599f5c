"""The permission matrix of `query`, over real HTTP: for every table, what the project's
owner, a collaborator, a stranger and an admin get back from a get and a set aimed at the
owner's rows. Each table's own behaviour is tested beside it; this file makes sure no table
is served without a row here."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import update

from calchub.db.tables import projects, syncstrings
from calchub.db.types import utcnow
from calchub.userquery.registry import TABLES
from tests.api.project_files import publish
from tests.api.queries import create, join, q
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]
ROLES = ("owner", "collab", "stranger", "admin")

ROW = "row"  # a non-empty result
NONE = "none"  # {} (object form) or [] (array form)
OK = "ok"  # a set that was carried out
ADMIN_ONLY = "FATAL: user must be an admin"
NO_READ = "FATAL: you do not have read access to this project"
PROJECT_ONLY = "FATAL: project_id must be specified"  # tables only a project writes
SYNC_REFUSED = "Error: user does not have read access to the given project"
SEED_TIME = "2021-01-01T00:00:00.000Z"
NO_LICENSE = "00000000-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class World:
    owner: str  # account ids
    collab: str
    project: str
    path_id: str
    token: str


Query = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    get: Query
    get_expect: tuple[str, str, str, str]  # owner, collab, stranger, admin
    set: Query
    set_expect: tuple[str, str, str, str]


def _sid(w: World) -> str:
    """The seeded document's syncstring id."""
    return hashlib.sha1((w.project + "seed.txt").encode()).hexdigest()  # noqa: S324 - CoCalc's id


def _refused(table: str) -> str:
    return f"FATAL: user set queries not allowed for table '{table}'"


def _no_get(table: str) -> str:
    return f"FATAL: get queries not allowed for table '{table}'"


def _uniform(outcome: str) -> tuple[str, str, str, str]:
    return (outcome, outcome, outcome, outcome)


def _project_get(table: str, field: str = "title") -> Query:
    return lambda w: {table: {"project_id": w.project, field: None}}


MATRIX: dict[str, Case] = {
    "accounts": Case(
        # Only one's own row, admins included.
        lambda w: {"accounts": [{"account_id": w.owner, "first_name": None}]},
        (ROW, NONE, NONE, NONE),
        # account_id is always the caller's: everybody changes their own row only.
        lambda w: {"accounts": {"account_id": w.owner, "last_name": "Matrix"}},
        _uniform(OK),
    ),
    "account_profiles": Case(
        lambda w: {"account_profiles": {"account_id": w.owner, "profile": None}},
        _uniform(ROW),
        lambda w: {"account_profiles": {"account_id": w.owner, "profile": {"color": "#000"}}},
        _uniform(_refused("account_profiles")),
    ),
    "collaborators": Case(
        lambda w: {"collaborators": [{"account_id": w.owner, "first_name": None}]},
        (ROW, ROW, NONE, NONE),
        lambda w: {"collaborators": {"account_id": w.owner, "first_name": "x"}},
        _uniform(_refused("collaborators")),
    ),
    "collaborators_one_project": Case(
        lambda w: {"collaborators_one_project": [{"project_id": w.project, "account_id": None}]},
        (ROW, ROW, NO_READ, ROW),
        lambda w: {"collaborators_one_project": {"project_id": w.project, "first_name": "x"}},
        _uniform(_refused("collaborators_one_project")),
    ),
    "projects": Case(
        _project_get("projects"),
        (ROW, ROW, NO_READ, ROW),
        lambda w: {"projects": {"project_id": w.project, "description": "matrix"}},
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "projects_all": Case(
        _project_get("projects_all"),
        (ROW, ROW, NO_READ, ROW),
        lambda w: {"projects_all": {"project_id": w.project, "description": "matrix"}},
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "projects_admin": Case(
        _project_get("projects_admin"),
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, ROW),
        lambda w: {"projects_admin": {"project_id": w.project, "title": "x"}},
        _uniform(_refused("projects_admin")),
    ),
    "projects_owner": Case(
        _project_get("projects_owner", "course"),
        _uniform(_no_get("projects_owner")),
        lambda w: {"projects_owner": {"project_id": w.project, "course": {"path": "c.course"}}},
        (OK, ADMIN_ONLY, ADMIN_ONLY, OK),
    ),
    "project_invite_requests": Case(
        _project_get("project_invite_requests", "invite_requests"),
        _uniform(_no_get("project_invite_requests")),
        # Anyone may ask to join, for themselves only (the {account_id} placeholder).
        lambda w: {
            "project_invite_requests": {
                "project_id": w.project,
                "invite_requests": {"{account_id}": {"message": "hi"}},
            }
        },
        _uniform(OK),
    ),
    "public_projects": Case(
        _project_get("public_projects"),
        _uniform(ROW),
        lambda w: {"public_projects": {"project_id": w.project, "title": "x"}},
        _uniform(_refused("public_projects")),
    ),
    "public_paths": Case(
        lambda w: {"public_paths": [{"project_id": w.project, "path": None}]},
        _uniform(ROW),
        lambda w: {"public_paths": {"project_id": w.project, "path": "pub", "description": "d"}},
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "public_paths_by_id": Case(
        lambda w: {"public_paths_by_id": {"id": w.path_id, "path": None}},
        _uniform(ROW),
        lambda w: {"public_paths_by_id": {"id": w.path_id, "path": "x"}},
        _uniform(_refused("public_paths_by_id")),
    ),
    "all_public_paths": Case(
        lambda w: {"all_public_paths": [{"id": None}]},
        # Only projects the caller has been active in: the owner's.
        (ROW, NONE, NONE, NONE),
        lambda w: {"all_public_paths": [{"id": w.path_id}]},
        _uniform(_refused("all_public_paths")),
    ),
    "project_invite_tokens": Case(
        lambda w: {"project_invite_tokens": [{"project_id": w.project, "token": None}]},
        (ROW, ROW, NO_READ, ROW),
        lambda w: {"project_invite_tokens": {"project_id": w.project, "token": w.token}},
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "project_log": Case(
        lambda w: {"project_log": [{"project_id": w.project, "event": None}]},
        (ROW, ROW, NO_READ, ROW),
        lambda w: {"project_log": {"project_id": w.project, "event": {"event": "matrix"}}},
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "project_log_all": Case(
        lambda w: {"project_log_all": [{"project_id": w.project, "event": None}]},
        (ROW, ROW, NO_READ, ROW),
        lambda w: {"project_log_all": {"project_id": w.project, "event": {"event": "matrix"}}},
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "mentions": Case(
        lambda w: {"mentions": [{"project_id": w.project, "path": None}]},
        (ROW, ROW, NO_READ, ROW),
        lambda w: {"mentions": {"project_id": w.project, "path": "m.md", "target": w.collab}},
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "listings": Case(
        lambda w: {"listings": {"project_id": w.project, "path": "", "listing": None}},
        (ROW, ROW, NO_READ, ROW),
        lambda w: {"listings": {"project_id": w.project, "path": "", "listing": []}},
        _uniform(PROJECT_ONLY),
    ),
    "project_status": Case(
        lambda w: {"project_status": {"project_id": w.project, "status": None}},
        (ROW, ROW, NO_READ, ROW),
        lambda w: {"project_status": {"project_id": w.project, "status": {"state": "x"}}},
        _uniform(PROJECT_ONLY),
    ),
    "project_info": Case(
        lambda w: {"project_info": {"project_id": w.project, "info": None}},
        (NONE, NONE, NO_READ, NONE),
        lambda w: {"project_info": {"project_id": w.project, "info": {"x": 1}}},
        _uniform(PROJECT_ONLY),
    ),
    "usage_info": Case(
        lambda w: {"usage_info": {"project_id": w.project, "path": "a", "usage": None}},
        (NONE, NONE, NO_READ, NONE),
        lambda w: {"usage_info": {"project_id": w.project, "path": "a", "usage": {"x": 1}}},
        _uniform(PROJECT_ONLY),
    ),
    "syncstrings": Case(
        lambda w: {"syncstrings": {"project_id": w.project, "path": "seed.txt", "users": None}},
        (ROW, ROW, ADMIN_ONLY, ROW),
        lambda w: {
            "syncstrings": {"project_id": w.project, "path": "seed.txt", "read_only": False}
        },
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "recent_syncstrings_in_project": Case(
        lambda w: {
            "recent_syncstrings_in_project": [
                {"project_id": w.project, "max_age_m": 60, "string_id": None}
            ]
        },
        (ROW, ROW, ADMIN_ONLY, ROW),
        lambda w: {"recent_syncstrings_in_project": {"project_id": w.project, "max_age_m": 60}},
        _uniform(_refused("recent_syncstrings_in_project")),
    ),
    "syncstrings_delete": Case(
        lambda w: {"syncstrings_delete": {"project_id": w.project, "path": None}},
        _uniform(_no_get("syncstrings_delete")),
        lambda w: {"syncstrings_delete": {"project_id": w.project, "path": "other.txt"}},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, OK),
    ),
    "patches": Case(
        lambda w: {"patches": [{"string_id": _sid(w), "time": None, "patch": None}]},
        (ROW, ROW, ADMIN_ONLY, ROW),
        lambda w: {
            "patches": {"string_id": _sid(w), "time": SEED_TIME, "user_id": 0, "patch": "[]"}
        },
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "cursors": Case(
        lambda w: {"cursors": [{"string_id": _sid(w), "user_id": None, "locs": None}]},
        (ROW, ROW, ADMIN_ONLY, ROW),
        lambda w: {"cursors": {"string_id": _sid(w), "user_id": 1, "locs": [{"x": 1, "y": 1}]}},
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "eval_inputs": Case(
        lambda w: {"eval_inputs": [{"string_id": _sid(w), "time": None, "input": None}]},
        (ROW, ROW, ADMIN_ONLY, ROW),
        lambda w: {
            "eval_inputs": {
                "string_id": _sid(w),
                "time": SEED_TIME,
                "user_id": 1,
                "input": {"code": "2"},
            }
        },
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "eval_outputs": Case(
        lambda w: {"eval_outputs": [{"string_id": _sid(w), "number": None, "output": None}]},
        (ROW, ROW, ADMIN_ONLY, ROW),
        lambda w: {
            "eval_outputs": {
                "string_id": _sid(w),
                "time": SEED_TIME,
                "number": 1,
                "output": {"out": "2"},
            }
        },
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "ipywidgets": Case(
        lambda w: {"ipywidgets": [{"string_id": _sid(w), "model_id": None, "data": None}]},
        (ROW, ROW, ADMIN_ONLY, ROW),
        lambda w: {
            "ipywidgets": {"string_id": _sid(w), "model_id": "m", "type": "state", "data": {"v": 2}}
        },
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "file_use": Case(
        lambda w: {"file_use": [{"project_id": w.project, "path": None, "users": None}]},
        (ROW, ROW, NO_READ, ROW),
        lambda w: {
            "file_use": {"project_id": w.project, "path": "seed.txt", "users": {"x": {"read": 1}}}
        },
        (OK, OK, ADMIN_ONLY, OK),
    ),
    "file_use_times": Case(
        lambda w: {
            "file_use_times": {
                "project_id": w.project,
                "account_id": w.owner,
                "path": "seed.txt",
                "edit_times": None,
            }
        },
        (ROW, ROW, SYNC_REFUSED, ROW),
        lambda w: {
            "file_use_times": {
                "project_id": w.project,
                "account_id": w.owner,
                "path": "seed.txt",
                "edit_times": [],
            }
        },
        _uniform(_refused("file_use_times")),
    ),
    "site_licenses": Case(
        lambda w: {"site_licenses": [{"id": w.project, "title": None}]},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, NONE),
        lambda w: {"site_licenses": {"id": w.project, "title": "matrix"}},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, OK),
    ),
    "manager_site_licenses": Case(
        lambda w: {"manager_site_licenses": [{"id": None}]},
        _uniform(NONE),
        lambda w: {"manager_site_licenses": {"id": w.project, "title": "x"}},
        _uniform("Error: user must be a manager of the license to change it"),
    ),
    "site_license_public_info": Case(
        lambda w: {"site_license_public_info": {"id": NO_LICENSE, "title": None}},
        _uniform(f"Error: no license with id {NO_LICENSE}"),
        lambda w: {"site_license_public_info": {"id": NO_LICENSE, "title": "x"}},
        _uniform(_refused("site_license_public_info")),
    ),
    "matching_site_licenses": Case(
        lambda w: {"matching_site_licenses": [{"search": w.project, "id": None}]},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, NONE),
        lambda w: {"matching_site_licenses": [{"search": w.project}]},
        _uniform(_refused("matching_site_licenses")),
    ),
    "site_license_usage_stats": Case(
        lambda w: {"site_license_usage_stats": {"running": None, "time": None}},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, ROW),
        lambda w: {"site_license_usage_stats": {"running": {}}},
        _uniform(_refused("site_license_usage_stats")),
    ),
    "projects_using_site_license": Case(
        lambda w: {"projects_using_site_license": [{"license_id": w.project, "project_id": None}]},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, NONE),
        lambda w: {"projects_using_site_license": [{"license_id": w.project}]},
        _uniform(_refused("projects_using_site_license")),
    ),
    "number_of_projects_using_site_license": Case(
        lambda w: {
            "number_of_projects_using_site_license": {"license_id": w.project, "number": None}
        },
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, ROW),
        lambda w: {"number_of_projects_using_site_license": {"license_id": w.project}},
        _uniform(_refused("number_of_projects_using_site_license")),
    ),
    "server_settings": Case(
        lambda w: {"server_settings": {"name": "kucalc", "value": None}},
        _uniform(_no_get("server_settings")),
        lambda w: {"server_settings": {"name": "kucalc", "value": "matrix"}},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, OK),
    ),
    "site_settings": Case(
        lambda w: {"site_settings": [{"name": "not_a_setting", "value": None}]},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, NONE),
        lambda w: {"site_settings": {"name": "kucalc", "value": "matrix"}},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, OK),
    ),
    "system_notifications": Case(
        lambda w: {"system_notifications": [{"id": w.project, "text": None}]},
        _uniform(NONE),
        lambda w: {"system_notifications": {"id": w.project, "text": "matrix"}},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, OK),
    ),
    "registration_tokens": Case(
        lambda w: {"registration_tokens": {"token": w.token, "descr": None}},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, NONE),
        # Disabled, so that sign-up stays open for the rest of the session.
        lambda w: {"registration_tokens": {"token": w.token, "disabled": True}},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, OK),
    ),
    "whitelabeling": Case(
        lambda w: {"whitelabeling": [{"id": w.token, "theme": None}]},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, NONE),
        lambda w: {"whitelabeling": {"id": w.token, "theme": {"site_name": "matrix"}}},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, OK),
    ),
    "lti": Case(
        lambda w: {"lti": {"iss": w.token, "name": None}},
        _uniform(
            "FATAL: user get query not allowed for lti (no getAll filter - pg_where or check_hook)"
        ),
        lambda w: {"lti": {"iss": w.token, "name": "matrix"}},
        (ADMIN_ONLY, ADMIN_ONLY, ADMIN_ONLY, OK),
    ),
    "compute_images": Case(
        lambda w: {"compute_images": [{"id": w.token, "src": None}]},
        _uniform(NONE),
        lambda w: {"compute_images": {"id": w.token, "src": "x"}},
        _uniform(_refused("compute_images")),
    ),
    "central_log": Case(
        lambda w: {"central_log": {"id": w.project, "event": None}},
        _uniform(_no_get("central_log")),
        # Anybody may log the browser's events; only those.
        lambda w: {"central_log": {"id": w.project, "event": "matrix", "value": {}}},
        _uniform("event must start with 'webapp-'"),
    ),
}


@pytest.fixture
def world(api: ApiClient, db: Database, admin_key: str, make_user: MakeUser) -> Any:
    owner, collab, stranger = (make_user() for _ in range(3))
    project = create(api, owner)
    join(db, project, collab)
    publish(db, project, "pub")
    db.execute(
        update(projects)
        .where(projects.c.project_id == project)
        .values(last_active={owner.account_id: "2026-01-01T00:00:00.000Z"})
    )
    world = World(
        owner=owner.account_id,
        collab=collab.account_id,
        project=project,
        path_id=hashlib.sha1((project + "pub").encode()).hexdigest(),  # noqa: S324 - CoCalc's id
        token=uuid.uuid4().hex,
    )
    sid = _sid(world)
    for query in (
        {"project_invite_tokens": {"project_id": project, "token": world.token}},
        {"project_log": {"project_id": project, "event": {"event": "seed"}}},
        {"mentions": {"project_id": project, "path": "seed.md", "target": world.collab}},
        {"syncstrings": {"project_id": project, "path": "seed.txt", "users": [owner.account_id]}},
        {"patches": {"string_id": sid, "time": SEED_TIME, "user_id": 0, "patch": "[]"}},
        {"cursors": {"string_id": sid, "user_id": 0, "locs": [{"x": 0, "y": 0}]}},
        {"eval_inputs": {"string_id": sid, "time": SEED_TIME, "user_id": 0, "input": {"c": 1}}},
        {"eval_outputs": {"string_id": sid, "time": SEED_TIME, "number": 0, "output": {"o": 1}}},
        {"ipywidgets": {"string_id": sid, "model_id": "m", "type": "state", "data": {"v": 1}}},
        {"file_use": {"project_id": project, "path": "seed.txt", "last_edited": "{now}"}},
    ):
        reply = q(api, owner.api_key, query)
        assert reply.event == "query", reply.body
    # Recent activity set directly, so that seeding does not start the project.
    db.execute(
        update(syncstrings).where(syncstrings.c.project_id == project).values(last_active=utcnow())
    )
    keys = {"owner": owner.api_key, "collab": collab.api_key, "stranger": stranger.api_key}
    return world, {**keys, "admin": admin_key}


def _outcome(reply: Any) -> str:
    assert reply.status == 200, reply.body
    if reply.event == "error":
        return str(reply["error"])
    result = reply["query"]
    assert isinstance(result, dict), reply.body
    if not result:
        return NONE
    (value,) = result.values()
    return ROW if value else NONE


def test_every_table_has_a_row_in_the_matrix() -> None:
    assert sorted(TABLES) == sorted(MATRIX)


@pytest.mark.parametrize("table", sorted(MATRIX))
def test_matrix(api: ApiClient, world: Any, table: str) -> None:
    """Gets first, then sets: a set that is carried out answers {} like an empty get."""
    facts, keys = world
    case = MATRIX[table]
    for query, expect in ((case.get, case.get_expect), (case.set, case.set_expect)):
        got = {role: _outcome(q(api, keys[role], query(facts))) for role in ROLES}
        wanted = [NONE if outcome == OK else outcome for outcome in expect]
        assert got == dict(zip(ROLES, wanted, strict=True)), query(facts)
