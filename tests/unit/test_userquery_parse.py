"""The query parser: forms, placeholders, get/set classification and options."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from calchub.userquery.errors import QueryError
from calchub.userquery.parse import (
    get_options,
    has_null,
    is_get,
    read_options,
    split_query,
    substitute,
    wants_delete,
    with_defaults,
)

NOW = datetime(2021, 11, 15, tzinfo=UTC)
ME = "11111111-1111-4111-8111-111111111111"


def _error(call: Any) -> str:
    with pytest.raises(QueryError) as info:
        call()
    return info.value.message


def test_forms() -> None:
    assert split_query({"accounts": {"a": None}}).multi is False
    single = split_query({"projects": [{"project_id": None}]})
    assert single.multi and single.table == "projects" and single.value == {"project_id": None}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "FATAL: invalid user_query of 'undefined' -- query must be an object"),
        (5, "FATAL: invalid user_query of 'undefined' -- query must be an object"),
        ({"a": {}, "b": {}}, "FATAL: must specify exactly one key in the query"),
        ({"t": [{}, {}]}, "FATAL: array of length > 1 not yet implemented"),
        ({"t": []}, "FATAL: invalid user_query of 't' -- query must be an object"),
        ({"t": [3]}, "FATAL: invalid user_query of 't' -- query must be an object"),
        ({"t": "x"}, "FATAL: invalid user_query of 't' -- query must be an object"),
    ],
)
def test_form_errors(query: Any, message: str) -> None:
    assert _error(lambda: split_query(query)) == message


def test_placeholders_in_values_and_keys() -> None:
    got = substitute(
        {
            "a": "{account_id}",
            "t": "{now}",
            "users": {"{account_id}": {"hide": True}},
            "l": ["{account_id}"],
            "p": "{project_id}",
        },
        ME,
        NOW,
    )
    assert got == {"a": ME, "t": NOW, "users": {ME: {"hide": True}}, "l": [ME], "p": "{project_id}"}


def test_classification() -> None:
    assert has_null({"a": {"b": [1, None]}})
    assert not has_null({"a": {"b": [1, 2]}, "c": ""})
    assert is_get({"a": None}, None) and not is_get({"a": 1}, None)
    assert not is_get({"a": None}, True) and is_get({"a": 1}, False)


def test_read_options() -> None:
    opts = read_options([{"set": True}, {"limit": 3, "set": False}, {"account_id": ME}])
    assert opts.force_set is False and opts.sudo == ME and opts.entries == [{"limit": 3}]
    assert read_options(None).entries == []
    message = _error(lambda: read_options({"limit": 1}))
    assert message == 'FATAL: options (={"limit":1}) must be an array'


def test_get_options() -> None:
    opts = get_options([{"limit": "5"}, {"order_by": "-last_edited"}, {"heartbeat": 1}])
    assert (opts.limit, opts.order_by, opts.descending) == (5, "last_edited", True)
    assert get_options([{"limit": 1}, {"limit": 2}]).limit == 2
    assert get_options([{"only_changes": True}]).only_changes


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"limit": -1}, "ERROR -- opts.limit = '-1' is not an integer"),
        ({"limit": "x"}, "ERROR -- opts.limit = 'x' is not an integer"),
        ({"limit": 1.5}, "ERROR -- opts.limit = '1.5' is not an integer"),
        ({"order_by": "a'b"}, "ERROR -- detected ' apostrophe in order_by='a'b'"),
        ({"slice": [0, 1]}, "slice not implemented"),
        ({"offset": 10}, "unknown option 'offset'"),
    ],
)
def test_get_option_errors(entry: dict[str, Any], message: str) -> None:
    assert _error(lambda: get_options([entry])) == message


def test_default_options_quirk() -> None:
    defaults = [{"limit": 100, "order_by": "-last_edited"}]
    assert with_defaults([{"limit": 5}], defaults)[-1] == defaults[0]
    assert with_defaults([{"limit": 5, "order_by": "title"}], defaults) == [
        {"limit": 5, "order_by": "title"}
    ]
    split = [{"order_by": "-time"}, {"limit": 300}]
    assert with_defaults([{"limit": 5}], split) == [{"limit": 5}, {"order_by": "-time"}]


def test_delete_option() -> None:
    assert wants_delete([{"delete": True}]) and not wants_delete([{"delete": True}, {"delete": 0}])
