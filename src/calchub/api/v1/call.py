"""What a v1 handler knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from calchub.actor import Actor

if TYPE_CHECKING:
    from calchub.hub import Hub


@dataclass(frozen=True)
class Call:
    hub: Hub
    actor: Actor
    # The message id, echoed in the reply (any JSON value).
    id: Any
