"""Connections to an agent on this machine kept for the next exec: reused while the agent
keeps them, replaced when it closed them before reading the request, and never used to send
a request twice once the agent has read it."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from calchub.runtime import channel
from calchub.runtime.base import RuntimeFailure

FRAME = struct.Struct(">I")
EXEC = {"op": "exec", "keep": True}


def read_frame(conn: socket.socket) -> dict[str, object]:
    (length,) = FRAME.unpack(conn.recv(FRAME.size, socket.MSG_WAITALL))
    found: dict[str, object] = json.loads(conn.recv(length, socket.MSG_WAITALL))
    return found


def reply(conn: socket.socket, number: int) -> None:
    data = json.dumps({"ok": True, "n": number}).encode()
    conn.sendall(FRAME.pack(len(data)) + data)


class Agent:
    """A stand-in for the agent's socket: `script(agent)` runs on a thread and serves the
    connections as a test needs; `requests` counts the requests it read."""

    def __init__(self, path: Path, script: Callable[[Agent], None]) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(8)
        self.listener.settimeout(10)
        self.requests = 0
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=script, args=(self,), daemon=True)
        self.thread.start()

    def accept(self) -> socket.socket:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        self.connections.append(conn)
        return conn

    def serve_one(self, conn: socket.socket) -> None:
        read_frame(conn)
        self.requests += 1
        reply(conn, self.requests)

    def close(self) -> None:
        self.thread.join(10)
        for conn in self.connections:
            conn.close()
        self.listener.close()


@pytest.fixture
def agent_at(tmp_path: Path) -> Iterator[Callable[[Callable[[Agent], None]], Agent]]:
    started: list[Agent] = []

    def start(script: Callable[[Agent], None]) -> Agent:
        started.append(Agent(tmp_path / "sock", script))
        return started[-1]

    yield start
    for agent in started:
        agent.close()


async def call(path: Path) -> dict[str, object]:
    try:
        found, _ = await channel.call(str(path), EXEC, wait_s=10)
        return found
    except BaseException:
        channel.close_kept()
        raise


async def test_a_kept_connection_carries_the_next_exec(
    agent_at: Callable[[Callable[[Agent], None]], Agent], tmp_path: Path
) -> None:
    def script(agent: Agent) -> None:
        conn = agent.accept()
        for _ in range(3):
            agent.serve_one(conn)

    agent = agent_at(script)
    try:
        assert [(await call(tmp_path / "sock"))["n"] for _ in range(3)] == [1, 2, 3]
    finally:
        channel.close_kept()
    agent.thread.join(10)
    assert len(agent.connections) == 1


async def test_a_connection_the_agent_closed_unread_is_replaced(
    agent_at: Callable[[Callable[[Agent], None]], Agent], tmp_path: Path
) -> None:
    def script(agent: Agent) -> None:
        first = agent.accept()
        agent.serve_one(first)
        # The next request arrives as the agent lets go of the connection: unread.
        first.recv(1, socket.MSG_PEEK)
        first.close()
        agent.serve_one(agent.accept())

    agent = agent_at(script)
    try:
        assert (await call(tmp_path / "sock"))["n"] == 1
        assert (await call(tmp_path / "sock"))["n"] == 2
    finally:
        channel.close_kept()
    agent.thread.join(10)
    assert agent.requests == 2


async def test_a_connection_the_agent_closed_is_not_used(
    agent_at: Callable[[Callable[[Agent], None]], Agent], tmp_path: Path
) -> None:
    # As an agent from before kept connections does: one request per connection.
    def script(agent: Agent) -> None:
        for _ in range(2):
            conn = agent.accept()
            agent.serve_one(conn)
            conn.close()

    agent = agent_at(script)
    try:
        assert (await call(tmp_path / "sock"))["n"] == 1
        await asyncio.sleep(0.1)  # the end is seen while the connection is kept
        assert (await call(tmp_path / "sock"))["n"] == 2
    finally:
        channel.close_kept()
    agent.thread.join(10)
    assert agent.requests == 2


async def test_a_request_the_agent_read_is_not_sent_again(
    agent_at: Callable[[Callable[[Agent], None]], Agent], tmp_path: Path
) -> None:
    def script(agent: Agent) -> None:
        conn = agent.accept()
        agent.serve_one(conn)
        read_frame(conn)  # read, then the agent dies before it answers
        agent.requests += 1
        conn.close()

    agent = agent_at(script)
    try:
        assert (await call(tmp_path / "sock"))["n"] == 1
        with pytest.raises(RuntimeFailure, match="closed the connection"):
            await call(tmp_path / "sock")
    finally:
        channel.close_kept()
    agent.thread.join(10)
    assert agent.requests == 2
    assert len(agent.connections) == 1
