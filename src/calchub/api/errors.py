"""Errors that become protocol responses."""

from __future__ import annotations

from typing import Any


class ProtocolError(Exception):
    """Rejected before any handler runs: answered as HTTP `status` with `{"error": message}`."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class InvalidParameters(ProtocolError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid parameters '{reason}'")


class HandlerError(Exception):
    """A handler-level failure: answered as HTTP 200 `{"event": "error", "id": .., "error": ..}`."""

    def __init__(self, error: Any) -> None:
        super().__init__(str(error))
        self.error = error
