"""Request bodies: JSON limits (depth, finite numbers) and form parsing."""

from __future__ import annotations

import orjson
import pytest
from starlette.requests import Request

from calchub.api.bodies import (
    MAX_DEPTH,
    PARSE_INLINE,
    nesting_depth,
    parse_body,
    parse_json_text,
    read_request,
)
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


def test_json_reads_as_the_standard_library_does() -> None:
    """The fast reader never changes a value: huge integers stay exact, floats stay
    floats, lone surrogates are kept as they always were."""
    text = '{"a": [123456789012345678901234567890, -18446744073709551617], "b": 1e20}'
    assert parse_json_text(text) == {
        "a": [123456789012345678901234567890, -18446744073709551617],
        "b": 1e20,
    }
    assert isinstance(parse_json_text("[1e20]")[0], float)
    assert parse_json_text('"\\ud800x"') == "\ud800x"
    big = b'{"content": "' + b"x" * 1_000_000 + b'"}'
    assert parse_json_text(big)["content"] == "x" * 1_000_000
    for bad in (b"[1,", b"{'a': 1}", b'"\xff"'):
        with pytest.raises(ValueError):
            parse_json_text(bad)


def request_with(body: bytes, content_type: str = "application/json") -> Request:
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-type", content_type.encode())]
    scope = {"type": "http", "method": "POST", "headers": headers, "query_string": b""}
    return Request(scope, receive)


async def test_large_bodies_read_alike_with_or_without_a_thread() -> None:
    """A large object of a few plain fields is read on the loop; any other large body on a
    worker thread, with the same results and errors as a small one."""
    text = "é\n" * PARSE_INLINE
    flat = orjson.dumps({"path": "a.txt", "content": text, "n": 1.5, "ok": True})
    assert await read_request(request_with(flat), 10 * PARSE_INLINE) == (orjson.loads(flat), False)
    nested = orjson.dumps({"path": ["a.txt"], "content": text})
    assert await read_request(request_with(nested), 10 * PARSE_INLINE) == (
        orjson.loads(nested),
        False,
    )
    exact = b'{"n": 18446744073709551617, "content": "' + b"x" * PARSE_INLINE + b'"}'
    body, _ = await read_request(request_with(exact), 10 * PARSE_INLINE)
    assert body["n"] == 18446744073709551617
    surrogate = b'{"content": "\\ud800' + b"x" * PARSE_INLINE + b'"}'
    body, _ = await read_request(request_with(surrogate), 10 * PARSE_INLINE)
    assert body["content"].startswith("\ud800x")
    deep = b"[" * 100 + b" " * PARSE_INLINE + b"]" * 100
    with pytest.raises(ProtocolError, match="invalid JSON body: nested too deeply"):
        await read_request(request_with(deep), 10 * PARSE_INLINE)
    with pytest.raises(ProtocolError, match="invalid JSON body"):
        await read_request(request_with(flat[:-1]), 10 * PARSE_INLINE)
