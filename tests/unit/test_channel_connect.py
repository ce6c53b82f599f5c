"""A call to an agent whose connection backlog is full (busy, or not accepting at all, as a
hostile project's agent may do) waits for room until its deadline, and then fails as a
timeout, never with a raw socket error."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from calchub.runtime import channel
from calchub.runtime.base import RuntimeFailure


@contextlib.contextmanager
def full_backlog() -> Iterator[tuple[str, socket.socket, list[socket.socket]]]:
    """A listening socket nobody accepts on, its backlog filled by waiting connections."""
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(0)
        waiting: list[socket.socket] = []
        try:
            while True:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.setblocking(False)
                try:
                    sock.connect(path)
                except BlockingIOError:
                    sock.close()
                    break
                waiting.append(sock)
            yield path, listener, waiting
        finally:
            for sock in waiting:
                sock.close()
            listener.close()


async def test_a_call_waits_for_room_in_the_backlog() -> None:
    with full_backlog() as (path, listener, waiting):
        call = asyncio.ensure_future(channel.call(path, {"op": "ping"}, wait_s=10))
        await asyncio.sleep(0.2)
        assert not call.done()
        # The agent takes the connections that waited, then the call's.
        listener.setblocking(False)
        loop = asyncio.get_running_loop()
        for sock in waiting:
            sock.close()
        for _ in range(len(waiting) + 1):
            conn, _ = await loop.sock_accept(listener)
            with conn:
                conn.setblocking(False)
                if await loop.sock_recv(conn, 4096):
                    await loop.sock_sendall(conn, channel.encode({"ok": True}))
                    break
        assert await call == ({"ok": True}, b"")


async def test_a_call_to_an_agent_that_never_accepts_times_out() -> None:
    with (
        full_backlog() as (path, _listener, _waiting),
        pytest.raises(RuntimeFailure, match="Timed out"),
    ):
        await channel.call(path, {"op": "ping"}, wait_s=0.3)
