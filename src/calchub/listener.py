"""Accepting connections: every connection waiting on the listening socket each time it is
readable, not one per turn of the event loop.

uvloop's libuv accepts a single connection per loop iteration. On a busy server an
iteration answers hundreds of requests (tens of milliseconds), so a burst of new clients
waits in the kernel's queue at a few dozen accepts per second: with 1,000 clients opening
at once, the last were first answered after more than ten seconds while the others were
served in a fraction of one. Here the whole queue, up to `ACCEPT_BATCH` connections, is
taken at each readiness, and each connection then gets the event loop's own transport, so
reading and writing stay as fast as before.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import gc
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("calchub.listener")

# Connections taken per readiness: the kernel's queue holds at most the listen backlog.
ACCEPT_BATCH = 2048
# Out of descriptors or memory: stop accepting for this long (as asyncio's own server does),
# leaving the waiting clients in the queue rather than spinning on the error.
RETRY_AFTER_S = 1.0
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class DrainingListener:
    """Serves `sock` with `protocol_factory` on the running loop until closed. Has the
    close/wait_closed pair of an asyncio server, which is all uvicorn asks of one."""

    def __init__(self, sock: socket.socket, protocol_factory: Callable[[], Any]) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._factory = protocol_factory
        self._connecting: set[asyncio.Task[Any]] = set()
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._accept_waiting)

    def _accept_waiting(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    # One client's failure (it reset while queued, or a network error
                    # Linux hands to accept): the next one is served all the same.
                    log.debug("accept failed: %s", exc)
                    continue
                log.error("cannot accept connections: %s; retrying in %g s", exc, RETRY_AFTER_S)
                self._loop.remove_reader(self._sock.fileno())
                self._retry = self._loop.call_later(RETRY_AFTER_S, self._resume)
                return
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        conn.setblocking(False)
        task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn))
        self._connecting.add(task)
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[Any]) -> None:
        self._connecting.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A client that resets before its transport is made: nothing to answer.
            log.debug("connection dropped while being set up: %s", exc)

    def _resume(self) -> None:
        self._retry = None
        if not self._closed:
            self._loop.add_reader(self._sock.fileno(), self._accept_waiting)

    def close(self) -> None:
        """Stop accepting; connections already made are the server's to finish."""
        if self._closed:
            return
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        else:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()

    async def wait_closed(self) -> None:
        if self._connecting:
            await asyncio.gather(*self._connecting, return_exceptions=True)


class DrainingServer(uvicorn.Server):
    """uvicorn's server (application start and shutdown, connection bookkeeping, signals)
    whose connections on `sock` are accepted by a DrainingListener, and whose objects
    made during start-up are left out of garbage collection. Prints `announcement` once
    connections are answered, that is once the application has started. Run it with
    `run(sockets=[sock])`, so that uvicorn closes the socket on shutdown."""

    def __init__(
        self,
        config: uvicorn.Config,
        sock: socket.socket,
        protocol: type[HttpToolsProtocol],
        announcement: str,
    ) -> None:
        super().__init__(config)
        self._sock = sock
        self._protocol = protocol
        self._announcement = announcement

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn starts the application and creates no server of its own.
        await super().startup(sockets=[])
        if not self.started:
            return
        factory = functools.partial(
            self._protocol,
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        # uvicorn closes its servers on shutdown; this one has the two methods it calls.
        self.servers.append(DrainingListener(self._sock, factory))  # type: ignore[arg-type]
        # What exists now (modules, tables, models, caches) lives as long as the server:
        # the collector stops walking it, which a full collection otherwise does every few
        # thousand requests (a pause of tens of milliseconds in a large application).
        gc.freeze()
        print(self._announcement, flush=True)
