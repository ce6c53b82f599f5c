"""The site-administration tables of `query` over real HTTP (spec §3.16): site settings,
notifications, registration tokens, whitelabeling, LTI, compute images and the central
log, and the tables calchub leaves out."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from calchub.db.tables import (
    central_log,
    compute_images,
    lti,
    registration_tokens,
    server_settings,
    system_notifications,
    whitelabeling,
)
from calchub.db.types import utcnow
from tests.api.queries import create, err, join, ok, q
from tests.conftest import User
from tests.harness import ApiClient, Database

MakeUser = Callable[..., User]
ADMIN_ONLY = "FATAL: user must be an admin"


@pytest.fixture
def team(api: ApiClient, db: Database, make_user: MakeUser) -> dict[str, Any]:
    """Three people who are not admins: a project's owner and collaborator, and a stranger."""
    owner, collab, stranger = make_user(), make_user(), make_user()
    join(db, create(api, owner), collab)
    return {"owner": owner, "collab": collab, "stranger": stranger}


def _setting(db: Database, name: str) -> str | None:
    rows = db.execute(select(server_settings.c.value).where(server_settings.c.name == name))
    return rows[0].value if rows else None


@pytest.fixture
def restore_settings(db: Database) -> Iterator[Callable[[str], None]]:
    """Remembers the settings a test is about to change and puts them back afterwards: the
    server is shared by the whole session."""
    saved: dict[str, str | None] = {}

    def remember(name: str) -> None:
        saved.setdefault(name, _setting(db, name))

    yield remember
    for name, value in saved.items():
        db.execute(delete(server_settings).where(server_settings.c.name == name))
        if value is not None:
            db.execute(insert(server_settings).values(name=name, value=value))


def _signup(api: ApiClient, key: str, **extra: Any) -> Any:
    """create_account from an address of its own, so that the per-IP throttle stays clear."""
    ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    body = {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email_address": f"grace-{uuid.uuid4().hex[:8]}@example.com",
        "password": "a long password",
        "agreed_to_terms": True,
        **extra,
    }
    return api.call("create_account", key, body, headers={"X-Forwarded-For": ip})


# --- server_settings and site_settings ------------------------------------------------------


def test_server_settings_admin_set_only(
    api: ApiClient, db: Database, admin_key: str, restore_settings: Callable[[str], None]
) -> None:
    restore_settings("site_name")
    restore_settings("kucalc")
    name = f"Site {uuid.uuid4().hex[:6]}"
    assert ok(q(api, admin_key, {"server_settings": {"name": "site_name", "value": name}})) == {}
    assert _setting(db, "site_name") == name
    # A CoCalc setting calchub does not use is stored as given.
    ok(q(api, admin_key, {"server_settings": {"name": "kucalc", "value": "onprem"}}))
    assert _setting(db, "kucalc") == "onprem"
    reply = q(api, admin_key, {"server_settings": {"name": "site_name", "value": None}})
    assert err(reply) == "FATAL: get queries not allowed for table 'server_settings'"


def test_site_settings_get_and_set(
    api: ApiClient, db: Database, admin_key: str, restore_settings: Callable[[str], None]
) -> None:
    restore_settings("site_description")
    restore_settings("default_quota_cores")
    unknown = f"not_a_setting_{uuid.uuid4().hex[:6]}"
    db.execute(insert(server_settings).values(name=unknown, value="hidden"))
    try:
        ok(
            q(
                api,
                admin_key,
                {"site_settings": {"name": "site_description", "value": "A place to compute"}},
            )
        )
        ok(q(api, admin_key, {"site_settings": {"name": "default_quota_cores", "value": 2}}))
        assert _setting(db, "default_quota_cores") == "2"
        one = ok(q(api, admin_key, {"site_settings": {"name": "site_description", "value": None}}))
        assert one == {"site_settings": {"name": "site_description", "value": "A place to compute"}}
        rows = ok(q(api, admin_key, {"site_settings": [{"name": None, "value": None}]}))
        listed = {row["name"]: row["value"] for row in rows["site_settings"]}
        assert listed["site_description"] == "A place to compute"
        assert listed["default_quota_cores"] == "2"
        assert unknown not in listed  # only known names are served
        missing = ok(q(api, admin_key, {"site_settings": {"name": unknown, "value": None}}))
        assert missing == {}
    finally:
        db.execute(delete(server_settings).where(server_settings.c.name == unknown))


