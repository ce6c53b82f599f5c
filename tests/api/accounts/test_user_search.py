"""user_search over real HTTP: name prefixes, exact addresses, admin mode and limits."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from calchub.db.tables import (
    accounts,
    password_reset_attempts,
)
from tests.api.accounts.helpers import (
    NOT_ADMIN,
    MakeUser,
    ago,
    assert_error,
    auth_ok,
    delete_user,
    make_admin,
)
from tests.api.expect import assert_invalid, missing, unexpected
from tests.conftest import User
from tests.harness import ApiClient, Database, Server

# --- user_search ---------------------------------------------------------------------------


def search(api: ApiClient, key: str, query: str, **options: Any) -> list[dict[str, Any]]:
    reply = api.call("user_search", key, {"query": query, **options})
    assert reply.status == 200, reply.body
    assert reply.event == "user_search_results", reply.body
    assert set(reply.body) == {"event", "id", "results"}
    results = reply["results"]
    assert isinstance(results, list)
    return results


def ids(results: list[dict[str, Any]]) -> list[str]:
    return [row["account_id"] for row in results]


PUBLIC_FIELDS = {"account_id", "first_name", "last_name", "last_active", "created"}


def tag() -> str:
    return "q" + uuid.uuid4().hex[:10]


CROWD_SIZE = 55


@pytest.fixture(scope="module")
def crowd(api: ApiClient, admin_key: str) -> tuple[str, list[str]]:
    """More accounts than a non-admin may see at once, all named `<prefix>...`."""
    prefix = "Crowd" + uuid.uuid4().hex[:8]

    def create(n: int) -> str:
        reply = api.call(
            "create_account",
            admin_key,
            {
                "first_name": f"{prefix}{n:02d}",
                "last_name": "Member",
                "email_address": f"{prefix.lower()}-{n}@example.org",
                "password": "crowd pass",
                "agreed_to_terms": True,
            },
        )
        assert reply.event == "account_created", reply.body
        return str(reply["account_id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        members = list(pool.map(create, range(CROWD_SIZE)))
    return prefix, members


def test_user_search_name_prefix_on_first_or_last_name(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    target = make_user(first_name=f"Ada{t}", last_name=f"Lovelace{t}")
    caller = make_user()
    for query in [
        f"ada{t}",
        f"ADA{t}",
        f"Ada{t[:4]}",
        f"lovelace{t}",
        f"LoveLace{t[:3]}",
        f"  ada{t}  ",
    ]:
        results = search(api, caller.api_key, query)
        assert ids(results) == [target.account_id], query
        (row,) = results
        assert set(row) == PUBLIC_FIELDS
        assert row["first_name"] == f"Ada{t}" and row["last_name"] == f"Lovelace{t}"
        assert row["last_active"] is None or isinstance(row["last_active"], str)
        assert row["created"].endswith("Z")
    # A prefix, not a substring.
    assert search(api, caller.api_key, f"da{t}") == []
    assert search(api, caller.api_key, t) == []
    assert search(api, caller.api_key, f"ada{t}x") == []


def test_user_search_prefix_ends_where_the_next_name_begins(
    api: ApiClient, make_user: MakeUser
) -> None:
    """The prefix's first and last matches, and its neighbours on either side in sort order,
    which the index range must leave out."""
    t = tag()
    before = f"Edge{t[:-1]}{chr(ord(t[-1]) - 1)}zz"
    after = f"Edge{t[:-1]}{chr(ord(t[-1]) + 1)}"
    exact = make_user(first_name=f"Edge{t}", last_name="Exact")
    longer = make_user(first_name="Someone", last_name=f"EDGE{t}\u00e9t\u00e9")
    make_user(first_name=before, last_name="Before")
    make_user(first_name=after, last_name="After")
    caller = make_user()
    expected = sorted([exact.account_id, longer.account_id])
    assert sorted(ids(search(api, caller.api_key, f"edge{t}"))) == expected
    assert ids(search(api, caller.api_key, f"edge{t} exa")) == [exact.account_id]
    assert len(search(api, caller.api_key, f"edge{t[:-1]}")) == 4


def test_user_search_all_terms_must_match(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    both = make_user(first_name=f"Grace{t}", last_name=f"Hopper{t}")
    make_user(first_name=f"Grace{t}", last_name=f"Kelly{t}")
    caller = make_user()
    assert ids(search(api, caller.api_key, f"grace{t} hopper{t}")) == [both.account_id]
    assert ids(search(api, caller.api_key, f"hop  grace{t}\t")) == [both.account_id]
    assert search(api, caller.api_key, f"grace{t} turing{t}") == []
    assert len(search(api, caller.api_key, f"grace{t}")) == 2
    # Both terms may match the same name field.
    assert len(search(api, caller.api_key, f"grace{t} gra")) == 2


def test_user_search_items_are_ored(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    one = make_user(first_name=f"Alan{t}", last_name="Turing")
    two = make_user(first_name=f"Edsger{t}", last_name="Dijkstra")
    caller = make_user()
    expected = sorted([one.account_id, two.account_id])
    for query in [
        f"alan{t}, edsger{t}",
        f"alan{t};edsger{t}",
        f"alan{t}\nedsger{t}",
        f"alan{t} turing; edsger{t} dijkstra, nobody{t}",
        f",;alan{t},,edsger{t};",
    ]:
        assert sorted(ids(search(api, caller.api_key, query))) == expected, query
    assert ids(search(api, caller.api_key, f"alan{t} dijkstra, edsger{t}")) == [two.account_id]


def test_user_search_form_body(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    target = make_user(first_name=f"Form{t}", last_name="Body")
    caller = make_user()
    reply = api.call(
        "user_search",
        caller.api_key,
        form={"query": f"form{t}", "limit": "3", "active": "", "admin": "false"},
    )
    assert reply.event == "user_search_results"
    assert ids(reply["results"]) == [target.account_id]


def test_user_search_exact_email_reveals_address(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    target = make_user(first_name=f"Mail{t}", last_name="Person", email=f"Mail.{t}@Example.com")
    caller = make_user()
    for query in [
        target.email,
        target.email.upper(),
        f"  {target.email} ",
        f"Mail Person <{target.email}>",
        f"junk {target.email} more-junk",
    ]:
        results = search(api, caller.api_key, query)
        assert ids(results) == [target.account_id], query
        (row,) = results
        assert row["email_address"] == target.email == f"mail.{t}@example.com"
        assert {
            "account_id",
            "first_name",
            "last_name",
            "email_address",
            "last_active",
            "created",
        } <= set(row)
        assert set(row) <= PUBLIC_FIELDS | {"email_address", "email_address_verified"}
        assert "banned" not in row and "password_hash" not in row
    # Only exact addresses: no prefix or domain matching through the email path.
    assert search(api, caller.api_key, f"mail.{t}@example.co") == []
    assert search(api, caller.api_key, f"mail.{t}@") == []
    assert search(api, caller.api_key, "@example.com") == []


def test_user_search_name_results_never_show_email(
    api: ApiClient, make_user: MakeUser, admin_key: str
) -> None:
    t = tag()
    target = make_user(first_name=f"Secret{t}", last_name="Address")
    caller = make_user()
    for key in [caller.api_key, target.api_key, admin_key]:
        (row,) = search(api, key, f"secret{t}")
        assert "email_address" not in row
        assert set(row) == PUBLIC_FIELDS
    # Mixing an email item in does not leak addresses of the name matches.
    other = make_user(first_name=f"Other{t}", last_name="Person")
    results = {
        row["account_id"]: row for row in search(api, caller.api_key, f"secret{t}, {other.email}")
    }
    assert set(results) == {target.account_id, other.account_id}
    assert "email_address" not in results[target.account_id]
    assert results[other.account_id]["email_address"] == other.email


def test_user_search_email_and_name_together(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    a = make_user(first_name=f"Both{t}", last_name="A")
    b = make_user(first_name=f"Else{t}", last_name="B")
    caller = make_user()
    results = search(api, caller.api_key, f"{b.email}; both{t}")
    assert sorted(ids(results)) == sorted([a.account_id, b.account_id])


def test_user_search_limit(
    api: ApiClient, make_user: MakeUser, crowd: tuple[str, list[str]]
) -> None:
    prefix, members = crowd
    caller = make_user()
    key = caller.api_key
    assert len(search(api, key, prefix)) == 20
    assert len(search(api, key, prefix, limit=5)) == 5
    assert len(search(api, key, prefix, limit=50)) == 50
    assert len(search(api, key, prefix, limit=51)) == 50
    assert len(search(api, key, prefix, limit=1000)) == 50
    assert len(search(api, key, prefix, limit=10**12)) == 50
    assert search(api, key, prefix, limit=0) == []
    reply = api.call("user_search", key, form={"query": prefix.lower(), "limit": "7"})
    assert len(reply["results"]) == 7
    assert set(ids(search(api, key, prefix, limit=50))) <= set(members)


def test_user_search_email_matches_are_not_limited(
    api: ApiClient, make_user: MakeUser, crowd: tuple[str, list[str]]
) -> None:
    prefix, _members = crowd
    extra = [make_user() for _ in range(3)]
    caller = make_user()
    query = ", ".join([prefix] + [u.email for u in extra])
    results = search(api, caller.api_key, query, limit=2)
    found = set(ids(results))
    assert {u.account_id for u in extra} <= found
    assert len(results) == 5
    assert len(search(api, caller.api_key, query, limit=0)) == 3


def test_user_search_admin_mode_limit(
    api: ApiClient, admin_key: str, crowd: tuple[str, list[str]]
) -> None:
    prefix, members = crowd
    assert len(search(api, admin_key, prefix, admin=True)) == 20
    results = search(api, admin_key, prefix.lower(), admin=True, limit=100)
    assert sorted(ids(results)) == sorted(members)
    assert len(search(api, admin_key, prefix, admin=True, limit=3)) == 3
    results = search(api, admin_key, prefix, admin=True, limit=10**12)
    assert len(results) == CROWD_SIZE
    reply = api.call("user_search", admin_key, {"query": prefix, "admin": True, "limit": 10**40})
    assert reply.status in (200, 400), reply.body
    if reply.status == 200:
        assert reply.event == "user_search_results", reply.body
        assert len(reply["results"]) == CROWD_SIZE
    else:
        assert_invalid(reply, "limit")


def test_user_search_admin_flag_needs_admin(api: ApiClient, make_user: MakeUser) -> None:
    caller = make_user()
    reply = api.call(
        "user_search", caller.api_key, {"query": caller.first_name, "admin": True, "id": "s1"}
    )
    assert_error(reply, NOT_ADMIN, "s1")
    reply = api.call("user_search", caller.api_key, form={"query": "x", "admin": "true"})
    assert_error(reply, NOT_ADMIN)
    reply = api.call("user_search", caller.api_key, form={"query": "x", "admin": "1"})
    assert_error(reply, NOT_ADMIN)
    # admin false is an ordinary search.
    assert search(api, caller.api_key, caller.first_name, admin=False) != []
    reply = api.call("user_search", caller.api_key, form={"query": "x", "admin": "false"})
    assert reply.event == "user_search_results"


def test_user_search_admin_mode_substring_shows_email_and_banned(
    api: ApiClient, make_user: MakeUser, admin_key: str, server: Server
) -> None:
    t = tag()
    target = make_user(first_name=f"Xx{t}Mid", last_name="Surname", email=f"adm-{t}@corp.example")
    banned = make_user(first_name=f"Yy{t}Mid", last_name="Bad", email=f"bad-{t}@corp.example")
    server.cli("admin", "ban", banned.account_id)

    results = {row["account_id"]: row for row in search(api, admin_key, f"{t}mid", admin=True)}
    assert set(results) == {target.account_id, banned.account_id}
    assert results[target.account_id]["email_address"] == target.email
    assert results[target.account_id]["banned"] is False
    assert results[banned.account_id]["banned"] is True
    assert set(results[target.account_id]) == PUBLIC_FIELDS | {"email_address", "banned"}

    # Substrings of the email address match too. Among other items an address is a
    # substring item; on its own it is an exact lookup.
    assert ids(search(api, admin_key, f"m-{t}", admin=True)) == [target.account_id]
    assert ids(search(api, admin_key, f"dm-{t}@corp.example, none{t}", admin=True)) == [
        target.account_id
    ]
    both = sorted([target.account_id, banned.account_id])
    assert sorted(ids(search(api, admin_key, f"{t}@corp.example; none{t}", admin=True))) == both
    assert sorted(ids(search(api, admin_key, f"{t}@CORP.example", admin=True))) == []
    # The same query without admin mode: prefix only, no emails.
    assert search(api, admin_key, f"{t}mid") == []


def test_user_search_admin_mode_for_promoted_account(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    t = tag()
    target = make_user(first_name=f"Pro{t}", last_name="Moted")
    promoted = make_user()
    make_admin(db, promoted.account_id)
    reply = api.call("user_search", promoted.api_key, form={"query": t, "admin": "true"})
    assert reply.event == "user_search_results", reply.body
    assert ids(reply["results"]) == [target.account_id]
    assert reply["results"][0]["email_address"] == target.email


def test_user_search_admin_exact_lookup(
    api: ApiClient, make_user: MakeUser, admin_key: str
) -> None:
    t = tag()
    target = make_user(first_name=f"Exact{t}", last_name="Lookup")
    make_user(first_name=f"Exact{t}", last_name="Other", email=f"x{target.email}")
    for query in [
        target.email,
        target.email.upper(),
        f" {target.email} ",
        target.account_id,
        target.account_id.upper(),
    ]:
        results = search(api, admin_key, query, admin=True)
        assert ids(results) == [target.account_id], query
        assert results[0]["email_address"] == target.email
        assert results[0]["banned"] is False
    assert search(api, admin_key, str(uuid.uuid4()), admin=True) == []
    assert search(api, admin_key, f"nobody-{t}@example.com", admin=True) == []
    # A uuid is not searched for by non-admins.
    assert search(api, admin_key, target.account_id) == []


def test_user_search_excludes_deleted_and_unlisted(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    t = tag()
    visible = make_user(first_name=f"Vis{t}", last_name="Ible")
    gone = make_user(first_name=f"Vis{t}", last_name="Deleted")
    hidden = make_user(first_name=f"Vis{t}", last_name="Unlisted")
    caller = make_user()
    assert len(search(api, caller.api_key, f"vis{t}")) == 3
    delete_user(api, gone)
    db.execute(
        update(accounts).where(accounts.c.account_id == hidden.account_id).values(unlisted=True)
    )
    assert ids(search(api, caller.api_key, f"vis{t}")) == [visible.account_id]
    assert search(api, caller.api_key, f"vis{t} unlisted") == []
    assert search(api, caller.api_key, gone.email) == []
    # An unlisted account can still be found by its exact address.
    assert ids(search(api, caller.api_key, hidden.email)) == [hidden.account_id]


def test_user_search_active_interval(api: ApiClient, make_user: MakeUser, db: Database) -> None:
    t = tag()
    old = make_user(first_name=f"Act{t}", last_name="Old")
    idle = make_user(first_name=f"Act{t}", last_name="Idle")
    fresh = make_user(first_name=f"Act{t}", last_name="Fresh")
    caller = make_user()
    db.execute(
        update(accounts)
        .where(accounts.c.account_id == old.account_id)
        .values(created=ago(days=400), last_active=ago(days=10))
    )
    db.execute(
        update(accounts)
        .where(accounts.c.account_id == idle.account_id)
        .values(created=ago(days=400), last_active=None)
    )
    everyone = sorted([old.account_id, idle.account_id, fresh.account_id])
    assert sorted(ids(search(api, caller.api_key, f"act{t}"))) == everyone
    assert sorted(ids(search(api, caller.api_key, f"act{t}", active=""))) == everyone
    for active in ["1 day", "2 days", "1 week", "12 hours", "5 minutes"]:
        assert ids(search(api, caller.api_key, f"act{t}", active=active)) == [fresh.account_id]
    for active in ["30 days", "2 weeks", "1 month"]:
        found = sorted(ids(search(api, caller.api_key, f"act{t}", active=active)))
        assert found == sorted([old.account_id, fresh.account_id]), active
    found = sorted(ids(search(api, caller.api_key, f"act{t}", active="2 years")))
    assert found == everyone
    reply = api.call("user_search", caller.api_key, form={"query": f"act{t}", "active": "1 day"})
    assert ids(reply["results"]) == [fresh.account_id]


def test_user_search_invalid_active(api: ApiClient, user: User, db: Database) -> None:
    for active in ["soon", "1 fortnight", "day", "-1 day", "1 day; DELETE FROM accounts", "1 day'"]:
        reply = api.call("user_search", user.api_key, {"query": user.first_name, "active": active})
        assert reply.status == 200, reply.body
        assert reply.event == "error", (active, reply.body)
        assert isinstance(reply["error"], str) and "active" in reply["error"]
    assert (
        db.execute(select(accounts.c.account_id).where(accounts.c.account_id == user.account_id))
        != []
    )
    assert_invalid(api.call("user_search", user.api_key, {"query": "x", "active": 1}), "active")
    # Longer than any calendar: an error or everyone, never a server error.
    for active in ["99999999999999 years", "9" * 500 + " days", "10000 years"]:
        reply = api.call("user_search", user.api_key, {"query": user.first_name, "active": active})
        assert reply.status == 200, reply.body
        assert reply.event in ("error", "user_search_results"), reply.body
        if reply.event == "user_search_results":
            assert ids(reply["results"]) == [user.account_id]


def test_user_search_sorted_by_name(api: ApiClient, make_user: MakeUser, db: Database) -> None:
    t = tag()
    names = [
        (f"Srt{t}b", "Zeta"),
        (f"srt{t}a", "Young"),
        (f"SRT{t}a", "Xavier"),
        (f"Srt{t}c", "Alpha"),
        (f"srt{t}ab", "Beta"),
    ]
    made = {
        make_user(first_name=first, last_name=last).account_id: (first, last)
        for first, last in names
    }
    caller = make_user()
    # Recent activity must not change the order.
    newest = next(iter(made))
    db.execute(
        update(accounts)
        .where(accounts.c.account_id == newest)
        .values(last_active=datetime.now(UTC))
    )
    results = search(api, caller.api_key, f"srt{t}")
    got = [(row["first_name"], row["last_name"]) for row in results]
    assert got == sorted(names, key=lambda n: f"{n[0]} {n[1]}".lower())
    assert [g[1] for g in got] == ["Xavier", "Young", "Beta", "Zeta", "Alpha"]


def test_user_search_wildcards_are_literal(
    api: ApiClient, make_user: MakeUser, admin_key: str
) -> None:
    t = tag()
    target = make_user(first_name=f"Pct{t}xyz", last_name="Literal")
    caller = make_user()
    for query in [f"pct{t}%", f"pct{t}_yz", f"pct{t}%z", "%", "_", "\\", f"pct{t}\\"]:
        assert target.account_id not in ids(search(api, caller.api_key, query)), query
        assert target.account_id not in ids(search(api, admin_key, query, admin=True)), query
    assert search(api, caller.api_key, "%") == []
    odd = make_user(first_name=f"Odd{t}%_\\", last_name="Chars")
    assert ids(search(api, caller.api_key, f"odd{t}%_\\")) == [odd.account_id]
    assert ids(search(api, admin_key, f"{t}%_\\", admin=True)) == [odd.account_id]


def test_user_search_non_ascii_names(api: ApiClient, make_user: MakeUser) -> None:
    t = tag()
    target = make_user(first_name=f"Élodie{t}", last_name=f"Straße{t}")
    caller = make_user()
    for query in [f"Élodie{t}", f"élodie{t}", f"ÉLODIE{t}", f"straße{t}", f"STRAßE{t}", "straß"]:
        assert ids(search(api, caller.api_key, query)) == [target.account_id], query


def test_user_search_ascii_queries_find_names_that_only_lower_into_them(
    api: ApiClient, make_user: MakeUser, admin_key: str
) -> None:
    """On SQLite an ASCII query is compared by SQLite's own LIKE, which folds ASCII only,
    and names with other characters are lowered by Python (accounts/search.py): a name
    whose lowercase only Unicode knows (the Kelvin sign lowers to `k`) is found all the
    same, as is one whose other characters come after the query."""
    t = tag()
    kelvin = make_user(first_name=f"\u212aelvin{t}", last_name="Sign")
    later = make_user(first_name=f"Mar{t}\u00eda", last_name="Later")
    upper = make_user(first_name=f"MAR{t}", last_name="Upper")
    caller = make_user()
    assert ids(search(api, caller.api_key, f"kelvin{t}")) == [kelvin.account_id]
    assert ids(search(api, caller.api_key, f"KELVIN{t}")) == [kelvin.account_id]
    assert sorted(ids(search(api, caller.api_key, f"mar{t}"))) == sorted(
        [later.account_id, upper.account_id]
    )
    assert ids(search(api, caller.api_key, f"mar{t}\u00ed")) == [later.account_id]
    assert ids(search(api, admin_key, f"elvin{t}", admin=True)) == [kelvin.account_id]
    assert ids(search(api, admin_key, f"kelvin{t}", admin=True)) == [kelvin.account_id]
    assert sorted(ids(search(api, admin_key, f"ar{t}", admin=True))) == sorted(
        [later.account_id, upper.account_id]
    )


def test_user_search_nul_characters(api: ApiClient, user: User, admin_key: str) -> None:
    for query in ["\x00", f"{user.first_name}\x00", f"a\x00b@example.com, {user.first_name}"]:
        for key, admin in [(user.api_key, False), (admin_key, True)]:
            reply = api.call("user_search", key, {"query": query, "admin": admin})
            assert_invalid(reply, "query")
    reply = api.call("user_search", user.api_key, {"query": user.first_name, "active": "\x00"})
    assert_invalid(reply, "active")


@pytest.mark.usefixtures("reset_limits")
def test_control_characters_in_account_fields(api: ApiClient, user: User, db: Database) -> None:
    key = user.api_key
    for address in ["a\x00@example.com", f"{user.email}\x00"]:
        assert_invalid(
            api.call("forgot_password", key, {"email_address": address}), "email_address"
        )
    for address in [f"{user.email}\x1b", f"\x07{user.email}", "a\x7f@b.c", f"{user.email}\n"]:
        reply = api.call("forgot_password", key, {"email_address": address})
        assert reply["error"] == "Invalid email address.", address
    assert db.execute(select(password_reset_attempts)) == []
    reply = api.call(
        "reset_forgot_password", key, {"reset_code": "\x00", "new_password": "abcdefg"}
    )
    assert_invalid(reply, "reset_code")
    reply = api.call(
        "reset_forgot_password",
        key,
        {"reset_code": str(uuid.uuid4()), "new_password": "abc\x00def"},
    )
    assert_invalid(reply, "new_password")
    assert_invalid(
        api.call("user_auth", key, {"account_id": f"{user.account_id}\x00", "password": "x"}),
        "account_id",
    )
    assert_invalid(
        api.call("user_auth", key, {"account_id": user.account_id, "password": "\x00"}), "password"
    )
    assert_invalid(api.call("unlink_passport", key, {"strategy": "g\x00", "id": "1"}), "strategy")
    assert_invalid(api.call("unlink_passport", key, {"strategy": "g", "id": "1\x00"}), "id")
    # None of that locked the account's own user_auth.
    assert auth_ok(api, user, user, user.password)


def test_user_search_empty_queries(api: ApiClient, user: User, admin_key: str) -> None:
    for query in ["", "   ", ",;\n", "<>", "@"]:
        assert search(api, user.api_key, query) == [], query
        assert search(api, admin_key, query, admin=True) == [], query


def test_user_search_bad_parameters(api: ApiClient, user: User, server: Server) -> None:
    key = user.api_key
    reply = api.call("user_search", key, {})
    assert (reply.status, reply.body) == (400, missing("query"))
    reply = api.call("user_search", key, {"query": None})
    assert (reply.status, reply.body) == (400, missing("query"))
    reply = api.call("user_search", key, {"query": "x", "offset": 3})
    assert (reply.status, reply.body) == (400, unexpected("offset"))
    assert_invalid(api.call("user_search", key, {"query": ["a", "b"]}), "query")
    assert_invalid(api.call("user_search", key, {"query": "x", "limit": -1}), "limit")
    assert_invalid(api.call("user_search", key, {"query": "x", "limit": 2.5}), "limit")
    assert_invalid(api.call("user_search", key, {"query": "x", "limit": "5"}), "limit")
    assert_invalid(api.call("user_search", key, form={"query": "x", "limit": "-3"}), "limit")
    assert_invalid(api.call("user_search", key, {"query": "x", "admin": "yes"}), "admin")
    assert_invalid(api.call("user_search", key, {"query": "x" * 100_001}), "query")
    server.cli("admin", "ban", user.account_id)
    reply = api.call("user_search", key, {"query": "x"})
    assert reply.status == 400 and reply["error"].startswith("User is BANNED.")


def test_user_search_huge_queries(api: ApiClient, make_user: MakeUser, admin_key: str) -> None:
    t = tag()
    target = make_user(first_name=f"Huge{t}", last_name="Query")
    caller = make_user()
    # Repeated words and items are searched once.
    for query in [
        f"huge{t} " * 5000,
        ", ".join([f"huge{t} query"] * 3000),
        "; ".join([f"huge{t}"] + [f"nomatch{n}{t}" for n in range(50)]),
    ]:
        assert ids(search(api, caller.api_key, query)) == [target.account_id]
        assert ids(search(api, admin_key, query, admin=True)) == [target.account_id]
    # Very many different words or addresses: an answer, never a server error.
    emails = ", ".join(f"u{n}-{t}@example.com" for n in range(2500))
    for query in [
        ", ".join(f"name{n}" for n in range(5000)),
        " ".join(f"w{n}" for n in range(5000)),
        ", ".join(" ".join(f"w{n}x{m}" for m in range(10)) for n in range(1000)),
        emails,
    ]:
        for key, admin in [(caller.api_key, False), (admin_key, True)]:
            reply = api.call("user_search", key, {"query": query, "admin": admin})
            assert reply.status == 200, reply.body
            assert reply.event in ("user_search_results", "error"), reply.body
            if reply.event == "error":
                assert isinstance(reply["error"], str)
            else:
                assert reply["results"] == []
    assert search(api, caller.api_key, f"{emails}, {target.email}")[0]["account_id"] == (
        target.account_id
    )
