"""Random secrets and their at-rest digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

BASE62 = string.ascii_letters + string.digits


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def digest(secret: str) -> str:
    """SHA-256 hex digest. Secrets here are long random strings, so a fast hash is enough to
    make a database dump useless, while still allowing an indexed lookup."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
