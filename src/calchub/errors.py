"""The domain's refusals. Domain code raises these; each protocol edge renders them once, in
its own words (v1: `{"event": "error", "error": ...}`; the bridge: `{"error": ...}`; REST:
a status and `{"error": ...}`).

`message` is the text a client sees. It follows CoCalc's wording where clients match on it,
so it is the same for every edge. `detail` is what the v1 reply carries where CoCalc answers
with a structured value instead of a text (e.g. `{"new_password": "..."}`); it defaults to
the message.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every refusal the domain gives a caller."""

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = message if detail is None else detail

    def __str__(self) -> str:
        return self.message


class NotSignedIn(DomainError):
    """The operation needs an account and the caller has none (a public request or a
    project-scoped key)."""


class Refused(DomainError):
    """The caller may not do this (not a member, not an admin, wrong scope)."""


class NotFound(DomainError):
    """What was named does not exist (or is not visible to the caller)."""


class Invalid(DomainError):
    """The request is malformed or breaks a rule about its values."""


class Conflict(DomainError):
    """The request clashes with the current state (already taken, already finished)."""


class Failed(DomainError):
    """The operation was carried out and did not succeed (a command exited with an error, a
    copy failed); the message says how."""


class LimitExceeded(DomainError):
    """A quota or rate limit stops the request."""


class Unavailable(DomainError):
    """The server cannot do this now or at all (projects cannot run here, billing is not
    configured, a project's runtime failed)."""


class TimedOut(Unavailable):
    """The work did not finish in time (the bridge's clients retry on these)."""
