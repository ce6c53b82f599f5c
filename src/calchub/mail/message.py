"""The transport-independent representation of an outgoing email."""

from __future__ import annotations

import email.utils
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage

CATEGORY_HEADER = "X-Calchub-Category"

# make_msgid() without a domain calls socket.getfqdn(), which may block on DNS.
_FALLBACK_MSGID_DOMAIN = "calchub.invalid"


def _reject_line_breaks(name: str, value: str | None) -> None:
    # A CR or LF inside a header value would let a caller start new headers (or the body).
    if value is not None and ("\r" in value or "\n" in value):
        raise ValueError(f"{name} must not contain line breaks")


@dataclass(frozen=True)
class Email:
    """An outgoing message.

    ``bcc`` recipients receive the message but never appear in its headers.
    ``category`` is a free-form tag (``"invite"``, ``"password_reset"``, ...) that is
    exposed as the ``X-Calchub-Category`` header for filtering and diagnostics.
    """

    to: str
    subject: str
    text: str
    # Keyword-only from here so the optional html can precede the required sender.
    _: KW_ONLY
    html: str | None = None
    from_addr: str
    from_name: str | None = None
    reply_to: str | None = None
    # Shown with reply_to as `"Name" <address>`; never parsed as addresses.
    reply_to_name: str | None = None
    bcc: tuple[str, ...] = ()
    category: str | None = None

    def __post_init__(self) -> None:
        # Accept any iterable of addresses but keep the instance hashable and immutable.
        object.__setattr__(self, "bcc", tuple(self.bcc))
        for name in (
            "to",
            "subject",
            "from_addr",
            "from_name",
            "reply_to",
            "reply_to_name",
            "category",
        ):
            _reject_line_breaks(name, getattr(self, name))
        for address in self.bcc:
            _reject_line_breaks("bcc", address)
        if not self.to.strip():
            raise ValueError("to must not be empty")
        if "@" not in self.from_addr:
            raise ValueError(f"from_addr is not an email address: {self.from_addr!r}")

    @property
    def envelope_recipients(self) -> list[str]:
        """Bare addresses of every recipient (``to`` followed by ``bcc``)."""
        pairs = email.utils.getaddresses([self.to, *self.bcc])
        return [address for _name, address in pairs if address]

    def to_mime(self) -> EmailMessage:
        """Build the MIME message; ``bcc`` is deliberately left out of the headers."""
        message = EmailMessage()
        message["From"] = email.utils.formataddr((self.from_name, self.from_addr))
        message["To"] = self.to
        if self.reply_to:
            message["Reply-To"] = _named_address(self.reply_to_name, self.reply_to)
        message["Subject"] = self.subject
        message["Date"] = email.utils.format_datetime(datetime.now(UTC))
        message["Message-ID"] = email.utils.make_msgid(domain=self._msgid_domain())
        if self.category:
            message[CATEGORY_HEADER] = self.category
        message.set_content(self.text)
        if self.html is not None:
            message.add_alternative(self.html, subtype="html")
        return message

    def _msgid_domain(self) -> str:
        domain = self.from_addr.rpartition("@")[2].strip().rstrip(">")
        if domain and domain.isascii() and all(c.isalnum() or c in ".-" for c in domain):
            return domain
        return _FALLBACK_MSGID_DOMAIN


def _named_address(name: str | None, address: str) -> str | Address:
    """`"Name" <address>`, with the name always a quoted string (or, if it is not plain
    ASCII, an RFC 2047 encoded word), so that commas, angle brackets or quotes in a name
    a caller chose can never add recipients."""
    if not name:
        return address
    if name.isascii() and name.isprintable():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return Address(display_name=name, addr_spec=address)
