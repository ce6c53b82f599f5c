from __future__ import annotations

import re

from calchub.accounts.keys import generate_key
from calchub.accounts.passwords import LENGTH_RULE, hash_password, password_problem, verify_password
from calchub.accounts.secret import digest, random_base62


def test_key_shape_and_digest() -> None:
    key = generate_key()
    assert re.fullmatch(r"sk_[A-Za-z0-9]{24}", key)
    assert digest(key) != key and len(digest(key)) == 64
    assert len({random_base62(24) for _ in range(100)}) == 100


def test_password_rules() -> None:
    assert password_problem("12345") == LENGTH_RULE
    assert password_problem("x" * 65) == LENGTH_RULE
    assert password_problem(None) == "Password must be specified."
    assert password_problem("123456") is None


async def test_argon2id_round_trip() -> None:
    hashed = await hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert await verify_password(hashed, "correct horse")
    assert not await verify_password(hashed, "wrong horse")
    assert not await verify_password(None, "x")
    assert not await verify_password("garbage", "x")
