"""What a handler knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from calchub.api.errors import HandlerError

if TYPE_CHECKING:
    from calchub.hub import Hub


@dataclass
class Call:
    hub: Hub
    account_id: str | None
    ip: str
    id: Any
    _groups: list[str] | None = field(default=None, repr=False)

    @property
    def caller(self) -> str:
        """The caller's account id; every endpoint but the public ones has one."""
        if self.account_id is None:
            raise HandlerError("you must be signed in")
        return self.account_id

    async def groups(self) -> list[str]:
        # Read once per request: admin status is never cached across requests.
        if self._groups is None:
            from calchub.accounts.store import account_groups

            self._groups = await account_groups(self.hub.engine, self.account_id)
        return self._groups

    async def is_admin(self) -> bool:
        return self.account_id is not None and "admin" in await self.groups()