def test_calchub_settings_change_what_the_server_does(
    api: ApiClient, admin_key: str, user: User, restore_settings: Callable[[str], None]
) -> None:
    restore_settings("email_signup")
    ok(q(api, admin_key, {"site_settings": {"name": "email_signup", "value": "no"}}))
    reply = _signup(api, user.api_key)
    assert reply.event == "account_creation_failed"
    assert reply["reason"] == {"other": "Signing up via email/password is disabled."}
    ok(q(api, admin_key, {"server_settings": {"name": "email_signup", "value": "yes"}}))
    assert _signup(api, user.api_key).event == "account_created"


@pytest.mark.parametrize("table", ["server_settings", "site_settings"])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            {"name": "favourite_colour", "value": "blue"},
            "FATAL: error setting 'name' -- Error: setting name='favourite_colour' not allowed",
        ),
        (
            {"value": "blue"},
            "FATAL: error setting 'name' -- Error: setting name='undefined' not allowed",
        ),
        (
            {"name": "email_signup", "value": "maybe"},
            "FATAL: error setting 'value' -- Error: email_signup must be one of yes, no",
        ),
        (
            {"name": "default_quota_memory_mb", "value": "lots"},
            "FATAL: error setting 'value' -- Error: default_quota_memory_mb must be an integer",
        ),
        (
            {"name": "exec_max_timeout_s", "value": True},
            "FATAL: error setting 'value' -- Error: exec_max_timeout_s must be an integer",
        ),
        (
            {"name": "project_network", "value": "HOST"},
            "FATAL: error setting 'value' -- Error: project_network must be one of none, nat",
        ),
        (
            {"name": "project_network_deny", "value": "10.0.0.0/8, 10.0.0.0/33"},
            "FATAL: error setting 'value' -- Error: project_network_deny: '10.0.0.0/33' is not "
            "an IPv4 address range",
        ),
        (
            {"name": "project_network_allow", "value": "::1/128"},
            "FATAL: error setting 'value' -- Error: project_network_allow: '::1/128' is not an "
            "IPv4 address range",
        ),
        (
            {"name": "site_name", "value": {"a": 1}},
            "error: invalid input syntax for type text: \"{'a': 1}\"",
        ),
        ({"name": "site_name", "other": 1}, "FATAL: changing {table}.other not allowed"),
    ],
)
def test_settings_bad_input(
    api: ApiClient,
    db: Database,
    admin_key: str,
    restore_settings: Callable[[str], None],
    table: str,
    query: dict[str, Any],
    message: str,
) -> None:
    name = query.get("name")
    if isinstance(name, str):
        restore_settings(name)
    before = _setting(db, name) if isinstance(name, str) else None
    assert err(q(api, admin_key, {table: query})) == message.replace("{table}", table)
    if isinstance(name, str):
        assert _setting(db, name) == before


@pytest.mark.parametrize("table", ["server_settings", "site_settings"])
def test_settings_need_a_value_for_a_new_row(
    api: ApiClient,
    db: Database,
    admin_key: str,
    restore_settings: Callable[[str], None],
    table: str,
) -> None:
    restore_settings("terms_of_service_url")
    db.execute(delete(server_settings).where(server_settings.c.name == "terms_of_service_url"))
    reply = q(api, admin_key, {table: {"name": "terms_of_service_url"}})
    assert err(reply) == f"FATAL: must specify {table}.value"
    assert _setting(db, "terms_of_service_url") is None
    huge = "https://example.com/" + "t" * 100_000
    ok(q(api, admin_key, {table: {"name": "terms_of_service_url", "value": huge}}))
    assert _setting(db, "terms_of_service_url") == huge


