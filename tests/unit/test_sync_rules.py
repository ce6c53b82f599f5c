"""The pure rules behind the realtime-sync and file-use tables: ids, dates inside JSON, the
"working now" test, the start throttle and CoCalc's message formatting."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calchub.projects.awaken import start_is_due
from calchub.projects.file_activity import parse_time
from calchub.sync.history import truncated
from calchub.userquery.json_dates import as_time, iso_ms, json_ready, with_dates
from calchub.userquery.sync_access import ABSENT, shown
from calchub.userquery.sync_ids import sha1_of, string_id_of
from calchub.userquery.tables.file_use import working_now

NOW = datetime(2021, 11, 15, 2, 25, 12, 123456, tzinfo=UTC)
PROJECT = "4d3c5d1e-1f0a-4b7a-9a4e-0c0f7b0b1c2d"


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - CoCalc's ids


# --- ids ------------------------------------------------------------------------------------


def test_sha1_of_joins_like_cocalc() -> None:
    assert sha1_of(PROJECT, "a/b.txt") == _sha1(PROJECT + "a/b.txt")
    assert sha1_of(PROJECT, None) == _sha1(PROJECT)
    assert sha1_of(PROJECT, 5) == _sha1(PROJECT + "5")
    assert sha1_of(PROJECT, True) == _sha1(PROJECT + "true")
    assert sha1_of(PROJECT, "ü") == hashlib.sha1((PROJECT + "ü").encode("utf-8")).hexdigest()  # noqa: S324
    assert string_id_of({"project_id": PROJECT, "path": "x"}) == _sha1(PROJECT + "x")
    assert len(string_id_of({})) == 40


# --- dates inside JSON ------------------------------------------------------------------------


def test_iso_ms_and_json_ready() -> None:
    assert iso_ms(NOW) == "2021-11-15T02:25:12.123Z"
    offset = NOW.astimezone(UTC).replace(tzinfo=None)
    assert iso_ms(offset) == "2021-11-15T02:25:12.123Z"
    value = {"a": NOW, "b": [NOW, 1, "x"], "c": {"d": None}}
    assert json_ready(value) == {
        "a": "2021-11-15T02:25:12.123Z",
        "b": ["2021-11-15T02:25:12.123Z", 1, "x"],
        "c": {"d": None},
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-11-15T02:25:12.123Z", datetime(2021, 11, 15, 2, 25, 12, 123000, tzinfo=UTC)),
        ("2021-11-15T03:25:12+01:00", datetime(2021, 11, 15, 2, 25, 12, tzinfo=UTC)),
        ("2021-11-15T02:25:12", datetime(2021, 11, 15, 2, 25, 12, tzinfo=UTC)),
        (1636943112123, datetime(2021, 11, 15, 2, 25, 12, 123000, tzinfo=UTC)),
        (NOW, NOW),
        ("2021-11-15", None),  # a date alone is not a timestamp here
        ("yesterday", None),
        ("2021-13-45T99:99:99Z", None),
        (None, None),
        (True, None),
        ({"t": 1}, None),
        ([1], None),
        (1e300, None),
    ],
)
def test_as_time(value: Any, expected: datetime | None) -> None:
    assert as_time(value) == expected


def test_with_dates_converts_only_the_named_keys() -> None:
    stamp = "2021-11-15T02:25:12.123456+00:00"
    moment = datetime(2021, 11, 15, 2, 25, 12, 123456, tzinfo=UTC)
    users = {"acc": {"edit": stamp, "read": 16, "note": "hello"}, "list": [stamp]}
    assert with_dates(users, None) == {
        "acc": {"edit": moment, "read": 16, "note": "hello"},
        "list": [moment],
    }
    init = {"time": stamp, "error": stamp}
    assert with_dates(init, frozenset({"time"})) == {"time": moment, "error": stamp}


# --- file_use: working now --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"edit": iso_ms(NOW - timedelta(minutes=1))}, True),
        ({"chat": int((NOW - timedelta(seconds=170)).timestamp() * 1000)}, True),
        ({"open": NOW}, True),
        ({"open": iso_ms(NOW + timedelta(minutes=1))}, True),
        ({"edit": iso_ms(NOW - timedelta(minutes=4))}, False),
        ({"read": iso_ms(NOW), "seen": iso_ms(NOW)}, False),
        ({"edit": "soon"}, False),
        ({"edit": True}, False),
        ({"edit": None}, False),
        ("edit", False),
        (None, False),
    ],
)
def test_working_now(entry: Any, expected: bool) -> None:
    assert working_now(entry, NOW) is expected


# --- the start throttle -----------------------------------------------------------------------


def _request(action: str, ago: timedelta) -> dict[str, Any]:
    return {"action": action, "time": (NOW - ago).isoformat()}


@pytest.mark.parametrize(
    ("run_state", "deleted", "action_request", "due"),
    [
        ("opened", False, None, True),
        ("opened", False, _request("start", timedelta(seconds=10)), False),
        ("opened", False, _request("start", timedelta(seconds=31)), True),
        ("opened", False, _request("stop", timedelta(seconds=1)), True),
        ("opened", False, {"action": "start", "time": "garbage"}, True),
        ("opened", False, _request("start", timedelta(seconds=-60)), True),
        ("running", False, None, False),
        ("starting", False, None, False),
        ("stopping", False, None, True),
        ("opened", True, None, False),
    ],
)
def test_start_is_due(run_state: str, deleted: bool, action_request: Any, due: bool) -> None:
    assert start_is_due(run_state, deleted, action_request, NOW) is due


def test_parse_time() -> None:
    assert parse_time("2021-11-15T02:25:12Z") == datetime(2021, 11, 15, 2, 25, 12, tzinfo=UTC)
    assert parse_time("2021-11-15T02:25:12") == datetime(2021, 11, 15, 2, 25, 12, tzinfo=UTC)
    assert parse_time("nope") is None and parse_time(5) is None


# --- messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (ABSENT, "undefined"),
        (None, "null"),
        (True, "true"),
        (12, "12"),
        ("abc", "abc"),
        ({"a": 1}, "[object Object]"),
        (["a", 1, None], "a,1,"),
    ],
)
def test_shown_like_javascript(value: Any, text: str) -> None:
    assert shown(value) == text


def test_truncated_names() -> None:
    assert truncated("Ada Lovelace") == "Ada Lovelace"
    assert truncated("x" * 80) == "x" * 80
    assert truncated("x" * 81) == "x" * 79 + "…"
