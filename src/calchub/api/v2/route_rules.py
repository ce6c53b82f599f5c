"""What every v2 route module checks and answers the same way: who is calling, a uuid in a
body, and the domain's access refusal in the route's own words."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from calchub.api.v2.registry import V2Call
from calchub.errors import Invalid, NotSignedIn, Refused
from calchub.ids import is_valid_uuid

T = TypeVar("T")
OK = {"status": "ok"}
SUCCESS = {"status": "success"}


def signed_in(call: V2Call, refusal: str) -> None:
    if not call.actor.signed_in:
        raise NotSignedIn(refusal)


def account(call: V2Call, refusal: str) -> str:
    if call.actor.account_id is None:
        raise NotSignedIn(refusal)
    return call.actor.account_id


def uuid(value: str | None, refusal: str) -> str:
    if value is None or not is_valid_uuid(value):
        raise Invalid(refusal)
    return value.lower()


async def worded(work: Awaitable[T], refused: str) -> T:
    """The domain's refusal of access, in this route's words."""
    try:
        return await work
    except Refused:
        raise Refused(refused) from None
