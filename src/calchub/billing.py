"""Billing: calchub has no payment backend, so every billing operation is refused alike."""

from __future__ import annotations

from typing import NoReturn

from calchub.errors import Unavailable

NOT_CONFIGURED = "billing is not configured on this server"


def not_configured() -> NoReturn:
    raise Unavailable(NOT_CONFIGURED)
