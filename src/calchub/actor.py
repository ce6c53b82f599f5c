"""Who is asking. Each edge builds one `Actor` per request from the API key, and every
domain entry point takes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from calchub.db.types import utcnow
from calchub.errors import NotSignedIn


@dataclass(frozen=True)
class Actor:
    """`account_id` is None for an anonymous caller (public data) and for a project-scoped
    key, which acts only on `project_id`. `is_admin` is read with the key, once per request,
    so a change of groups takes effect on the next request."""

    account_id: str | None
    is_admin: bool = False
    project_id: str | None = None
    ip: str = ""
    now: datetime = field(default_factory=utcnow)

    @classmethod
    def anonymous(cls, ip: str = "") -> Actor:
        return cls(account_id=None, ip=ip)

    @classmethod
    def system(cls) -> Actor:
        """The server acting on its own behalf (scheduled work, the admin command line)."""
        return cls(account_id=None, is_admin=True)

    @property
    def signed_in(self) -> bool:
        """Whether a key stands behind the request (an account's or a project's)."""
        return self.account_id is not None or self.project_id is not None

    @property
    def caller(self) -> str:
        """The caller's account id; every operation but the public ones needs one."""
        if self.account_id is None:
            raise NotSignedIn("you must be signed in")
        return self.account_id