@pytest.mark.parametrize("role", ["owner", "collab", "stranger"])
def test_settings_refuse_non_admins(
    api: ApiClient, db: Database, team: dict[str, Any], role: str
) -> None:
    key = team[role].api_key
    before = _setting(db, "site_name")
    for table in ("server_settings", "site_settings"):
        reply = q(api, key, {table: {"name": "site_name", "value": "Mine now"}})
        assert err(reply) == ADMIN_ONLY
    reply = q(api, key, {"site_settings": [{"name": None, "value": None}]})
    assert err(reply) == ADMIN_ONLY
    # As in CoCalc the name is checked first.
    reply = q(api, key, {"site_settings": {"name": "bogus", "value": "x"}})
    assert err(reply) == "FATAL: error setting 'name' -- Error: setting name='bogus' not allowed"
    assert _setting(db, "site_name") == before


# --- system_notifications -------------------------------------------------------------------


def test_system_notifications(api: ApiClient, db: Database, admin_key: str, user: User) -> None:
    fresh, old, bare = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    message = {"id": fresh.upper(), "text": "Maintenance at noon", "priority": "high"}
    assert ok(q(api, admin_key, {"system_notifications": message})) == {}
    two_hours_ago = (utcnow() - timedelta(hours=2)).isoformat()
    ok(q(api, admin_key, {"system_notifications": {"id": old, "time": two_hours_ago}}))
    db.execute(insert(system_notifications).values(id=bare, time=utcnow()))

    fields = {"id": None, "time": None, "text": None, "priority": None, "done": None}
    rows = ok(q(api, user.api_key, {"system_notifications": [fields]}))["system_notifications"]
    by_id = {row["id"]: row for row in rows}
    assert by_id[fresh]["text"] == "Maintenance at noon"
    assert by_id[fresh]["priority"] == "high"
    assert by_id[fresh]["done"] is False  # the default
    assert by_id[fresh]["time"].endswith("Z")  # filled in when created
    assert by_id[bare] | {"time": None} == {
        "id": bare,
        "time": None,
        "text": "",
        "priority": "low",
        "done": False,
    }
    assert old not in by_id  # older than an hour

    ok(q(api, admin_key, {"system_notifications": {"id": fresh, "done": True}}))
    one = ok(q(api, user.api_key, {"system_notifications": {"id": fresh, "done": None}}))
    assert one == {"system_notifications": {"id": fresh, "done": True}}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": "abc"}, 'error: invalid input syntax for type uuid: "abc"'),
        (
            {"priority": "urgent"},
            "FATAL: error setting 'priority' -- Error: priority must be one of low, medium, high",
        ),
        (
            {"priority": "x" * 1000},
            "FATAL: error setting 'priority' -- Error: priority must be one of low, medium, high",
        ),
        ({"done": "yes"}, 'error: invalid input syntax for type boolean: "yes"'),
        ({"time": "noon"}, 'error: invalid input syntax for type timestamp: "noon"'),
        ({"colour": "red"}, "FATAL: changing system_notifications.colour not allowed"),
    ],
)
def test_system_notifications_bad_input(
    api: ApiClient, db: Database, admin_key: str, fields: dict[str, Any], message: str
) -> None:
    notification_id = str(uuid.uuid4())
    query = {"id": notification_id, "text": "hello", **fields}
    assert err(q(api, admin_key, {"system_notifications": query})) == message
    stored = db.execute(
        select(system_notifications).where(system_notifications.c.id == notification_id)
    )
    assert stored == []


def test_system_notifications_huge_text(api: ApiClient, db: Database, admin_key: str) -> None:
    notification_id, text = str(uuid.uuid4()), "n" * 300_000
    ok(q(api, admin_key, {"system_notifications": {"id": notification_id, "text": text}}))
    (row,) = db.execute(
        select(system_notifications).where(system_notifications.c.id == notification_id)
    )
    assert row.text == text


# --- registration_tokens --------------------------------------------------------------------


def _token_row(db: Database, token: str) -> Any:
    rows = db.execute(select(registration_tokens).where(registration_tokens.c.token == token))
    return rows[0] if rows else None


