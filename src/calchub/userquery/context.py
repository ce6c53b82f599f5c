"""Who runs a query: the (possibly sudo'd) account, whether it is an admin, and the hub."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from calchub.hub import Hub


@dataclass(frozen=True)
class Caller:
    hub: Hub
    account_id: str
    is_admin: bool
    now: datetime
