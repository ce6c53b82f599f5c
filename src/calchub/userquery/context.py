"""Who runs a query: the (possibly sudo'd) actor, and the hub."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from calchub.actor import Actor

if TYPE_CHECKING:
    from calchub.hub import Hub


@dataclass(frozen=True)
class Caller:
    hub: Hub
    actor: Actor

    @classmethod
    def of(cls, hub: Hub, actor: Actor) -> Caller:
        # Milliseconds, like every time on the wire: a row keyed by a time the server chose
        # can then be found again with the time a get returned.
        now = actor.now.replace(microsecond=actor.now.microsecond // 1000 * 1000)
        return cls(hub, Actor(actor.caller, actor.is_admin, actor.project_id, actor.ip, now))

    @property
    def account_id(self) -> str:
        return self.actor.caller

    @property
    def is_admin(self) -> bool:
        return self.actor.is_admin

    @property
    def now(self) -> datetime:
        return self.actor.now