@pytest.fixture
def token(db: Database) -> Iterator[str]:
    """A token name no other test uses; the row is gone afterwards so that sign-up stays
    open to the rest of the session."""
    name = f"tok-{uuid.uuid4().hex[:10]}"
    yield name
    db.execute(delete(registration_tokens).where(registration_tokens.c.token == name))


TOKEN_FIELDS = {"descr": None, "expires": None, "counter": None, "limit": None, "disabled": None}


def test_registration_tokens_write_list_read_delete(
    api: ApiClient, db: Database, admin_key: str, token: str
) -> None:
    expires = (utcnow() + timedelta(days=3)).replace(microsecond=0)
    query = {
        "token": token,
        "descr": "spring course",
        "expires": expires.isoformat(),
        "limit": 5,
        "disabled": True,
    }
    assert ok(q(api, admin_key, {"registration_tokens": query})) == {}
    row = _token_row(db, token)
    assert (row.descr, row.expires, row.limit, row.disabled, row.counter) == (
        "spring course",
        expires,
        5,
        True,
        0,
    )
    wire_expires = expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    everything = ok(q(api, admin_key, {"registration_tokens": {"token": "*", **TOKEN_FIELDS}}))
    listed = {entry["token"]: entry for entry in everything["registration_tokens"]}
    assert listed[token] == {
        "token": token,
        "descr": "spring course",
        "expires": wire_expires,
        "counter": 0,
        "limit": 5,
        "disabled": True,
    }
    # Reading one token gives that token and changes nothing (CoCalc would reset it).
    one = ok(q(api, admin_key, {"registration_tokens": {"token": token, **TOKEN_FIELDS}}))
    assert one["registration_tokens"] == listed[token]
    many = ok(q(api, admin_key, {"registration_tokens": [{"token": token, **TOKEN_FIELDS}]}))
    assert many["registration_tokens"] == [listed[token]]
    assert _token_row(db, token).descr == "spring course"

    # A set replaces every field: what it leaves out goes back to its default.
    ok(q(api, admin_key, {"registration_tokens": {"token": token, "limit": -1}}))
    row = _token_row(db, token)
    assert (row.descr, row.expires, row.limit, row.disabled) == (None, None, None, False)

    ok(q(api, admin_key, {"registration_tokens": {"token": token}}, options=[{"delete": True}]))
    assert _token_row(db, token) is None
    gone = ok(q(api, admin_key, {"registration_tokens": {"token": token, **TOKEN_FIELDS}}))
    assert gone == {}


def test_registration_token_gates_sign_up(
    api: ApiClient, db: Database, admin_key: str, user: User, token: str
) -> None:
    ok(q(api, admin_key, {"registration_tokens": {"token": token, "limit": 1}}))
    without = _signup(api, user.api_key)
    assert without["reason"] == {"token": "No registration token provided"}
    assert _signup(api, user.api_key, token=token).event == "account_created"
    used = ok(q(api, admin_key, {"registration_tokens": {"token": token, "counter": None}}))
    assert used["registration_tokens"]["counter"] == 1
    assert _signup(api, user.api_key, token=token)["reason"] == {
        "token": "Registration token used up."
    }
    # Rewriting the token keeps its counter.
    ok(q(api, admin_key, {"registration_tokens": {"token": token, "limit": 2}}))
    assert _token_row(db, token).counter == 1
    assert _signup(api, user.api_key, token=token).event == "account_created"


@pytest.mark.parametrize(
    ("query", "options", "message"),
    [
        ({"descr": "no token"}, None, "Error: don't know what to do with this query"),
        ({"token": "", "descr": "x"}, None, "Error: don't know what to do with this query"),
        ({"token": None, "descr": None}, None, "Error: don't know what to do with this query"),
        ({"descr": "x"}, [{"delete": True}], "Error: don't know what to do with this query"),
        ({"token": "t" * 201}, None, "error: value too long for type character varying(200)"),
        (
            {"token": "{token}", "limit": "many"},
            None,
            'error: invalid input syntax for type integer: "many"',
        ),
        (
            {"token": "{token}", "expires": "soon"},
            None,
            'error: invalid input syntax for type timestamp: "soon"',
        ),
        (
            {"token": "{token}", "disabled": "no"},
            None,
            'error: invalid input syntax for type boolean: "no"',
        ),
        (
            {"token": "{token}", "counter": 100},
            None,
            "FATAL: changing registration_tokens.counter not allowed",
        ),
    ],
)
def test_registration_tokens_bad_input(
    api: ApiClient,
    db: Database,
    admin_key: str,
    token: str,
    query: dict[str, Any],
    options: Any,
    message: str,
) -> None:
    filled = {name: token if value == "{token}" else value for name, value in query.items()}
    extra = {} if options is None else {"options": options}
    assert err(q(api, admin_key, {"registration_tokens": filled}, **extra)) == message
    assert _token_row(db, token) is None


