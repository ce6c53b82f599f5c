"""The one place where the runtime's failures become domain errors (same texts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from calchub.errors import DomainError, LimitExceeded, NotFound, Refused, Unavailable
from calchub.runtime import Busy, FileFailure, PathRefused, QuotaExceeded, RuntimeFailure


def domain_error(exc: RuntimeFailure) -> DomainError:
    message = str(exc)
    if isinstance(exc, QuotaExceeded | Busy):
        return LimitExceeded(message)
    if isinstance(exc, PathRefused):
        return Refused(message)
    if isinstance(exc, FileFailure) and exc.code == "ENOENT":
        return NotFound(message)
    return Unavailable(message)


@contextmanager
def runtime_errors() -> Iterator[None]:
    """Re-raise a runtime failure inside the block as the matching domain error."""
    try:
        yield
    except RuntimeFailure as exc:
        raise domain_error(exc) from None
