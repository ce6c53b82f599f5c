"""The agent's JSON codec reads and writes what the json module does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from calchub.runtime.agent import jsonc

VALUES: list[Any] = [
    {},
    [],
    {"op": "exec", "args": ["a b", "é", "\u2028", "\x00", '"\\'], "timeout_s": 10.5},
    {"nested": {"list": [1, -2, 3.25, 1e300, None, True, False]}, "emoji": "\U0001f600"},
    "text",
    0,
    -1.5,
    None,
]


@pytest.mark.parametrize("codec", [jsonc._c_codec, jsonc._json_module])
@pytest.mark.parametrize("value", VALUES)
def test_same_as_the_json_module(codec: Any, value: Any) -> None:
    loads, dumps = codec()
    written = dumps(value)
    assert written == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert loads(written) == value
    assert loads(written.encode()) == value
    assert loads(bytearray(f" \n{written}\t ".encode())) == value


@pytest.mark.parametrize("codec", [jsonc._c_codec, jsonc._json_module])
@pytest.mark.parametrize("text", ["", " ", "{", '{"a": 1} x', "[1,]", "nul", '"\x01"', b"\xff"])
def test_bad_input_is_a_value_error(codec: Any, text: str | bytes) -> None:
    loads, _ = codec()
    with pytest.raises(ValueError):
        loads(text)


def test_what_cannot_be_written_is_a_type_error() -> None:
    _, dumps = jsonc._c_codec()
    with pytest.raises(TypeError, match="not JSON serializable"):
        dumps({"a": object()})


def test_the_agent_uses_the_c_codec() -> None:
    assert jsonc.loads.__qualname__.startswith("_c_codec")