@pytest.mark.parametrize("role", ["owner", "collab", "stranger"])
def test_registration_tokens_refuse_non_admins(
    api: ApiClient, db: Database, team: dict[str, Any], token: str, role: str
) -> None:
    key = team[role].api_key
    assert err(q(api, key, {"registration_tokens": {"token": "*", **TOKEN_FIELDS}})) == ADMIN_ONLY
    assert err(q(api, key, {"registration_tokens": {"token": token, "limit": 9}})) == ADMIN_ONLY
    reply = q(api, key, {"registration_tokens": {"token": token}}, options=[{"delete": True}])
    assert err(reply) == ADMIN_ONLY
    assert _token_row(db, token) is None


# --- whitelabeling --------------------------------------------------------------------------


def test_whitelabeling(api: ApiClient, db: Database, admin_key: str) -> None:
    vanity = f"vanity-{uuid.uuid4().hex[:8]}"
    theme = {"site_name": "Vanity", "help_email": "help@vanity.example"}
    assert ok(q(api, admin_key, {"whitelabeling": {"id": vanity, "theme": theme}})) == {}
    ok(q(api, admin_key, {"whitelabeling": {"id": vanity, "theme": {"dns": "vanity.example"}}}))
    got = ok(q(api, admin_key, {"whitelabeling": {"id": vanity, "theme": None}}))
    assert got == {"whitelabeling": {"id": vanity, "theme": {**theme, "dns": "vanity.example"}}}
    ok(
        q(
            api,
            admin_key,
            {"whitelabeling": {"id": vanity, "theme": {"help_email": None}}},
            options=[{"set": True}],
        )
    )
    (row,) = db.execute(select(whitelabeling).where(whitelabeling.c.id == vanity))
    assert row.theme == {"site_name": "Vanity", "dns": "vanity.example"}
    listed = ok(q(api, admin_key, {"whitelabeling": [{"id": None, "theme": None}]}))
    assert vanity in {entry["id"] for entry in listed["whitelabeling"]}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"theme": {"colour": "red"}}, 'Unknown key in theme: "colour"'),
        ({"theme": {"site_name": 5}}, 'Error: the value of "site_name" in theme must be a string'),
        (
            {"theme": ["site_name"]},
            "FATAL: error setting 'theme' -- Error: whitelabeling.theme must be an object",
        ),
        ({"id": "v" * 201}, "error: value too long for type character varying(200)"),
        ({"owner": "me"}, "FATAL: changing whitelabeling.owner not allowed"),
    ],
)
def test_whitelabeling_bad_input(
    api: ApiClient, db: Database, admin_key: str, fields: dict[str, Any], message: str
) -> None:
    vanity = f"bad-{uuid.uuid4().hex[:8]}"
    query = {"id": vanity, "theme": {"site_name": "S"}, **fields}
    assert err(q(api, admin_key, {"whitelabeling": query})) == message
    assert db.execute(select(whitelabeling).where(whitelabeling.c.id == query["id"])) == []


# --- lti --------------------------------------------------------------------------------------


