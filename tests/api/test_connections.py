"""What the HTTP server allows a connection: slow request heads are cut off, and client
addresses come from X-Forwarded-For only behind a proxy the operator named."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from calchub.db.tables import accounts
from tests.harness import ApiClient, Database, Loop, Server, throwaway_database

HEAD_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server with the defaults an operator gets (no trusted proxy), and a short deadline
    for request heads."""
    loop = Loop()
    try:
        folder: Path = tmp_path_factory.mktemp("plain")
        with throwaway_database(folder / "calchub.db", loop) as url:
            server = Server(folder / "data", url, None)
            del server.env["CALCHUB_FORWARDED_ALLOW_IPS"]
            server.env["CALCHUB_HEADER_TIMEOUT_S"] = str(HEAD_TIMEOUT_S)
            key = server.start()
            assert key
            try:
                yield server, key
            finally:
                server.stop()
    finally:
        loop.close()


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _seconds_until_closed(conn: socket.socket) -> float:
    began = time.monotonic()
    while conn.recv(4096):
        pass
    return time.monotonic() - began


def test_a_silent_connection_is_closed(plain_server: tuple[Server, str]) -> None:
    with _connect(plain_server[0]) as conn:
        assert _seconds_until_closed(conn) < HEAD_TIMEOUT_S + 3


def test_a_trickled_head_is_cut_off(plain_server: tuple[Server, str]) -> None:
    head = b"POST /api/v1/ping HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    with _connect(plain_server[0]) as conn:
        done = threading.Event()

        def trickle() -> None:
            for byte in head:
                if done.wait(0.1):
                    return
                try:
                    conn.send(bytes([byte]))
                except OSError:
                    return

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        try:
            assert _seconds_until_closed(conn) < HEAD_TIMEOUT_S + 3
        finally:
            done.set()
            sender.join()


def test_keep_alive_requests_still_work(plain_server: tuple[Server, str]) -> None:
    server, key = plain_server
    client = ApiClient(server.url)
    try:
        for _ in range(3):
            assert client.call("ping", key).event == "pong"
    finally:
        client.close()


def test_forwarded_for_is_ignored_without_a_trusted_proxy(
    plain_server: tuple[Server, str], tmp_path: Path
) -> None:
    server, key = plain_server
    client = ApiClient(server.url)
    loop = Loop()
    try:
        email = f"fwd-{time.monotonic_ns()}@example.com"
        reply = client.call(
            "create_account",
            key,
            {
                "first_name": "F",
                "last_name": "W",
                "email_address": email,
                "password": "correct horse",
                "agreed_to_terms": True,
            },
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert reply.event == "account_created", reply.body
        db = Database(server.database_url, loop)
        try:
            (row,) = db.execute(
                select(accounts.c.created_by).where(accounts.c.email_address == email)
            )
        finally:
            db.close()
        assert row.created_by == "127.0.0.1"
    finally:
        client.close()
        loop.close()
