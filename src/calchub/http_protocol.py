"""uvicorn's HTTP protocol with a deadline for request heads, numbering requests as they
arrive (calchub/arrivals.py).

uvicorn closes idle keep-alive connections, but a client that sends its headers a byte at a
time (or nothing at all after connecting) holds a connection for as long as it likes; a few
hundred such clients exhaust the server's file descriptors. Here every request's head must
arrive within `header_timeout_s` of the connection opening or of the previous response."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from calchub import arrivals
from calchub.logconfig import access_logger


class _HeadWatch:
    """The head deadlines of one event loop's connections, checked together a few times per
    deadline rather than each with a timer of its own: arming and disarming is then a
    dictionary entry per request, and a late head is cut off at most `interval` late."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop = loop
        self._interval = interval
        self._deadlines: dict[HeadDeadlineProtocol, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def arm(self, protocol: HeadDeadlineProtocol, timeout: float) -> None:
        self._deadlines[protocol] = self._loop.time() + timeout
        if self._timer is None:
            self._timer = self._loop.call_later(self._interval, self._sweep)

    def disarm(self, protocol: HeadDeadlineProtocol) -> None:
        self._deadlines.pop(protocol, None)

    def _sweep(self) -> None:
        now = self._loop.time()
        late = [protocol for protocol, due in self._deadlines.items() if due <= now]
        for protocol in late:
            del self._deadlines[protocol]
            protocol.head_too_slow()
        self._timer = (
            self._loop.call_later(self._interval, self._sweep) if self._deadlines else None
        )


_WATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _HeadWatch] = (
    weakref.WeakKeyDictionary()
)


class HeadDeadlineProtocol(HttpToolsProtocol):
    header_timeout_s = 10.0
    _watch: _HeadWatch

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # The direct access log when calchub configured logging (calchub/logconfig.py).
        self.access_logger = access_logger()
        self.access_log = self.access_logger.hasHandlers()
        watch = _WATCHES.get(self.loop)
        if watch is None:
            watch = _WATCHES[self.loop] = _HeadWatch(self.loop, min(1.0, self.header_timeout_s / 4))
        self._watch = watch
        watch.arm(self, self.header_timeout_s)

    def on_headers_complete(self) -> None:
        self._watch.disarm(self)
        # Numbered as it arrives, for the change counters' reads (calchub/arrivals.py).
        arrivals.stamp(cast("dict[str, Any]", self.scope))
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined request's head has arrived already.
        if not self.pipeline and not self.transport.is_closing():
            self._watch.arm(self, self.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._watch.disarm(self)
        super().connection_lost(exc)

    def head_too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


def head_deadline_protocol(timeout_s: float) -> type[HeadDeadlineProtocol]:
    return type("HeadDeadlineProtocol", (HeadDeadlineProtocol,), {"header_timeout_s": timeout_s})
