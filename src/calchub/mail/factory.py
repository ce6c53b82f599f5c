"""Choose the mail transport from the server settings."""

from __future__ import annotations

from pathlib import Path

from calchub.mail.base import Mailer
from calchub.mail.outbox import OutboxMailer
from calchub.mail.smtp import SmtpMailer

OUTBOX_DIRNAME = "outbox"


def mailer_from_settings(smtp_url: str | None, data_dir: Path) -> Mailer:
    """Return an SMTP mailer when ``smtp_url`` is set, else spool to ``<data_dir>/outbox``.

    Spooling means a server without SMTP configured still works and keeps every message
    (e.g. password reset links) where an operator can find it.
    """
    if smtp_url and smtp_url.strip():
        return SmtpMailer.from_url(smtp_url)
    return OutboxMailer(Path(data_dir) / OUTBOX_DIRNAME)
