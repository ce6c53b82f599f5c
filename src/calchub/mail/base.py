"""The interface every mail transport implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from calchub.mail.message import Email


class MailError(Exception):
    """A message could not be handed over to the mail transport."""


@runtime_checkable
class Mailer(Protocol):
    """Something that can deliver an :class:`Email`.

    ``send`` returns once the message has been accepted by the transport (an SMTP
    server, a spool directory, ...); it raises :class:`MailError` otherwise.
    """

    async def send(self, email: Email) -> None: ...

    async def close(self) -> None: ...
