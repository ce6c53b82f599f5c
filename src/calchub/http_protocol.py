"""uvicorn's HTTP protocol with a deadline for request heads, numbering requests as they
arrive (calchub/arrivals.py).

uvicorn closes idle keep-alive connections, but a client that sends its headers a byte at a
time (or nothing at all after connecting) holds a connection for as long as it likes; a few
hundred such clients exhaust the server's file descriptors. Here every request's head must
arrive within `header_timeout_s` of the connection opening or of the previous response."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from calchub import arrivals


class HeadDeadlineProtocol(HttpToolsProtocol):
    header_timeout_s = 10.0
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        # Numbered as it arrives, for the change counters' reads (calchub/arrivals.py).
        arrivals.stamp(cast("dict[str, Any]", self.scope))
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request's head has arrived already.
        if not self.pipeline and not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def head_deadline_protocol(timeout_s: float) -> type[HeadDeadlineProtocol]:
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"header_timeout_s": timeout_s})
