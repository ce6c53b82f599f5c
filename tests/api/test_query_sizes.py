"""What one query request may write: each JSON value and each text is capped (a merged map is
measured as it would be stored), and a request carries a bounded number of queries."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from calchub.db.tables import accounts, central_log
from tests.api.queries import err, ok, q
from tests.conftest import User
from tests.harness import ApiClient, Database

MAX_JSON = 64 * 1024


def test_a_huge_json_value_is_refused_and_not_stored(
    api: ApiClient, db: Database, user: User
) -> None:
    entry = str(uuid.uuid4())
    big = {"blob": "x" * 5_000_000}
    reply = q(api, user.api_key, {"central_log": {"id": entry, "event": "webapp-x", "value": big}})
    assert err(reply).startswith("FATAL: error setting 'value' -- Error: value too large (")
    assert err(reply).endswith(f"bytes of JSON; at most {MAX_JSON})")
    assert db.execute(select(central_log).where(central_log.c.id == entry)) == []


def test_merged_maps_cannot_grow_past_the_cap(api: ApiClient, db: Database, user: User) -> None:
    half = "y" * (MAX_JSON // 2)
    first = {"accounts": {"account_id": user.account_id, "other_settings": {"a": half}}}
    assert ok(q(api, user.api_key, first)) == {}
    second = {"accounts": {"account_id": user.account_id, "other_settings": {"b": half}}}
    assert err(q(api, user.api_key, second)).startswith(
        "FATAL: error setting 'other_settings' -- Error: value too large ("
    )
    (row,) = db.execute(
        select(accounts.c.other_settings).where(accounts.c.account_id == user.account_id)
    )
    assert "b" not in row.other_settings and row.other_settings["a"] == half


def test_a_request_carries_at_most_fifty_queries(api: ApiClient, user: User) -> None:
    entry = {"event": "webapp-x", "value": {}}
    many = [{"central_log": {**entry, "id": str(uuid.uuid4())}} for _ in range(51)]
    assert err(q(api, user.api_key, many)) == "FATAL: at most 50 queries per request"
    assert ok(q(api, user.api_key, many[:50])) == [{}] * 50
