"""The hub's side of the agent protocol (see calchub.runtime.agent for the wire format).

A connection per call to the agent's Unix socket on this machine (an exec's is kept for the
project's next exec) or, for a project on another machine, over TCP with TLS to the relay in
front of it (calchub.runtime.agent.relay): the relay's certificate is pinned by fingerprint
and the first frame carries the project's token; such connections are kept for the next
call. Replies come from inside a sandbox, so
they are treated as untrusted input: sizes are bounded and shapes are checked before
anything is believed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import ssl
import struct
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from calchub.runtime.base import RuntimeFailure
from calchub.runtime.passed_files import ReadFailed, TooLarge, malformed, read_passed_file

FRAME = struct.Struct(">I")
MAX_REPLY_HEADER = 128 * 1024 * 1024  # two 10M-character outputs, JSON-escaped
FD_SIZE = struct.calcsize("i")


CONNECT_TIMEOUT_S = 5.0  # a node that does not answer by then is taken for dead
# Connections to relays are kept for reuse this long (the relay closes them after 30 s)...
KEEP_IDLE_S = 10.0
# ...and this many per project.
KEEP_PER_ENDPOINT = 8
# An exec, a file read or a write asks the agent on this machine to keep its connection for
# the project's next request (the worker waits on it for 10 s: KEPT_S in
# calchub/runtime/agent/server.py); the hub reuses it for less than that, and keeps this many
# per project.
UNIX_KEEP_IDLE_S = 5.0
UNIX_KEEP_PER_PATH = 2


# Takes one header of news and its size in bytes (see `call`).
EventHandler = Callable[[dict[str, Any], int], None]


class NoEvents(RuntimeFailure):
    """News before a reply was asked of a relay, which passes none (nothing was sent)."""


class AgentUnreachable(RuntimeFailure):
    """Nothing answers on the project's socket: the project is not running."""


@dataclass(frozen=True)
class NetworkEndpoint:
    """A project's relay on another machine: where it listens, the SHA-256 fingerprint of
    its certificate (hex), and the token that proves a hub to it."""

    host: str
    port: int
    fingerprint: str
    token: bytes

    def __repr__(self) -> str:  # never the token, in logs or tracebacks
        return f"NetworkEndpoint({self.host}:{self.port})"


Endpoint = str | NetworkEndpoint


def _client_tls() -> ssl.SSLContext:
    # No certificate authority: the relay's certificate is checked by its pinned
    # fingerprint once the handshake is done.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


_TLS = _client_tls()


