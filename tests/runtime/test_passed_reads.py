"""Reads of a running project's home come back as the descriptor the agent opened, and the hub
reads the file itself; what an agent passes is checked as anything from a sandbox is. Fake
agents here send what a hostile project could."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from calchub.runtime import FileFailure, LocalRuntime, ProjectSpec, RuntimeFailure, passed_files
from calchub.runtime import channel as channel
from tests.runtime.conftest import Shell

MB = 1024 * 1024


def open_descriptors() -> dict[str, str]:
    """This process's descriptors and what each one is."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            found[fd] = os.readlink(f"/proc/self/fd/{fd}")
    return found


def kept_from(before: dict[str, str], folder: Path) -> list[str]:
    """What is open now and was not before that a fake agent could have passed: a file of the
    test's folder, a pipe, a /proc file. Other descriptors come and go with whatever else
    runs in this process (event loop, other tests' clean-up), so they are not counted."""
    passed = [str(folder), "pipe:", "/proc/"]
    return [
        target
        for fd, target in open_descriptors().items()
        if before.get(fd) != target and any(target.startswith(p) for p in passed)
    ]


async def test_home_files_come_as_descriptors_and_others_inline(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    data = os.urandom(3 * MB)
    await runtime.write_file(project, "big.bin", data)
    sock = str(runtime.runtime_root / project.project_id / "sock")
    device = runtime._file_device(project.project_id, {"op": "read"})
    assert device is not None
    header = {"op": "read", "path": "big.bin", "max_bytes": 4 * MB}
    reply, got = await channel.call(sock, header, wait_s=30, max_payload=4 * MB, file_device=device)
    assert reply["fd"] is True and got == data
    # Outside the home (the sandbox's own /tmp): the bytes come inline.
    await sh(project, "printf elsewhere > /tmp/t.txt")
    header = {"op": "read", "path": "/tmp/t.txt", "max_bytes": MB}
    reply, got = await channel.call(sock, header, wait_s=30, max_payload=MB, file_device=device)
    assert "fd" not in reply and got == b"elsewhere"
    assert await runtime.read_file(project, "/tmp/t.txt", MB) == b"elsewhere"
    # As the runtime reads, limits and error texts unchanged.
    assert await runtime.read_file(project, "big.bin", 4 * MB) == data
    with pytest.raises(FileFailure) as failure:
        await runtime.read_file(project, "big.bin", MB)
    assert failure.value.code == "EFBIG" and failure.value.size == len(data)


@contextlib.contextmanager
def fake_agent(answer: Callable[[socket.socket, dict[str, Any]], None]) -> Iterator[str]:
    """A socket that answers one request as `answer` does."""
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                (length,) = struct.unpack(">I", conn.recv(4, socket.MSG_WAITALL))
                answer(conn, json.loads(conn.recv(length, socket.MSG_WAITALL)))
                # Hold the connection until the hub is done with it.
                conn.recv(1)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield path
        finally:
            listener.close()
            thread.join(timeout=10)


def passing(reply: dict[str, Any], make_fds: Callable[[], list[int]]) -> Callable[..., None]:
    def answer(conn: socket.socket, _request: dict[str, Any]) -> None:
        fds = make_fds()
        try:
            if fds:
                socket.send_fds(conn, [channel.encode(reply)], fds)
            else:
                conn.sendall(channel.encode(reply))
        finally:
            for fd in fds:
                os.close(fd)

    return answer


OK = {"ok": True, "fd": True, "path": "/projects/p/f", "real_path": "/projects/p/f"}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "small.txt").write_bytes(b"small")
    (tmp_path / "big.bin").write_bytes(b"b" * (2 * MB))
    return tmp_path


async def ask(path: str, device: int | None, limit: int = MB) -> tuple[dict[str, Any], bytes]:
    header = {"op": "read", "path": "f", "max_bytes": limit}
    return await channel.call(path, header, wait_s=10, max_payload=limit, file_device=device)


def reading(path: Path, flags: int = os.O_RDONLY) -> Callable[[], list[int]]:
    return lambda: [os.open(path, flags)]


async def test_a_file_on_the_home_device_is_read_by_the_hub(folder: Path) -> None:
    before = open_descriptors()
    with fake_agent(passing(OK, reading(folder / "small.txt"))) as sock:
        reply, data = await ask(sock, os.stat(folder).st_dev)
    assert reply["ok"] and data == b"small"
    assert not kept_from(before, folder)