def test_lti_admin_writes_but_nobody_reads(
    api: ApiClient, db: Database, admin_key: str, user: User
) -> None:
    issuer = f"https://lms-{uuid.uuid4().hex[:6]}.example"
    query = {"iss": issuer, "name": "Campus LMS", "config": {"client_id": "abc"}}
    assert ok(q(api, admin_key, {"lti": query})) == {}
    ok(q(api, admin_key, {"lti": {"iss": issuer, "config": {"deployment": "d1"}}}))
    (row,) = db.execute(select(lti).where(lti.c.iss == issuer))
    assert (row.name, row.config) == ("Campus LMS", {"client_id": "abc", "deployment": "d1"})
    no_reads = (
        "FATAL: user get query not allowed for lti (no getAll filter - pg_where or check_hook)"
    )
    for key in (admin_key, user.api_key):
        assert err(q(api, key, {"lti": {"iss": issuer, "name": None}})) == no_reads
    assert err(q(api, user.api_key, {"lti": {"iss": issuer, "name": "Mine"}})) == ADMIN_ONLY
    assert err(q(api, admin_key, {"lti": {"iss": "i" * 501, "name": "x"}})) == (
        "error: value too long for type character varying(500)"
    )
    reply = q(api, admin_key, {"lti": {"iss": issuer, "config": "text"}})
    assert err(reply) == "FATAL: error setting 'config' -- Error: lti.config must be an object"
    (row,) = db.execute(select(lti).where(lti.c.iss == issuer))
    assert row.name == "Campus LMS"


# --- compute_images ---------------------------------------------------------------------------


def test_compute_images_read_by_anybody(
    api: ApiClient, db: Database, admin_key: str, user: User
) -> None:
    image = f"img-{uuid.uuid4().hex[:6]}"
    db.execute(
        insert(compute_images).values(
            id=image,
            src="https://git.example/img.git",
            type="custom",
            display="My image",
            url="https://img.example",
            desc="An image",
            path="index.ipynb",
            disabled=False,
        )
    )
    fields = dict.fromkeys(("id", "src", "type", "display", "url", "desc", "path", "disabled"))
    rows = ok(q(api, user.api_key, {"compute_images": [fields]}))["compute_images"]
    assert {
        "id": image,
        "src": "https://git.example/img.git",
        "type": "custom",
        "display": "My image",
        "url": "https://img.example",
        "desc": "An image",
        "path": "index.ipynb",
        "disabled": False,
    } in rows
    one = ok(q(api, user.api_key, {"compute_images": {"id": image, "display": None}}))
    assert one == {"compute_images": {"id": image, "display": "My image"}}
    for key in (user.api_key, admin_key):
        reply = q(api, key, {"compute_images": {"id": image, "display": "Renamed"}})
        assert err(reply) == "FATAL: user set queries not allowed for table 'compute_images'"


# --- central_log ------------------------------------------------------------------------------


def _log_row(db: Database, entry_id: str) -> Any:
    rows = db.execute(select(central_log).where(central_log.c.id == entry_id))
    return rows[0] if rows else None


def test_central_log_takes_browser_events(api: ApiClient, db: Database, user: User) -> None:
    entry = str(uuid.uuid4())
    query = {"id": entry, "event": "webapp-file-open", "value": {"path": "a.ipynb"}}
    assert ok(q(api, user.api_key, {"central_log": query})) == {}
    row = _log_row(db, entry)
    assert (row.event, row.value) == ("webapp-file-open", {"path": "a.ipynb"})
    assert row.time is not None
    # Entries are a record: not even their author rewrites them.
    reply = q(api, user.api_key, {"central_log": {**query, "value": {"path": "b"}}})
    assert err(reply) == f"FATAL: central_log entry '{entry}' already exists"
    assert _log_row(db, entry).value == {"path": "a.ipynb"}
    reply = q(api, user.api_key, {"central_log": {"id": entry, "event": None}})
    assert err(reply) == "FATAL: get queries not allowed for table 'central_log'"