async def _open(
    endpoint: NetworkEndpoint,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the relay, its certificate checked and the token sent."""
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(
                endpoint.host, endpoint.port, ssl=_TLS, server_hostname=""
            )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise AgentUnreachable(
            f"the project's node {endpoint.host} does not answer ({exc.__class__.__name__})"
        ) from exc
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    if der is None or not hmac.compare_digest(
        hashlib.sha256(der).hexdigest(), endpoint.fingerprint
    ):
        writer.close()
        raise RuntimeFailure("the project's node presented an unknown certificate")
    writer.write(encode({"token": endpoint.token.hex()}))
    return reader, writer


def encode(header: dict[str, Any]) -> bytes:
    data = json.dumps(header, separators=(",", ":")).encode()
    return FRAME.pack(len(data)) + data


def _decode(data: bytes) -> dict[str, Any]:
    try:
        header = json.loads(data)
    except ValueError as exc:
        raise RuntimeFailure("the project sent a malformed reply") from exc
    if not isinstance(header, dict):
        raise RuntimeFailure("the project sent a malformed reply")
    return header


async def call(
    endpoint: Endpoint,
    header: dict[str, Any],
    payload: bytes | None = None,
    *,
    wait_s: float,
    max_payload: int = 0,
    file_device: int | None = None,
    on_event: EventHandler | None = None,
) -> tuple[dict[str, Any], bytes]:
    """Send one request and return the reply header and its payload (if any), giving up
    after `wait_s` seconds.

    With `file_device` (a read, from an agent on this machine), the agent may pass the file
    it opened instead of sending its bytes, when the file is on that device (the home's
    file system): the hub then reads at most `max_payload` bytes of it itself, and the
    payload returned is what it read.

    With `on_event` (a request to an agent on this machine that sends news before its
    reply), each header with an "event" before the reply goes there, with its size; it may
    raise to give up, which closes the connection. A relay passes no news: NoEvents."""
    try:
        async with asyncio.timeout(wait_s):
            return await _call(endpoint, header, payload, max_payload, file_device, on_event)
    except TimeoutError:
        raise RuntimeFailure(f"Timed out after {wait_s:g} seconds.") from None


async def call_on(
    sock: socket.socket,
    header: dict[str, Any],
    *,
    wait_s: float,
    max_payload: int = 0,
) -> tuple[dict[str, Any], bytes]:
    """As `call`, over a connected socket (one end of a pair handed to a one-shot reader);
    the socket is closed afterwards."""
    try:
        async with asyncio.timeout(wait_s):
            reader, writer = await asyncio.open_unix_connection(sock=sock)
            return await _exchange(reader, writer, header, None, max_payload)
    except TimeoutError:
        raise RuntimeFailure(f"Timed out after {wait_s:g} seconds.") from None


async def call_passing(
    socket_path: str,
    header: dict[str, Any],
    fd: int,
    *,
    wait_s: float,
    max_payload: int = 0,
) -> tuple[dict[str, Any], bytes]:
    """As `call` to an agent on this machine, with a file descriptor passed along with the
    header (SCM_RIGHTS)."""
    try:
        async with asyncio.timeout(wait_s):
            if header.get("keep") is True:
                return await _kept_unix_exchange(socket_path, header, max_payload, passing=fd)
            return await _unix_exchange(socket_path, header, None, max_payload, None, passing=fd)
    except TimeoutError:
        raise RuntimeFailure(f"Timed out after {wait_s:g} seconds.") from None


async def _call(
    endpoint: Endpoint,
    header: dict[str, Any],
    payload: bytes | None,
    max_payload: int,
    file_device: int | None,
    on_event: EventHandler | None = None,
) -> tuple[dict[str, Any], bytes]:
    if isinstance(endpoint, str):
        if header.get("keep") is True and payload is None:
            return await _kept_unix_exchange(endpoint, header, max_payload, file_device)
        return await _unix_exchange(
            endpoint, header, payload, max_payload, file_device, on_event=on_event
        )
    if on_event is not None:
        raise NoEvents("a relay passes no news before a reply")
    # A relay cannot forward descriptors: the bytes come inline.
    return await _network_call(endpoint, header, payload, max_payload)


async def _unix_exchange(
    path: str,
    header: dict[str, Any],
    payload: bytes | None,
    max_payload: int,
    file_device: int | None,
    *,
    passing: int | None = None,
    on_event: EventHandler | None = None,
) -> tuple[dict[str, Any], bytes]:
    """`_exchange` on the agent's Unix socket with the loop's socket calls: without a
    stream reader, writer and protocol per call, an exec costs the hub noticeably less.
    `passing`: a descriptor sent with the header."""
    loop = asyncio.get_running_loop()
    received = await _connect(loop, path)
    try:
        return await _unix_request(
            received, header, payload, max_payload, file_device, passing=passing, on_event=on_event
        )
    finally:
        received.discard()
        received.sock.close()


async def _connect(loop: asyncio.AbstractEventLoop, path: str) -> _Received:
    """A new connection to the agent's socket, with what reads its replies."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    try:
        await _connect_socket(sock, path)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        raise AgentUnreachable("project is not running") from exc
    except BaseException:
        sock.close()
        raise
    return _Received(loop, sock)


async def _connect_socket(sock: socket.socket, path: str) -> None:
    """Connect the non-blocking `sock`. A Unix socket connects at once unless the agent's
    backlog is full (it is busy, or does not accept): nothing signals room in a backlog, so
    the connection is tried again shortly, until the caller's deadline."""
    delay = 0.001
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)


