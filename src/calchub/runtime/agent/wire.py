"""The framing between hub and agent (and between agent processes).

Each message is a 4-byte big-endian length, a UTF-8 JSON header, then `header["size"]` raw
payload bytes when the header has a `size`. File descriptors may travel with a header
(SCM_RIGHTS). One request per connection, except that an exec whose header has `"keep": true`
leaves its connection open for the hub's next exec (see server.Worker.serve_kept).
"""

from __future__ import annotations

import os
import struct

from . import sockets as socket
from .jsonc import dumps, loads

# Imported for the checker only: typing would cost every project's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FRAME = struct.Struct(">I")
MAX_HEADER = 256 << 20
CHUNK = 1 << 16


def recv_exact(sock: socket.socket, n: int, fds: list[int] | None = None) -> bytearray:
    """Exactly `n` bytes; descriptors that arrive with them are appended to `fds`."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if fds is None:
            k = sock.recv_into(view[got:], n - got)
        else:
            data, new_fds, _flags, _addr = socket.recv_fds(sock, min(n - got, CHUNK), 8)
            for fd in new_fds:
                # Received descriptors are inheritable: a command must never get them.
                os.set_inheritable(fd, False)
            fds.extend(new_fds)
            k = len(data)
            view[got : got + k] = data
        if k == 0:
            raise EOFError("connection closed")
        got += k
    return buf


def recv_frame(sock: socket.socket, fds: list[int] | None = None) -> dict[str, Any]:
    (length,) = FRAME.unpack(recv_exact(sock, FRAME.size, fds))
    if length > MAX_HEADER:
        raise ValueError("header too large")
    header = loads(recv_exact(sock, length, fds))
    if not isinstance(header, dict):
        raise ValueError("header must be an object")
    return header


def send_frame(
    sock: socket.socket,
    header: dict[str, Any],
    payload: bytes | None = None,
    fds: list[int] | None = None,
) -> None:
    data = dumps(header).encode()
    message = FRAME.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [message], fds)
        message = message[sent:]
    if message:  # sendall(b"") still calls send(), which fails once the peer hung up
        sock.sendall(message)
    if payload:
        sock.sendall(payload)


def hub_gone(conn: socket.socket) -> bool:
    """True when the hub closed the connection (it sends nothing after its request)."""
    try:
        data = conn.recv(CHUNK, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return not data


class Incoming:
    """A request's payload, still in the socket. Whatever is not used is drained before
    the reply, so the hub can finish sending and read a refusal."""

    def __init__(self, conn: socket.socket, size: int) -> None:
        self.conn = conn
        self.left = size
        self.buf = bytearray(min(size, 1 << 20) or 1)

    def _next(self) -> memoryview:
        view = memoryview(self.buf)
        n = self.conn.recv_into(view, min(self.left, len(self.buf)))
        if n == 0:
            raise EOFError("connection closed during write")
        self.left -= n
        return view[:n]

    def copy_to(self, fd: int) -> None:
        while self.left > 0:
            chunk = self._next()
            while chunk:
                chunk = chunk[os.write(fd, chunk) :]

    def discard(self) -> None:
        while self.left > 0:
            self._next()
