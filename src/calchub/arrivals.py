"""Requests numbered in the order they arrive, so that one read of the change counters can
answer for every request that had arrived when it began.

A change a client has seen committed (a key revoked, an account banned) happened before
that client sent its next request, so any counter read that began after the request
arrived sees it. The HTTP protocol numbers each request when its head is complete and
puts the number in the ASGI scope; a counter reader remembers how many requests had
arrived when its last read began, and answers a request numbered up to that from it.
Requests that come without a number (made in-process, or by the server itself) always
get a fresh read.

Once a request is authenticated, its number is also the one "being served" in its task
(`serving`), for reads deeper down that have no scope at hand (site settings). Work the
server runs on its own after a response (Hub.spawn) serves no request and reads afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

SCOPE_KEY = "calchub.arrival"

_arrived = 0
_serving: ContextVar[int | None] = ContextVar("calchub_arrival_serving", default=None)


def stamp(scope: dict[str, Any]) -> None:
    """Number the request `scope` belongs to, as it arrives."""
    global _arrived
    _arrived += 1
    scope[SCOPE_KEY] = _arrived


def arrived() -> int:
    """How many requests have arrived so far (the number of the latest)."""
    return _arrived


def arrival(scope: Mapping[str, Any]) -> int | None:
    """The request's number, or None when it has none."""
    number = scope.get(SCOPE_KEY)
    return number if isinstance(number, int) else None


def serving(number: int | None) -> None:
    """Mark the request numbered `number` as the one the current task serves (None: none)."""
    _serving.set(number)


def served() -> int | None:
    """The number of the request the current task serves, or None."""
    return _serving.get()
