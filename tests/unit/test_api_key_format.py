"""The current key format: `sk-` + 16 alphanumerics + the row id in CoCalc's base62."""

from __future__ import annotations

import re

import pytest

from calchub.accounts.keys import base62_id, current_key, truncated


@pytest.mark.parametrize(
    ("key_id", "suffix"),
    [(0, "000000"), (1, "000001"), (61, "00000Z"), (62, "000010"), (999, "0000g7")],
)
def test_id_suffix(key_id: int, suffix: str) -> None:
    assert base62_id(key_id) == suffix


def test_largest_id_fits_six_characters() -> None:
    assert len(base62_id(2147483647)) == 6


def test_key_shape_and_display() -> None:
    key = current_key(999)
    assert re.fullmatch(r"sk-[0-9A-Za-z]{16}0000g7", key)
    assert truncated(key) == "sk-...0000g7"
    assert current_key(999) != key
