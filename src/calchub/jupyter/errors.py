"""Jupyter failures from the runtime as domain errors."""

from __future__ import annotations

from calchub.errors import (
    DomainError,
    Failed,
    Invalid,
    LimitExceeded,
    NotFound,
    TimedOut,
    Unavailable,
)
from calchub.projects.runtime_errors import domain_error
from calchub.runtime import RuntimeFailure
from calchub.runtime.base import JupyterFailure

_KINDS: dict[str, type[DomainError]] = {
    "unavailable": Unavailable,
    "no_kernel": Invalid,
    "no_session": NotFound,
    "died": Failed,
    "timeout": TimedOut,
    "limit": LimitExceeded,
    "invalid": Invalid,
}


def jupyter_error(exc: RuntimeFailure) -> DomainError:
    if isinstance(exc, JupyterFailure):
        return _KINDS.get(exc.kind, Unavailable)(str(exc))
    if "Timed out" in str(exc):
        return TimedOut(f"timeout: {exc}")
    return domain_error(exc)
