"""Delivery through an SMTP server configured by URL."""

from __future__ import annotations

import logging
import math
from email.utils import getaddresses
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import aiosmtplib

from calchub.mail.base import MailError
from calchub.mail.message import Email

logger = logging.getLogger(__name__)

Security = Literal["plain", "starttls", "tls"]

DEFAULT_TIMEOUT = 30.0

# scheme -> (transport security, default port)
_SCHEMES: dict[str, tuple[Security, int]] = {
    "smtp": ("plain", 25),
    "smtps": ("tls", 465),
    "smtp+starttls": ("starttls", 587),
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"invalid SMTP URL: {name}={value!r} is not a boolean")


def _parse_timeout(value: str) -> float:
    try:
        timeout = float(value)
    except ValueError:
        raise ValueError(f"invalid SMTP URL: timeout={value!r} is not a number") from None
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"invalid SMTP URL: timeout must be a positive number, got {value!r}")
    return timeout


class SmtpMailer:
    """Sends each message over a fresh SMTP connection.

    A connection per message keeps the mailer stateless: there is no idle connection
    for the server to drop, and concurrent sends do not contend for one session.
    """

    def __init__(
        self,
        hostname: str,
        port: int,
        *,
        security: Security = "plain",
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if security not in ("plain", "starttls", "tls"):
            raise ValueError(f"unknown SMTP security mode: {security!r}")
        if (username is None) != (password is None):
            raise ValueError("SMTP username and password must be given together")
        self.hostname = hostname
        self.port = port
        self.security: Security = security
        self.username = username
        self._password = password
        self.timeout = timeout

    @classmethod
    def from_url(cls, url: str) -> SmtpMailer:
        """Build a mailer from ``smtp://``, ``smtps://`` or ``smtp+starttls://`` URLs.

        ``smtp://[user[:password]@]host[:port][?starttls=1][&timeout=<seconds>]``;
        the user name and password are percent-decoded.
        """
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            allowed = ", ".join(f"{name}://" for name in _SCHEMES)
            raise ValueError(
                f"invalid SMTP URL: scheme must be one of {allowed}, got {parts.scheme!r}"
            )
        security, default_port = _SCHEMES[scheme]
        hostname = parts.hostname
        if not hostname:
            raise ValueError("invalid SMTP URL: no host name")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("invalid SMTP URL: port must be a number from 1 to 65535") from None
        if port == 0:
            raise ValueError("invalid SMTP URL: port must be a number from 1 to 65535")
        if parts.path not in ("", "/"):
            raise ValueError(f"invalid SMTP URL: unexpected path {parts.path!r}")
        if parts.fragment:
            raise ValueError("invalid SMTP URL: unexpected fragment")

        timeout = DEFAULT_TIMEOUT
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name == "timeout":
                timeout = _parse_timeout(value)
            elif name == "starttls":
                if scheme != "smtp":
                    raise ValueError(
                        "invalid SMTP URL: the starttls option only applies to smtp:// URLs"
                    )
                if _parse_bool(name, value):
                    security = "starttls"
            else:
                raise ValueError(f"invalid SMTP URL: unknown option {name!r}")

        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        if username is not None and password is None:
            raise ValueError("invalid SMTP URL: a user name needs a password")
        if username == "" and password is not None:
            raise ValueError("invalid SMTP URL: a password needs a user name")
        if username == "" and password is None:
            username = None
        return cls(
            hostname,
            port if port is not None else default_port,
            security=security,
            username=username,
            password=password,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        # The password stays out so that logging the mailer cannot leak it.
        return (
            f"SmtpMailer(hostname={self.hostname!r}, port={self.port}, "
            f"security={self.security!r}, username={self.username!r}, timeout={self.timeout})"
        )

    async def send(self, email: Email) -> None:
        recipients = email.envelope_recipients
        if not recipients:
            raise MailError(f"no valid recipient address in {email.to!r}")
        message = email.to_mime()
        try:
            errors, _response = await aiosmtplib.send(
                message,
                sender=email.from_addr,
                recipients=recipients,
                hostname=self.hostname,
                port=self.port,
                username=self.username,
                password=self._password,
                timeout=self.timeout,
                use_tls=self.security == "tls",
                # False rather than None: aiosmtplib would otherwise upgrade opportunistically
                # on "plain" URLs and fail on servers with self-signed certificates.
                start_tls=self.security == "starttls",
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            details = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise MailError(f"SMTP server refused all recipients: {details}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise MailError(f"SMTP server error {exc.code}: {exc.message}") from exc
        except aiosmtplib.SMTPException as exc:
            raise MailError(
                f"SMTP delivery via {self.hostname}:{self.port} failed: {exc.message}"
            ) from exc
        except OSError as exc:
            raise MailError(f"SMTP delivery via {self.hostname}:{self.port} failed: {exc}") from exc
        if errors:
            details = "; ".join(
                f"{rcpt}: {resp.code} {resp.message}" for rcpt, resp in errors.items()
            )
            primary = {address for _name, address in getaddresses([email.to]) if address}
            if primary & errors.keys():
                raise MailError(f"SMTP server refused the recipient: {details}")
            # The main recipient got the message; failing now would invite a resend to them.
            logger.warning("SMTP server refused some Bcc recipients: %s", details)

    async def close(self) -> None:
        return None
