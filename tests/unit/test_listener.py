"""The listener takes every waiting connection at once, on uvloop (which calchub serves with)
and on asyncio's own loop, and each connection then works like any other."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest
import uvloop

from calchub.listener import DrainingListener

WAITING = 50
# Loop turns the listener may take: a listener accepting one connection per turn (as
# uvloop's own server does) would have taken fewer than WAITING in them.
TURNS = 10

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "uvloop": uvloop.new_event_loop,
    "asyncio": asyncio.new_event_loop,
}


class Echo(asyncio.Protocol):
    made: list[Echo] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        Echo.made.append(self)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _waiting_connections_accepted() -> None:
    Echo.made = []
    server = socket.create_server(("127.0.0.1", 0), backlog=128)
    address = server.getsockname()
    listener = DrainingListener(server, Echo)
    # Connected by the kernel, waiting in the listen queue until the loop turns.
    clients = [socket.create_connection(address, timeout=5) for _ in range(WAITING)]
    try:
        for _ in range(TURNS):
            await asyncio.sleep(0)
        assert len(Echo.made) == WAITING
        for index, client in enumerate(clients):
            client.setblocking(False)
            await asyncio.get_running_loop().sock_sendall(client, b"%d" % index)
        for index, client in enumerate(clients):
            answer = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(client, 16), 5)
            assert answer == b"%d" % index
        listener.close()
        await listener.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=5)
    finally:
        for client in clients:
            client.close()
        for made in Echo.made:
            made.transport.close()
        listener.close()


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_every_waiting_connection_is_accepted_at_once(loop: str) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(_waiting_connections_accepted())