def test_central_log_server_entries_stay_untouched(
    api: ApiClient, db: Database, user: User
) -> None:
    (server_entry,) = db.execute(
        select(central_log).where(central_log.c.event == "create_account").limit(1)
    )
    reply = q(
        api,
        user.api_key,
        {"central_log": {"id": server_entry.id, "event": "webapp-x", "value": {"forged": 1}}},
    )
    assert err(reply) == f"FATAL: central_log entry '{server_entry.id}' already exists"
    assert _log_row(db, server_entry.id).value == server_entry.value


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"event": "create_account"}, "event must start with 'webapp-'"),
        ({"event": None}, "event must start with 'webapp-'"),
        ({"event": 7}, "event must start with 'webapp-'"),
        ({"id": "abc"}, 'error: invalid input syntax for type uuid: "abc"'),
        ({"id": None}, "FATAL: query must specify (primary) key 'id'"),
        (
            {"value": "text"},
            "FATAL: error setting 'value' -- Error: central_log.value must be an object",
        ),
        ({"event": "webapp-" + "e" * 100}, "error: value too long for type character varying(100)"),
        ({"time": "later"}, 'error: invalid input syntax for type timestamp: "later"'),
        ({"account_id": "me"}, "FATAL: changing central_log.account_id not allowed"),
    ],
)
def test_central_log_bad_input(
    api: ApiClient, db: Database, user: User, fields: dict[str, Any], message: str
) -> None:
    entry = str(uuid.uuid4())
    query = {"id": entry, "event": "webapp-test", "value": {"a": 1}, **fields}
    query = {name: value for name, value in query.items() if value is not None}
    assert err(q(api, user.api_key, {"central_log": query}, options=[{"set": True}])) == message
    assert _log_row(db, entry) is None


# --- tables calchub leaves out ----------------------------------------------------------------


@pytest.mark.parametrize("table", ["organizations", "blobs"])
def test_left_out_tables(api: ApiClient, admin_key: str, user: User, table: str) -> None:
    for key in (user.api_key, admin_key):
        reply = q(api, key, {table: {"id": str(uuid.uuid4()), "name": None}})
        assert err(reply) == f"FATAL: get queries not allowed for table '{table}'"
        reply = q(api, key, {table: {"id": str(uuid.uuid4()), "name": "x"}})
        assert err(reply) == f"FATAL: user set queries not allowed for table '{table}'"


# --- who may do what --------------------------------------------------------------------------

ADMIN_GETS = [
    {"site_settings": [{"name": None, "value": None}]},
    {"whitelabeling": [{"id": None, "theme": None}]},
    {"registration_tokens": {"token": "*", "descr": None}},
]
ADMIN_SETS = [
    {"server_settings": {"name": "site_name", "value": "taken"}},
    {"site_settings": {"name": "site_name", "value": "taken"}},
    {"system_notifications": {"id": "00000000-0000-4000-8000-000000000001", "text": "hi"}},
    {"whitelabeling": {"id": "stolen", "theme": {"site_name": "x"}}},
    {"lti": {"iss": "https://evil.example", "name": "x"}},
    {"registration_tokens": {"token": "sneaky"}},
]
EVERYBODY_GETS = [
    {"system_notifications": [{"id": None, "text": None}]},
    {"compute_images": [{"id": None}]},
]


@pytest.mark.parametrize("role", ["owner", "collab", "stranger"])
def test_site_tables_for_non_admins(
    api: ApiClient, db: Database, team: dict[str, Any], role: str
) -> None:
    key = team[role].api_key
    before = {
        "notifications": db.execute(select(system_notifications.c.id)),
        "whitelabeling": db.execute(select(whitelabeling.c.id)),
        "lti": db.execute(select(lti.c.iss)),
        "tokens": db.execute(select(registration_tokens.c.token)),
        "site_name": _setting(db, "site_name"),
    }
    for query in ADMIN_GETS + ADMIN_SETS:
        assert err(q(api, key, query)) == ADMIN_ONLY, query
    for query in EVERYBODY_GETS:
        assert set(ok(q(api, key, query))) == set(query)
    after = {
        "notifications": db.execute(select(system_notifications.c.id)),
        "whitelabeling": db.execute(select(whitelabeling.c.id)),
        "lti": db.execute(select(lti.c.iss)),
        "tokens": db.execute(select(registration_tokens.c.token)),
        "site_name": _setting(db, "site_name"),
    }
    assert after == before


def test_site_tables_for_admins(api: ApiClient, admin_key: str) -> None:
    for query in ADMIN_GETS + EVERYBODY_GETS:
        assert set(ok(q(api, admin_key, query))) == set(query), query
