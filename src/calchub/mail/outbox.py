"""A mailer that spools messages to a directory instead of sending them.

Used when no SMTP server is configured: an operator can read the ``.eml`` files with any
mail client, and tests can inspect them with :func:`list_messages`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP, default
from pathlib import Path

from calchub.mail.base import MailError
from calchub.mail.message import Email

_SUFFIX = ".eml"
_DIR_MODE = 0o700
_FILE_MODE = 0o600


class OutboxMailer:
    """Writes every message as an RFC 5322 file ``<UTC timestamp>-<random>.eml``.

    Unlike an SMTP delivery the stored copy keeps a ``Bcc`` header, so that the
    spool shows everyone the message was meant for.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"OutboxMailer(directory={str(self.directory)!r})"

    async def send(self, email: Email) -> None:
        message = email.to_mime()
        if email.bcc:
            message["Bcc"] = ", ".join(email.bcc)
        # CRLF line endings, as RFC 5322 prescribes for a message on disk or the wire.
        data = message.as_bytes(policy=SMTP)
        try:
            await asyncio.to_thread(self._write, data)
        except OSError as exc:
            raise MailError(f"cannot write to outbox {self.directory}: {exc}") from exc

    async def close(self) -> None:
        return None

    def _ensure_directory(self) -> None:
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.directory.mkdir(mode=_DIR_MODE)
        except FileExistsError:
            return
        # mkdir() honours the umask; the spool holds private mail, so set the mode exactly.
        os.chmod(self.directory, _DIR_MODE)

    def _write(self, data: bytes) -> Path:
        self._ensure_directory()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        target = self.directory / f"{stamp}-{secrets.token_hex(4)}{_SUFFIX}"
        # A temporary file in the same directory makes os.replace() atomic, so readers
        # never see a partially written message. The ".tmp" suffix keeps it out of listings.
        fd, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), _FILE_MODE)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return target


def list_messages(directory: Path) -> list[EmailMessage]:
    """Parse every spooled message in ``directory``, oldest first.

    A missing directory simply holds no messages.
    """
    path = Path(directory)
    if not path.is_dir():
        return []
    parser = BytesParser(policy=default)
    messages: list[EmailMessage] = []
    # File names start with a fixed-width UTC timestamp, so name order is time order.
    for file in sorted(path.glob(f"*{_SUFFIX}"), key=lambda p: p.name):
        with file.open("rb") as handle:
            # policy.default makes the parser produce EmailMessage instances.
            messages.append(parser.parse(handle))
    return messages
