"""Request bodies: JSON limits (depth, finite numbers) and form parsing."""

from __future__ import annotations

import pytest

from calchub.api.bodies import MAX_DEPTH, nesting_depth, parse_body, parse_json_text
from calchub.api.errors import ProtocolError


def test_nesting_depth() -> None:
    assert nesting_depth(1) == 0
    assert nesting_depth([]) == 1
    assert nesting_depth({"a": [1, {"b": []}]}) == 4
    deep: object = []
    for _ in range(10_000):
        deep = [deep]
    assert nesting_depth(deep) == 10_001  # no recursion: no RecursionError


def test_json_depth_limit() -> None:
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert nesting_depth(parse_json_text(ok)) == MAX_DEPTH
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_json_text("[" + ok + "]")
    with pytest.raises(ProtocolError, match="invalid JSON body: nested too deeply"):
        parse_body("application/json", b"[" * 900 + b"]" * 900)


def test_json_numbers_must_be_finite() -> None:
    assert parse_json_text("[1.5, 1e308, 18446744073709551616]") == [1.5, 1e308, 2**64]
    for text in ("1e999", "-1e400", "NaN", "Infinity"):
        with pytest.raises(ValueError):
            parse_json_text(text)


def test_form_and_other_media() -> None:
    assert parse_body("application/x-www-form-urlencoded; charset=utf-8", b"a=1") == (
        {"a": "1"},
        True,
    )
    assert parse_body("text/plain", b"anything") == ({}, False)
    assert parse_body("application/json", b"  ") == ({}, False)
    with pytest.raises(ProtocolError, match="invalid form body"):
        parse_body("application/x-www-form-urlencoded", b"a=\xff")
