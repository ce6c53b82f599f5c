"""The one registry of v1 messages.

Every v1 event is declared once (in `calchub.api.v1.messages`) as a `MessageDef`: its name,
request model, response event, description and examples. Handler modules attach handlers
with `@handles("<event>")`. Validation, the status page and the reference docs all read from
here. A handler returns the fields of its reply; the endpoint adds the declared response
event (a `Reply` names another event where the message has more than one answer).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from calchub.api.v1.call import Call


class Request(BaseModel):
    """Base of every request model. Field order is definition order, which fixes the order
    in which missing fields are reported, as CoCalc's `misc.defaults` does."""

    # Infinite and NaN numbers mean nothing to any field (and overflow the columns they reach).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    # Whether the message defines `id` (all but copy_path_status / copy_path_delete).
    has_id: ClassVar[bool] = True


class NoIdRequest(Request):
    has_id: ClassVar[bool] = False


@dataclass(frozen=True)
class Reply:
    """A reply with an event other than the declared one (e.g. `account_creation_failed`)."""

    event: str
    fields: dict[str, Any] = field(default_factory=dict)


R = TypeVar("R", bound=Request)
Fields = dict[str, Any]
Handler = Callable[["Call", Any], Awaitable[Fields | Reply]]


@dataclass(frozen=True)
class MessageDef:
    event: str
    request: type[Request]
    response_event: str | None
    description: str
    # False for events CoCalc declares as API but never dispatches (stripe_customer, stripe_plans).
    dispatchable: bool = True
    # True where a blank API key is acceptable (public data).
    public: bool = False
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReplyDecl:
    """What an event answers besides an error: the fields of its response event
    (`success`), and of any other event it may answer with (`others`). `unavailable` says why
    this server never succeeds at the event (then `success` is None)."""

    success: type[BaseModel] | None
    others: dict[str, type[BaseModel]] = field(default_factory=dict)
    unavailable: str | None = None


DEFINITIONS: dict[str, MessageDef] = {}
REPLIES: dict[str, ReplyDecl] = {}
HANDLERS: dict[str, Handler] = {}
# Events CoCalc defines for its websocket protocol only: "not part of the HTTP API".
NON_API_EVENTS: set[str] = set()


def define(defn: MessageDef) -> MessageDef:
    if defn.event in DEFINITIONS:
        raise ValueError(f"message {defn.event!r} defined twice")
    DEFINITIONS[defn.event] = defn
    return defn


def handles(event: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        if event not in DEFINITIONS:
            raise ValueError(f"no message {event!r} to handle")
        if event in HANDLERS:
            raise ValueError(f"message {event!r} handled twice")
        HANDLERS[event] = func
        return func

    return register


def declare_replies(
    event: str,
    success: type[BaseModel] | None,
    *,
    unavailable: str | None = None,
    **others: type[BaseModel],
) -> None:
    if event not in DEFINITIONS:
        raise ValueError(f"no message {event!r} to declare replies for")
    if event in REPLIES:
        raise ValueError(f"replies of {event!r} declared twice")
    if (success is None) == (unavailable is None):
        raise ValueError(f"{event!r}: declare either the success reply or why it is unavailable")
    REPLIES[event] = ReplyDecl(success, dict(others), unavailable)


def status(event: str) -> str:
    """What the server does with the event, for the generated docs."""
    defn = DEFINITIONS[event]
    if not defn.dispatchable:
        return "not callable (a response type)"
    if event not in HANDLERS:
        return "planned"
    declared = REPLIES.get(event)
    if declared is not None and declared.unavailable is not None:
        return f"answers an error: {declared.unavailable}"
    return "implemented"
