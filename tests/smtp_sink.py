"""An in-process SMTP server that records what it receives, for tests.

Usage::

    with SmtpSink() as sink:
        mailer = SmtpMailer.from_url(sink.url)
        ...
        (received,) = sink.wait_for(1)
        assert received.envelope_to == ["bob@example.com"]
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from types import TracebackType
from typing import Self, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"
_START_ATTEMPTS = 5


@dataclass(frozen=True)
class Received:
    """One delivered message together with its SMTP envelope."""

    envelope_from: str
    envelope_to: list[str]
    message: EmailMessage


def _free_port() -> int:
    # Controller needs a concrete port up front (it connects to it to check readiness).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return cast(int, probe.getsockname()[1])


class _RecordingHandler:
    def __init__(self, sink: SmtpSink, refused: frozenset[str]) -> None:
        self._sink = sink
        self._refused = refused

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() in self._refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        message = BytesParser(policy=default).parsebytes(raw)
        self._sink._record(
            Received(
                envelope_from=envelope.mail_from or "",
                envelope_to=list(envelope.rcpt_tos),
                message=message,
            )
        )
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on 127.0.0.1 and a free port, accepting every message without AUTH.

    The server runs in its own thread (aiosmtpd's ``Controller``), so it works from both
    synchronous and asynchronous tests. All accessors are thread-safe.

    ``refuse_recipients`` lists addresses answered with ``550`` at ``RCPT TO``, for
    testing how callers handle rejected recipients.
    """

    def __init__(self, *, refuse_recipients: Iterable[str] = ()) -> None:
        self._refused = frozenset(address.lower() for address in refuse_recipients)
        self._controller: Controller | None = None
        self._port: int | None = None
        self._received: list[Received] = []
        self._cond = threading.Condition()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        if self._controller is not None:
            raise RuntimeError("SmtpSink is already running")
        last_error: OSError | None = None
        # The probed port can be taken by someone else before the server binds it.
        for _ in range(_START_ATTEMPTS):
            port = _free_port()
            controller = Controller(
                _RecordingHandler(self, self._refused), hostname=HOST, port=port
            )
            try:
                controller.start()
            except OSError as exc:
                last_error = exc
                # The failed server thread has exited; release what it left behind.
                controller.stop(no_assert=True)
                controller.loop.close()
                continue
            self._controller = controller
            self._port = port
            return self
        raise RuntimeError(f"could not start SMTP sink: {last_error}")

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- accessors -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("SmtpSink has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"smtp://{HOST}:{self.port}"

    @property
    def messages(self) -> list[Received]:
        """A snapshot of everything received so far, oldest first."""
        with self._cond:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        """Block until at least ``count`` messages arrived; return all of them."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._received) >= count, timeout):
                raise AssertionError(
                    f"expected {count} message(s) within {timeout}s, got {len(self._received)}"
                )
            return list(self._received)

    def clear(self) -> None:
        with self._cond:
            self._received.clear()

    def _record(self, received: Received) -> None:
        with self._cond:
            self._received.append(received)
            self._cond.notify_all()

    def __repr__(self) -> str:
        state = f"port={self._port}" if self._controller is not None else "stopped"
        return f"SmtpSink({state})"
