"""Password hashing with argon2id (memory-hard), off the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 6
MAX_LENGTH = 64
LENGTH_RULE = f"Password must be between {MIN_LENGTH} and {MAX_LENGTH} characters in length."

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile


def password_problem(password: object) -> str | None:
    """CoCalc's rule, as the reason text, or None when the password is acceptable."""
    if not isinstance(password, str):
        return "Password must be specified."
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return LENGTH_RULE
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash or not password:
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
