from __future__ import annotations

from datetime import timedelta

import pytest

from calchub.accounts.search import SearchError, _after_prefix, parse_interval, parse_query


def test_names_and_emails() -> None:
    parsed = parse_query("Ada Love, <x@y.org> junk;  BOB\nz@w")
    assert parsed.names == [["ada", "love"], ["bob"]]
    assert parsed.emails == ["x@y.org", "z@w"]


def test_empty_items_dropped() -> None:
    assert parse_query(" , ;\n").names == []


def test_interval() -> None:
    assert parse_interval("3 days") == timedelta(days=3)
    assert parse_interval("1 week") == timedelta(weeks=1)
    with pytest.raises(SearchError):
        parse_interval("1; DROP TABLE accounts")


def test_after_prefix_is_the_least_string_past_the_prefix() -> None:
    assert _after_prefix("ab") == "ac"
    assert _after_prefix("a\U0010ffff") == "b"
    assert _after_prefix("a\U0010ffff\U0010ffff") == "b"
    assert _after_prefix("\U0010ffff") is None
    assert _after_prefix("") is None
    assert _after_prefix("x\ud7ff") == "x\ue000"
