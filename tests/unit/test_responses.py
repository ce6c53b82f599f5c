"""JSON responses: CoCalc's wire format, whichever encoder writes it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from calchub.api.responses import json_bytes
from calchub.json_text import JsonText


def test_times_keys_and_text() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    value = {"time": when, "nested": [{"t": when}], 3: "three", "text": 'é ✓ \n "q"'}
    out = json_bytes(value)
    assert (
        out
        == (
            '{"time":"2024-05-06T07:08:09.123Z","nested":[{"t":"2024-05-06T07:08:09.123Z"}],'
            '"3":"three","text":"é ✓ \\n \\"q\\""}'
        ).encode()
    )


def test_what_the_fast_encoder_refuses_is_written_as_before() -> None:
    big = {"n": 2**70, "m": -(2**65)}
    assert json_bytes(big) == b'{"n":1180591620717411303424,"m":-36893488147419103232}'
    with pytest.raises(TypeError):
        json_bytes({"s": {1, 2}})
    with pytest.raises(UnicodeEncodeError):
        json_bytes("\ud800")  # a lone surrogate cannot be UTF-8, as before


def test_json_text_goes_in_as_it_is_with_either_encoder() -> None:
    rows = JsonText(b'[{"title":"\xc3\xa9","n":1}]')
    assert json_bytes({"query": {"projects_all": rows}}) == (
        b'{"query":{"projects_all":[{"title":"\xc3\xa9","n":1}]}}'
    )
    # A value orjson refuses sends the whole reply through the standard library.
    assert json_bytes({"a": rows, "big": 2**70}) == (
        b'{"a":[{"title":"\xc3\xa9","n":1}],"big":1180591620717411303424}'
    )