async def _unix_request(
    received: _Received,
    header: dict[str, Any],
    payload: bytes | None,
    max_payload: int,
    file_device: int | None,
    *,
    passing: int | None = None,
    reused: bool = False,
    on_event: EventHandler | None = None,
) -> tuple[dict[str, Any], bytes]:
    """One request and its reply on a connection to the agent's socket, which stays open.
    On a `reused` connection, a request the agent never read (it had closed the connection,
    or closed it with the request unread) raises _Stale: it may go on a new connection. An
    end without a reply after the agent read it is a failure: the request may have run."""
    loop, sock = received.loop, received.sock
    replied = False
    try:
        if file_device is not None:
            header = {**header, "fd_device": file_device}
        message = encode(header)
        # The connection's buffer is empty (it is new, or its last reply was read): a header
        # this small goes at once.
        if passing is not None:
            if socket.send_fds(sock, [message], [passing]) != len(message):
                raise RuntimeFailure("the request did not fit the connection")
        else:
            try:
                sent = sock.send(message)
            except BlockingIOError:
                sent = 0
            if sent < len(message):
                await loop.sock_sendall(sock, message[sent:])
        if payload:
            await loop.sock_sendall(sock, payload)
        head = await received.exactly(FRAME.size)
        replied = True
        reply, length = await _reply_header(received, head)
        if on_event is not None:
            reply = await _events(received, reply, length, on_event)
        fds = received.take_fds()
        if reply.get("fd") is True and reply.get("ok") is True:
            return await _passed_file(reply, fds, file_device, max_payload)
        if fds:  # descriptors nobody asked for
            close_all(fds)
            raise malformed()
        size = reply.get("size", 0)
        if not isinstance(size, int) or not 0 <= size <= max_payload:
            raise RuntimeFailure("the project sent an oversized reply")
        data = await received.exactly(size) if size else b""
        return reply, data
    except (ConnectionResetError, BrokenPipeError) as exc:
        # A reset before the reply: the agent closed the connection with the request unread
        # (a pipe: closed before it was sent).
        if reused and not replied:
            raise _Stale from exc
        raise RuntimeFailure("the project closed the connection (did it stop?)") from exc


async def _events(
    received: _Received, reply: dict[str, Any], length: int, on_event: EventHandler
) -> dict[str, Any]:
    """Pass on the news that comes before the reply (`reply`, of `length` bytes, is the
    first header), and return the reply."""
    while "event" in reply and "ok" not in reply:
        if fds := received.take_fds():
            close_all(fds)
            raise malformed()
        on_event(reply, length)
        reply, length = await _reply_header(received, await received.exactly(FRAME.size))
    return reply


async def _reply_header(received: _Received, head: bytes) -> tuple[dict[str, Any], int]:
    """The header that frame `head` announces, and its size in bytes."""
    (length,) = FRAME.unpack(head)
    if length > MAX_REPLY_HEADER:
        raise RuntimeFailure("the project sent an oversized reply")
    return _decode(await received.exactly(length)), length


async def _kept_unix_exchange(
    path: str,
    header: dict[str, Any],
    max_payload: int,
    file_device: int | None = None,
    *,
    passing: int | None = None,
) -> tuple[dict[str, Any], bytes]:
    """`_unix_exchange` on a connection kept from an earlier request to the same agent when
    there is one, and the connection kept for the next afterwards (an agent started before
    hubs kept connections closes it: it is found closed, and not used)."""
    kept = _kept_unix.here()
    received = kept.take(path)
    if received is not None:
        try:
            reply, data = await _unix_request(
                received, header, None, max_payload, file_device, passing=passing, reused=True
            )
        except _Stale:
            received.close()
        except BaseException:
            received.close()
            raise
        else:
            kept.give(path, received)
            return reply, data
    received = await _connect(asyncio.get_running_loop(), path)
    try:
        reply, data = await _unix_request(
            received, header, None, max_payload, file_device, passing=passing
        )
    except BaseException:
        received.close()
        raise
    kept.give(path, received)
    return reply, data


