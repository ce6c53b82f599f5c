from __future__ import annotations

import pytest

from calchub.api.forms import FormError, parse_form


def test_plain_and_repeated_keys() -> None:
    assert parse_form(b"a=1&b=x+y") == {"a": "1", "b": "x y"}
    assert parse_form(b"a=1&a=2&a=3") == {"a": ["1", "2", "3"]}


def test_bracket_arrays_and_objects() -> None:
    assert parse_form(b"a[]=1&a[]=2") == {"a": ["1", "2"]}
    assert parse_form(b"a%5B%5D=1&a%5B%5D=2") == {"a": ["1", "2"]}
    assert parse_form(b"a[0]=x&a[1]=y") == {"a": ["x", "y"]}
    assert parse_form(b"q[projects][title]=T") == {"q": {"projects": {"title": "T"}}}


def test_blank_values_are_kept() -> None:
    assert parse_form(b"a=&b") == {"a": "", "b": ""}


def test_conflicting_shapes_are_errors() -> None:
    with pytest.raises(FormError):
        parse_form(b"a=1&a[b]=2")


def test_not_utf8() -> None:
    with pytest.raises(FormError):
        parse_form(b"a=\xff")


def test_nested_array_of_objects() -> None:
    assert parse_form(b"query[projects][0][project_id]=&query[projects][0][title]=T") == {
        "query": {"projects": [{"project_id": "", "title": "T"}]}
    }


def test_too_many_brackets_and_huge_indices() -> None:
    parse_form(b"a" + b"[x]" * 20 + b"=1")
    with pytest.raises(FormError, match="more than 20 brackets"):
        parse_form(b"a" + b"[x]" * 21 + b"=1")
    with pytest.raises(FormError, match="array index 1001"):
        parse_form(b"a[1001][b]=1")
    # Digits that are not ASCII are object keys, not indices.
    assert parse_form("a[\u0661][b]=1".encode()) == {"a": {"\u0661": {"b": "1"}}}