async def test_what_exceeds_the_limit_is_refused_as_the_agent_would(folder: Path) -> None:
    with fake_agent(passing(OK, reading(folder / "big.bin"))) as sock:
        reply, data = await ask(sock, os.stat(folder).st_dev, limit=MB)
    assert data == b""
    assert reply["error"]["code"] == "EFBIG" and reply["error"]["size"] == 2 * MB
    assert reply["error"]["message"] == "file too large"


def a_pipe() -> list[int]:
    read_end, write_end = os.pipe()
    os.close(write_end)  # even a pipe that would never block is not a file
    return [read_end]


def two_files(folder: Path) -> Callable[[], list[int]]:
    return lambda: [os.open(folder / "small.txt", os.O_RDONLY) for _ in range(2)]


@pytest.mark.parametrize(
    "make_fds",
    [
        pytest.param(lambda folder: a_pipe, id="a pipe"),
        pytest.param(lambda folder: reading(Path("/proc/self/status")), id="another device"),
        pytest.param(lambda folder: reading(folder), id="a folder"),
        pytest.param(
            lambda folder: reading(folder / "small.txt", os.O_WRONLY), id="open for writing"
        ),
        pytest.param(two_files, id="two descriptors"),
        pytest.param(lambda folder: list, id="no descriptor"),
    ],
)
async def test_a_descriptor_that_is_not_a_home_file_is_refused(
    folder: Path, make_fds: Callable[[Path], Callable[[], list[int]]]
) -> None:
    before = open_descriptors()
    with (
        fake_agent(passing(OK, make_fds(folder))) as sock,
        pytest.raises(RuntimeFailure, match="malformed reply"),
    ):
        await ask(sock, os.stat(folder).st_dev)
    assert not kept_from(before, folder)


async def test_a_descriptor_nobody_asked_for_is_refused(folder: Path) -> None:
    before = open_descriptors()
    inline = {"ok": True, "size": 0}
    for reply in (OK, inline, {**OK, "size": 5}):
        with (
            fake_agent(passing(reply, reading(folder / "small.txt"))) as sock,
            pytest.raises(RuntimeFailure, match="malformed reply"),
        ):
            device = None if reply is OK else os.stat(folder).st_dev
            await ask(sock, device)
    assert not kept_from(before, folder)


async def test_a_file_that_grows_is_read_up_to_the_limit_only(folder: Path) -> None:
    # As if the file had grown after its size was taken: the rest is read in pieces, and
    # reading stops one byte past the limit.
    fd = os.open(folder / "big.bin", os.O_RDONLY)
    buffer, got = passed_files._read_rest_and_close(fd, bytearray(10), 0, 3 * MB)
    assert got == 2 * MB and bytes(buffer[:got]) == b"b" * (2 * MB)
    fd = os.open(folder / "big.bin", os.O_RDONLY)
    _, got = passed_files._read_rest_and_close(fd, bytearray(10), 0, MB)
    assert got == MB + 1
    with pytest.raises(OSError):
        os.fstat(fd)  # closed by the reader


async def test_a_connection_whose_agent_sent_more_than_its_reply_is_not_used_again(
    folder: Path,
) -> None:
    """A kept connection carries the next request only when the last reply ended where the
    hub stopped reading: anything beyond it is an agent out of step, and the next request
    goes on a new connection."""
    served: list[str] = []

    def serve(listener: socket.socket) -> None:
        for n in range(2):
            conn, _ = listener.accept()
            with conn:
                (length,) = struct.unpack(">I", conn.recv(4, socket.MSG_WAITALL))
                conn.recv(length, socket.MSG_WAITALL)
                fd = os.open(folder / "small.txt", os.O_RDONLY)
                try:
                    socket.send_fds(conn, [channel.encode(OK)], [fd])
                finally:
                    os.close(fd)
                served.append(f"connection {n}")
                if n == 0:
                    conn.sendall(channel.encode({"ok": True, "fd": True}))  # out of turn
                with contextlib.suppress(OSError):  # reset: closed with bytes unread
                    conn.recv(1)  # held until the hub closes it

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(2)
        thread = threading.Thread(target=serve, args=(listener,), daemon=True)
        thread.start()
        try:
            header = {"op": "read", "path": "f", "max_bytes": MB, "keep": True}
            device = os.stat(folder).st_dev
            for _ in range(2):
                reply, data = await channel.call(
                    path, header, wait_s=10, max_payload=MB, file_device=device
                )
                assert reply["ok"] and data == b"small"
                await asyncio.sleep(0.05)  # the extra bytes arrive meanwhile
            assert served == ["connection 0", "connection 1"]
        finally:
            channel.close_kept()
            thread.join(timeout=10)
            listener.close()