async def _passed_file(
    reply: dict[str, Any], fds: list[int], device: int | None, limit: int
) -> tuple[dict[str, Any], bytes]:
    """The reply of a read whose file came as a descriptor: the bytes read here, or the
    error reply the agent would have sent had it read the file itself."""
    if device is None or len(fds) != 1 or "size" in reply:
        close_all(fds)
        raise malformed()
    try:
        data = await read_passed_file(fds[0], device, limit)
    except TooLarge as exc:
        return _read_error(reply, "EFBIG", "file too large", size=exc.size), b""
    except ReadFailed as exc:
        return _read_error(reply, exc.code, "i/o error" if exc.code == "EIO" else exc.code), b""
    return reply, data


def _read_error(reply: dict[str, Any], code: str, message: str, **extra: Any) -> dict[str, Any]:
    error = {"code": code, "syscall": "read", "path": reply.get("path"), "message": message}
    return {"ok": False, "error": {**error, **extra, "real_path": reply.get("real_path")}}


class _Received:
    """Reads exact byte counts from a non-blocking socket, a buffer at a time (a reply's
    header and a small payload usually arrive in one), keeping the descriptors that come
    with them (closed on exec, and at most one per read: the kernel closes any beyond)."""

    CHUNK = 256 * 1024
    ANCILLARY = socket.CMSG_SPACE(FD_SIZE)

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        self.loop = loop
        self.sock = sock
        self._buffer = bytearray()
        self._fds: list[int] = []
        self._truncated = False
        # A kept connection stays registered with the loop (see `keep`).
        self._kept = False
        self._waiter: asyncio.Future[None] | None = None
        self.ended = False  # by the agent, while kept

    async def exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = await self._recv()
            if not chunk:
                raise RuntimeFailure("the project closed the connection (did it stop?)")
            self._buffer += chunk
        found = bytes(self._buffer[:count])
        del self._buffer[:count]
        return found

    async def _recv(self) -> bytes:
        while True:
            try:
                data, ancillary, flags, _ = self.sock.recvmsg(
                    self.CHUNK, self.ANCILLARY, socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                await self._readable()
                continue
            for level, kind, fds in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    usable = len(fds) - len(fds) % FD_SIZE
                    self._fds.extend(struct.unpack(f"{usable // FD_SIZE}i", fds[:usable]))
            if flags & socket.MSG_CTRUNC:
                self._truncated = True
            return data

    async def _readable(self) -> None:
        if self._kept:
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
            return
        waiter = self.loop.create_future()
        fileno = self.sock.fileno()
        self.loop.add_reader(fileno, _wake, waiter)
        try:
            await waiter
        finally:
            self.loop.remove_reader(fileno)

    def take_fds(self) -> list[int]:
        """The descriptors received so far, now the caller's. More than there was room for
        is not what an agent sends."""
        fds, self._fds = self._fds, []
        if self._truncated:
            close_all(fds)
            raise malformed()
        return fds

    def discard(self) -> None:
        close_all(self._fds)
        self._fds = []

    def keep(self) -> None:
        """From now on the socket stays registered with the loop: a reply is awaited without
        registering it each time, and an agent that ends the connection while it is kept is
        noticed when it does."""
        if not self._kept:
            self._kept = True
            self.loop.add_reader(self.sock.fileno(), self._on_readable)

    def _on_readable(self) -> None:
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
            return
        # Readable while no reply is awaited: the agent ended the connection (or sent
        # something unasked). It is not used again.
        self.ended = True
        self.loop.remove_reader(self.sock.fileno())
        self._kept = False

    def close(self) -> None:
        self.discard()
        if self._kept:
            self._kept = False
            self.loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def finished(self) -> bool:
        """Whether nothing is left over from the last reply."""
        return not (self._buffer or self._fds or self._truncated)

    def reusable(self) -> bool:
        """Whether the connection may carry another request: nothing left over from the
        last reply, nothing more sent, and not closed by the agent."""
        return self.finished() and not self.ended


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Stale(Exception):
    """A kept connection was closed before it carried the request (the relay closes idle
    ones): nothing reached the agent, so the request may go on a new connection."""


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_Pool = TypeVar("_Pool")


class _KeptConnections:
    """Authenticated connections to relays, kept for the next request: a TLS handshake
    costs far more than a request."""

    def __init__(self) -> None:
        self._idle: dict[NetworkEndpoint, list[tuple[float, Connection]]] = {}

    def take(self, endpoint: NetworkEndpoint) -> Connection | None:
        kept = self._idle.get(endpoint, [])
        while kept:
            since, (reader, writer) = kept.pop()
            fresh = time.monotonic() - since < KEEP_IDLE_S
            if fresh and not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        self._idle.pop(endpoint, None)
        return None

    def give(self, endpoint: NetworkEndpoint, connection: Connection) -> None:
        kept = self._idle.setdefault(endpoint, [])
        if len(kept) >= KEEP_PER_ENDPOINT:
            connection[1].close()
            return
        kept.append((time.monotonic(), connection))

    def close(self) -> None:
        for kept in self._idle.values():
            for _, (_, writer) in kept:
                writer.close()
        self._idle.clear()


class _PerLoop(Generic[_Pool]):
    """One pool of kept connections per event loop: a connection belongs to the loop it was
    made on."""

    def __init__(self, make: Callable[[], _Pool]) -> None:
        self._make = make
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = (
            weakref.WeakKeyDictionary()
        )

    def here(self) -> _Pool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = self._make()
        return pool


_kept: _PerLoop[_KeptConnections] = _PerLoop(_KeptConnections)


def close_kept() -> None:
    """Close this event loop's kept connections (a runtime that closes calls it)."""
    with contextlib.suppress(RuntimeError):
        _kept.here().close()
        _kept_unix.here().close()


class _KeptUnix:
    """Connections to agents on this machine, kept for the next exec: a new one costs both
    sides a few system calls and the agent a wake-up of one of its processes. Those unused
    for UNIX_KEEP_IDLE_S are closed (which lets the agent's worker go back to accepting)."""

    def __init__(self) -> None:
        self._idle: dict[str, list[tuple[float, _Received]]] = {}
        self._sweep: asyncio.TimerHandle | None = None

    def take(self, path: str) -> _Received | None:
        kept = self._idle.get(path)
        while kept:
            since, received = kept.pop()
            if time.monotonic() - since < UNIX_KEEP_IDLE_S and received.reusable():
                return received
            received.close()
        self._idle.pop(path, None)
        return None

    def give(self, path: str, received: _Received) -> None:
        kept = self._idle.setdefault(path, [])
        if len(kept) >= UNIX_KEEP_PER_PATH or not received.reusable():
            received.close()
            return
        received.keep()
        kept.append((time.monotonic(), received))
        if self._sweep is None:
            self._sweep = received.loop.call_later(UNIX_KEEP_IDLE_S, self._expire)

    def _expire(self) -> None:
        self._sweep = None
        oldest = time.monotonic() - UNIX_KEEP_IDLE_S
        for path, kept in list(self._idle.items()):
            for since, received in kept:
                if since < oldest:
                    received.close()
            kept[:] = [(since, received) for since, received in kept if since >= oldest]
            if not kept:
                del self._idle[path]
        if self._idle:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(UNIX_KEEP_IDLE_S, self._expire)

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for kept in self._idle.values():
            for _, received in kept:
                received.close()
        self._idle.clear()


_kept_unix: _PerLoop[_KeptUnix] = _PerLoop(_KeptUnix)


async def _network_call(
    endpoint: NetworkEndpoint, header: dict[str, Any], payload: bytes | None, max_payload: int
) -> tuple[dict[str, Any], bytes]:
    kept = _kept.here()
    connection = kept.take(endpoint)
    if connection is not None:
        try:
            result = await _exchange(*connection, header, payload, max_payload, reused=True)
        except _Stale:
            pass
        else:
            kept.give(endpoint, connection)
            return result
    connection = await _open(endpoint)
    result = await _exchange(*connection, header, payload, max_payload, keep=True)
    kept.give(endpoint, connection)
    return result


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    header: dict[str, Any] | None,
    payload: bytes | None,
    max_payload: int,
    *,
    keep: bool = False,
    reused: bool = False,
) -> tuple[dict[str, Any], bytes]:
    """Send the request (unless `header` is None: sent already) and read the reply. The
    connection is closed afterwards unless `keep` (or `reused`) and all went well; a
    `reused` one that ends before the reply raises _Stale."""
    replied = False
    done = False
    try:
        if header is not None:
            writer.write(encode(header))
        if payload:
            writer.write(payload)
        await writer.drain()
        head = await reader.readexactly(FRAME.size)
        replied = True
        (length,) = FRAME.unpack(head)
        if length > MAX_REPLY_HEADER:
            raise RuntimeFailure("the project sent an oversized reply")
        reply = _decode(await reader.readexactly(length))
        size = reply.get("size", 0)
        if not isinstance(size, int) or not 0 <= size <= max_payload:
            raise RuntimeFailure("the project sent an oversized reply")
        data = await reader.readexactly(size) if size else b""
        done = True
        return reply, data
    except (
        asyncio.IncompleteReadError,
        ConnectionResetError,
        BrokenPipeError,
        ssl.SSLError,
    ) as exc:
        if reused and not replied:
            raise _Stale from exc
        raise RuntimeFailure("the project closed the connection (did it stop?)") from exc
    finally:
        if not (done and (keep or reused)):
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


