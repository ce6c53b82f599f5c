"""log_client_error, metrics / start_metrics and the billing events over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from calchub.db.tables import account_metrics, client_error_log
from tests.api.expect import NO_ACCOUNT_KEY, assert_invalid, missing, unexpected
from tests.conftest import User
from tests.harness import ApiClient, Database, Reply, Server

MakeUser = Callable[..., User]

NOT_CONFIGURED = "billing is not configured on this server"


def assert_banned(reply: Reply) -> None:
    assert reply.status == 400, reply.body
    assert reply["error"].startswith("User is BANNED.  If this is a mistake, please contact ")


def delete_user(api: ApiClient, user: User) -> None:
    reply = api.call("delete_account", user.api_key, {"account_id": user.account_id})
    assert reply.event == "account_deleted", reply.body


def error_rows(db: Database, **where: Any) -> list[Any]:
    query = select(client_error_log)
    for column, value in where.items():
        query = query.where(client_error_log.c[column] == value)
    return db.execute(query)


def stored_metrics(db: Database, account_id: str) -> list[Any]:
    return db.execute(select(account_metrics).where(account_metrics.c.account_id == account_id))


def close_to_now(moment: datetime, slack: timedelta = timedelta(minutes=2)) -> bool:
    return abs(moment - datetime.now(UTC)) < slack


# --- log_client_error ----------------------------------------------------------------------


def test_log_client_error_stores_row_with_message_id(
    api: ApiClient, user: User, db: Database
) -> None:
    msg_id = f"err-{uuid.uuid4()}"
    text = "TypeError: undefined is not a function\n    at x (app.js:1:2)"
    reply = api.call("log_client_error", user.api_key, {"error": text, "id": msg_id})
    assert reply.status == 200
    assert reply.body == {"event": "success", "id": msg_id}

    (row,) = error_rows(db, id=msg_id)
    assert row.event == "error"
    assert row.error == text
    assert row.account_id == user.account_id
    assert close_to_now(row.time)
    assert abs(row.expire - row.time - timedelta(days=30)) < timedelta(seconds=5)


def test_log_client_error_without_id_uses_the_generated_one(
    api: ApiClient, user: User, db: Database
) -> None:
    reply = api.call("log_client_error", user.api_key, {"error": "no id given"})
    assert reply.event == "success"
    generated = reply["id"]
    assert uuid.UUID(generated).version == 4
    (row,) = error_rows(db, id=generated)
    assert (row.error, row.account_id) == ("no id given", user.account_id)


def test_log_client_error_form_body(api: ApiClient, user: User, db: Database) -> None:
    msg_id = f"form-{uuid.uuid4()}"
    text = "line one\nline two & <three> 'quoted' \"double\" ünïcödé 🚀"
    reply = api.call("log_client_error", user.api_key, form={"error": text, "id": msg_id})
    assert reply.body == {"event": "success", "id": msg_id}
    (row,) = error_rows(db, id=msg_id)
    assert row.error == text
    assert row.account_id == user.account_id


def test_log_client_error_keeps_text_verbatim(api: ApiClient, user: User, db: Database) -> None:
    for text in [
        "",
        " ",
        "'; DROP TABLE client_error_log; --",
        "tabbed\tand\r\nwindows lines",
        "x" * 100_000,
    ]:
        msg_id = str(uuid.uuid4())
        reply = api.call("log_client_error", user.api_key, {"error": text, "id": msg_id})
        assert reply.body == {"event": "success", "id": msg_id}, text[:40]
        (row,) = error_rows(db, id=msg_id)
        assert row.error == text


def test_log_client_error_with_nul_characters(api: ApiClient, user: User, db: Database) -> None:
    marker = f"nul-{uuid.uuid4()}"
    reply = api.call("log_client_error", user.api_key, {"error": "a\x00b", "id": marker})
    assert_invalid(reply, "error")
    reply = api.call("log_client_error", user.api_key, {"error": marker, "id": "x\x00y"})
    assert_invalid(reply, "id")
    assert error_rows(db, id=marker) == [] and error_rows(db, error=marker) == []


def test_log_client_error_non_string_id(api: ApiClient, user: User, db: Database) -> None:
    number = 10**9 + int(uuid.uuid4().int % 10**6)
    reply = api.call("log_client_error", user.api_key, {"error": "numeric id", "id": number})
    assert reply.body == {"event": "success", "id": number}
    (row,) = error_rows(db, id=str(number))
    assert row.error == "numeric id"


def test_log_client_error_rows_belong_to_each_caller(
    api: ApiClient, make_user: MakeUser, admin_key: str, db: Database
) -> None:
    first, second = make_user(), make_user()
    shared = f"shared-{uuid.uuid4()}"
    for user in (first, second):
        reply = api.call("log_client_error", user.api_key, {"error": user.email, "id": shared})
        assert reply.body == {"event": "success", "id": shared}
    rows = error_rows(db, id=shared)
    assert sorted((row.account_id, row.error) for row in rows) == sorted(
        [(first.account_id, first.email), (second.account_id, second.email)]
    )
    # Nobody names another account: there is no field for it.
    reply = api.call("log_client_error", admin_key, {"error": "x", "account_id": first.account_id})
    assert (reply.status, reply.body) == (400, unexpected("account_id"))


def test_log_client_error_bad_parameters(api: ApiClient, user: User, db: Database) -> None:
    key = user.api_key
    marker = f"bad-{uuid.uuid4()}"
    reply = api.call("log_client_error", key, {"id": marker})
    assert (reply.status, reply.body) == (400, missing("error"))
    reply = api.call("log_client_error", key, {"error": None, "id": marker})
    assert (reply.status, reply.body) == (400, missing("error"))
    reply = api.call("log_client_error", key, form={"id": marker})
    assert (reply.status, reply.body) == (400, missing("error"))
    reply = api.call("log_client_error", key, {"error": "x", "id": marker, "stack": "y"})
    assert (reply.status, reply.body) == (400, unexpected("stack"))
    for bad in [5, {"message": "x"}, ["x"], True]:
        assert_invalid(api.call("log_client_error", key, {"error": bad, "id": marker}), "error")
    assert_invalid(
        api.call("log_client_error", key, {"error": "x" * 100_001, "id": marker}), "error"
    )
    assert error_rows(db, id=marker) == []


def test_log_client_error_banned_and_deleted(
    api: ApiClient, make_user: MakeUser, server: Server, db: Database
) -> None:
    banned = make_user()
    server.cli("admin", "ban", banned.account_id)
    gone = make_user()
    delete_user(api, gone)
    marker = f"refused-{uuid.uuid4()}"
    assert_banned(api.call("log_client_error", banned.api_key, {"error": "x", "id": marker}))
    reply = api.call("log_client_error", gone.api_key, {"error": "x", "id": marker})
    assert (reply.status, reply.body) == (400, NO_ACCOUNT_KEY)
    assert error_rows(db, id=marker) == []


# --- metrics / start_metrics ---------------------------------------------------------------


def test_metrics_latest_report_wins(api: ApiClient, make_user: MakeUser, db: Database) -> None:
    user = make_user()
    other = make_user()
    first = {"cpu": 0.5, "memory_mb": 120, "tabs": ["a", "b"]}
    reply = api.call("metrics", user.api_key, {"metrics": first, "id": "m1"})
    assert reply.status == 200
    assert reply.body == {"event": "success", "id": "m1"}
    (row,) = stored_metrics(db, user.account_id)
    assert row.metrics == first
    assert close_to_now(row.time)

    second = [{"name": "latency_ms", "value": 42}, {"name": "errors", "value": 0}]
    reply = api.call("metrics", user.api_key, {"metrics": second})
    assert reply.event == "success"
    (row,) = stored_metrics(db, user.account_id)
    assert row.metrics == second

    reply = api.call("metrics", other.api_key, {"metrics": {"cpu": 1}})
    assert reply.event == "success"
    assert stored_metrics(db, other.account_id)[0].metrics == {"cpu": 1}
    assert stored_metrics(db, user.account_id)[0].metrics == second


def test_metrics_any_json_value(api: ApiClient, user: User, db: Database) -> None:
    for value in [
        0,
        3.25,
        "text",
        [],
        {},
        [1, [2, [3]]],
        {"nested": {"deep": [True, False]}},
        False,
    ]:
        reply = api.call("metrics", user.api_key, {"metrics": value})
        assert reply.event == "success", (value, reply.body)
        (row,) = stored_metrics(db, user.account_id)
        assert row.metrics == value


def test_metrics_with_nul_characters(api: ApiClient, user: User, db: Database) -> None:
    for value in ["\x00", {"k\x00": 1}, {"k": ["v\x00"]}]:
        assert_invalid(api.call("metrics", user.api_key, {"metrics": value}), "metrics")
    assert stored_metrics(db, user.account_id) == []


def test_metrics_non_finite_numbers(api: ApiClient, user: User, db: Database) -> None:
    assert api.call("metrics", user.api_key, {"metrics": {"ok": 1}}).event == "success"
    for raw in [b'{"metrics": NaN}', b'{"metrics": {"x": Infinity}}', b'{"metrics": [-Infinity]}']:
        reply = api.call(
            "metrics", user.api_key, content=raw, headers={"Content-Type": "application/json"}
        )
        assert reply.status in (200, 400), reply.body
        assert reply.event in ("error", None), reply.body
        assert isinstance(reply["error"], str)
    assert stored_metrics(db, user.account_id)[0].metrics == {"ok": 1}


def test_metrics_form_body(api: ApiClient, user: User, db: Database) -> None:
    reply = api.call("metrics", user.api_key, form={"metrics[cpu]": "0.25", "metrics[tab]": "x"})
    assert reply.event == "success", reply.body
    (row,) = stored_metrics(db, user.account_id)
    assert row.metrics == {"cpu": "0.25", "tab": "x"}
    reply = api.call("metrics", user.api_key, form={"metrics": "plain"})
    assert reply.event == "success"
    assert stored_metrics(db, user.account_id)[0].metrics == "plain"


def test_metrics_too_large_is_refused(api: ApiClient, user: User, db: Database) -> None:
    assert api.call("metrics", user.api_key, {"metrics": {"kept": True}}).event == "success"
    reply = api.call("metrics", user.api_key, {"metrics": {"blob": "x" * 200_000}, "id": "big"})
    assert reply.status == 200
    assert reply.event == "error" and reply["id"] == "big"
    assert isinstance(reply["error"], str) and reply["error"]
    assert stored_metrics(db, user.account_id)[0].metrics == {"kept": True}


def test_metrics_concurrent_first_reports(
    api: ApiClient, make_user: MakeUser, db: Database
) -> None:
    users = [make_user() for _ in range(4)]

    def report(n: int) -> Reply:
        return api.call("metrics", users[n % len(users)].api_key, {"metrics": {"n": n}})

    with ThreadPoolExecutor(max_workers=32) as pool:
        replies = list(pool.map(report, range(64)))
    for reply in replies:
        assert (reply.status, reply.event) == (200, "success"), reply.body
    for user in users:
        (row,) = stored_metrics(db, user.account_id)
        assert row.metrics["n"] in range(64)


def test_metrics_bad_parameters(api: ApiClient, user: User, db: Database) -> None:
    key = user.api_key
    reply = api.call("metrics", key, {})
    assert (reply.status, reply.body) == (400, missing("metrics"))
    reply = api.call("metrics", key, {"metrics": None})
    assert (reply.status, reply.body) == (400, missing("metrics"))
    reply = api.call("metrics", key, {"metrics": {}, "account_id": user.account_id})
    assert (reply.status, reply.body) == (400, unexpected("account_id"))
    assert stored_metrics(db, user.account_id) == []


def test_metrics_banned_and_deleted(
    api: ApiClient, make_user: MakeUser, server: Server, db: Database
) -> None:
    banned = make_user()
    server.cli("admin", "ban", banned.account_id)
    assert_banned(api.call("metrics", banned.api_key, {"metrics": {"x": 1}}))
    assert stored_metrics(db, banned.account_id) == []
    gone = make_user()
    assert api.call("metrics", gone.api_key, {"metrics": {"x": 1}}).event == "success"
    delete_user(api, gone)
    reply = api.call("metrics", gone.api_key, {"metrics": {"x": 2}})
    assert (reply.status, reply.body) == (400, NO_ACCOUNT_KEY)


def test_start_metrics_answers_the_interval(api: ApiClient, user: User) -> None:
    reply = api.call("start_metrics", user.api_key, {"id": "sm"})
    assert reply.status == 200
    assert reply.event == "start_metrics"
    assert reply["id"] == "sm"
    assert set(reply.body) == {"event", "id", "interval_s"}
    interval = reply["interval_s"]
    assert isinstance(interval, int | float) and not isinstance(interval, bool)
    assert interval > 0

    again = api.call("start_metrics", user.api_key, {"interval_s": 5})
    assert again.event == "start_metrics"
    assert again["interval_s"] == interval
    uuid.UUID(again["id"])
    form = api.call("start_metrics", user.api_key, form={"interval_s": "7.5"})
    assert form.event == "start_metrics" and form["interval_s"] == interval


def test_start_metrics_bad_parameters(api: ApiClient, user: User, server: Server) -> None:
    key = user.api_key
    assert_invalid(api.call("start_metrics", key, {"interval_s": "soon"}), "interval_s")
    assert_invalid(api.call("start_metrics", key, form={"interval_s": "soon"}), "interval_s")
    reply = api.call("start_metrics", key, {"every": 5})
    assert (reply.status, reply.body) == (400, unexpected("every"))
    server.cli("admin", "ban", user.account_id)
    assert_banned(api.call("start_metrics", key, {}))


# --- billing -------------------------------------------------------------------------------

# Every billing event with a body that passes validation.
BILLING_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("stripe_get_customer", {}),
    ("stripe_create_source", {"token": "tok_visa"}),
    ("stripe_delete_source", {"card_id": "card_123"}),
    ("stripe_set_default_source", {"card_id": "card_123"}),
    ("stripe_update_source", {"card_id": "card_123", "info": {"exp_year": 2030}}),
    ("stripe_create_subscription", {"plan": "standard", "quantity": 2, "coupon_id": "C1"}),
    ("stripe_cancel_subscription", {"subscription_id": "sub_1", "at_period_end": False}),
    ("stripe_update_subscription", {"subscription_id": "sub_1", "quantity": 3, "plan": "p"}),
    ("stripe_get_subscriptions", {"limit": 10, "starting_after": "sub_0"}),
    ("stripe_get_charges", {"limit": 10, "ending_before": "ch_9"}),
    ("stripe_get_invoices", {}),
    ("stripe_get_coupon", {"coupon_id": "SUMMER"}),
    (
        "purchase_license",
        {
            "info": {
                "user": "academic",
                "upgrade": "custom",
                "quantity": 1,
                "subscription": "monthly",
                "start": "2030-01-01T00:00:00.000Z",
                "custom_ram": 1,
                "custom_cpu": 1,
                "custom_disk": 1,
                "custom_dedicated_ram": 0,
                "custom_dedicated_cpu": 0,
                "custom_always_running": False,
                "custom_member": True,
                "cost": 12.5,
            }
        },
    ),
]
BILLING_EVENTS = [event for event, _body in BILLING_CALLS]

# The required fields of each billing event, in the order they are reported.
REQUIRED: dict[str, list[str]] = {
    "stripe_create_source": ["token"],
    "stripe_delete_source": ["card_id"],
    "stripe_set_default_source": ["card_id"],
    "stripe_update_source": ["card_id", "info"],
    "stripe_create_subscription": ["plan"],
    "stripe_cancel_subscription": ["subscription_id"],
    "stripe_update_subscription": ["subscription_id"],
    "stripe_get_coupon": ["coupon_id"],
    "purchase_license": ["info"],
}


def form_of(body: dict[str, Any]) -> dict[str, Any]:
    """The same body as qs-style form fields (nested objects as a[b]=c)."""
    form: dict[str, Any] = {}
    for key, value in body.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                form[f"{key}[{inner}]"] = str(item).lower() if isinstance(item, bool) else item
        elif isinstance(value, bool):
            form[key] = str(value).lower()
        else:
            form[key] = str(value)
    return form


@pytest.mark.parametrize(("event", "body"), BILLING_CALLS, ids=BILLING_EVENTS)
def test_billing_is_not_configured(
    api: ApiClient, user: User, admin_key: str, event: str, body: dict[str, Any]
) -> None:
    reply = api.call(event, user.api_key, {**body, "id": f"{event}-1"})
    assert reply.status == 200
    assert reply.body == {"event": "error", "id": f"{event}-1", "error": NOT_CONFIGURED}

    reply = api.call(event, user.api_key, body)
    assert reply.body == {"event": "error", "id": reply["id"], "error": NOT_CONFIGURED}
    uuid.UUID(reply["id"])

    reply = api.call(event, admin_key, body, bearer=True)
    assert reply.body == {"event": "error", "id": reply["id"], "error": NOT_CONFIGURED}

    reply = api.call(event, user.api_key, form={**form_of(body), "id": "form-id"})
    assert reply.body == {"event": "error", "id": "form-id", "error": NOT_CONFIGURED}


@pytest.mark.parametrize("event", BILLING_EVENTS)
def test_billing_validates_before_answering(api: ApiClient, user: User, event: str) -> None:
    key = user.api_key
    body = dict(BILLING_CALLS)[event]
    for field in REQUIRED.get(event, []):
        partial = {name: value for name, value in body.items() if name != field}
        reply = api.call(event, key, partial)
        assert (reply.status, reply.body) == (400, missing(field))
        reply = api.call(event, key, {**body, field: None})
        assert (reply.status, reply.body) == (400, missing(field))
    reply = api.call(event, key, {**body, "account_id": user.account_id})
    assert (reply.status, reply.body) == (400, unexpected("account_id"))


def test_billing_wrong_types_and_huge_values(api: ApiClient, user: User) -> None:
    key = user.api_key
    assert_invalid(api.call("stripe_create_source", key, {"token": 42}), "token")
    assert_invalid(api.call("stripe_create_source", key, {"token": "t" * 100_000}), "token")
    assert_invalid(api.call("stripe_delete_source", key, {"card_id": ["c"]}), "card_id")
    assert_invalid(
        api.call("stripe_create_subscription", key, {"plan": "p", "quantity": "two"}), "quantity"
    )
    assert_invalid(
        api.call("stripe_create_subscription", key, form={"plan": "p", "quantity": "two"}),
        "quantity",
    )
    assert_invalid(
        api.call("stripe_cancel_subscription", key, {"subscription_id": "s", "at_period_end": 3}),
        "at_period_end",
    )
    assert_invalid(api.call("stripe_get_charges", key, {"limit": "ten"}), "limit")
    assert_invalid(api.call("purchase_license", key, {"info": "cheap please"}), "info")
    assert_invalid(api.call("purchase_license", key, {"info": [1, 2]}), "info")
    reply = api.call(
        "purchase_license", key, {"info": {"quantity": 10**30, "cost": -1, "note": "n" * 50_000}}
    )
    assert reply.body == {"event": "error", "id": reply["id"], "error": NOT_CONFIGURED}


def test_billing_for_banned_and_deleted_accounts(
    api: ApiClient, make_user: MakeUser, server: Server
) -> None:
    banned = make_user()
    server.cli("admin", "ban", banned.account_id)
    gone = make_user()
    delete_user(api, gone)
    for event, body in BILLING_CALLS:
        assert_banned(api.call(event, banned.api_key, body))
        reply = api.call(event, gone.api_key, body)
        assert (reply.status, reply.body) == (400, NO_ACCOUNT_KEY), event


def test_billing_needs_a_key(api: ApiClient) -> None:
    for event, body in BILLING_CALLS:
        reply = api.call(event, None, body)
        assert (reply.status, reply.body) == (
            400,
            {"error": "You must provide authentication via an API key."},
        )
        reply = api.call(event, "", body)
        assert (reply.status, reply.body) == (400, NO_ACCOUNT_KEY)


@pytest.mark.parametrize(
    ("event", "body"),
    [
        ("stripe_customer", {}),
        ("stripe_customer", {"customer": {"id": "cus_1"}, "stripe_publishable_key": "pk_x"}),
        ("stripe_plans", {"plans": []}),
        ("stripe_plans", {"plans": [{"id": "standard"}], "id": "p1"}),
    ],
)
def test_response_types_are_not_callable(
    api: ApiClient, user: User, admin_key: str, event: str, body: dict[str, Any]
) -> None:
    expected = {"error": f"unknown message event type '{event}'"}
    for key in [user.api_key, admin_key]:
        reply = api.call(event, key, body)
        assert (reply.status, reply.body) == (400, expected)
    reply = api.call(event, user.api_key, form=form_of(body) or {"id": "x"})
    assert (reply.status, reply.body) == (400, expected)
