"""Refusals of the HTTP edge itself, before any domain code runs (bad body, bad key, unknown
endpoint). Each protocol renders them with its own status and envelope."""

from __future__ import annotations


class ProtocolError(Exception):
    """Answered as HTTP `status` with `{"error": message}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