class SyncChannel:
    """A blocking connection that can also carry file descriptors (used by copies, which
    hand an rsync connection from one sandbox to the other)."""

    def __init__(self, socket_path: str, deadline: float) -> None:
        self._deadline = deadline
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(self._remaining())
            self.sock.connect(socket_path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            self.sock.close()
            raise AgentUnreachable("project is not running") from exc
        except BaseException:
            self.sock.close()
            raise

    def _remaining(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise RuntimeFailure("copy timed out")
        return left

    def send(self, header: dict[str, Any], fds: list[int] | None = None) -> None:
        message = encode(header)
        self.sock.settimeout(self._remaining())
        if fds:
            sent = socket.send_fds(self.sock, [message], fds)
            message = message[sent:]
        if message:
            self.sock.sendall(message)

    def receive(self, fds: list[int] | None = None) -> dict[str, Any]:
        """The next reply header; descriptors that came with it are appended to `fds`
        (and closed when `fds` is None)."""
        got: list[int] = []
        try:
            (length,) = FRAME.unpack(self._recv_exact(FRAME.size, got))
            if length > MAX_REPLY_HEADER:
                raise RuntimeFailure("the project sent an oversized reply")
            return _decode(self._recv_exact(length, got))
        finally:
            if fds is None:
                close_all(got)
            else:
                fds.extend(got)

    def _recv_exact(self, n: int, fds: list[int]) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                self.sock.settimeout(self._remaining())
                data, new, _flags, _addr = socket.recv_fds(self.sock, n - len(buf), 4)
            except TimeoutError:
                raise RuntimeFailure("copy timed out") from None
            for fd in new:
                os.set_inheritable(fd, False)
            fds.extend(new)
            if not data:
                raise RuntimeFailure("the project closed the connection (did it stop?)")
            buf += data
        return bytes(buf)

    def close(self) -> None:
        self.sock.close()


def close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
