"""Large writes travel to the agent as a sealed memory file passed with the request; the
agent checks it holds what was announced, and an agent that predates this gets the bytes
inline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from calchub.runtime import LocalRuntime, ProjectSpec
from calchub.runtime import channel as channel
from calchub.runtime import local as local_runtime
from tests.runtime.conftest import Shell

MB = 1024 * 1024


async def test_large_and_small_writes_read_back(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    big = os.urandom(3 * MB)
    small = b"a few bytes"
    assert len(big) >= local_runtime.FILE_PAYLOAD_BYTES > len(small)
    await runtime.write_file(project, "big.bin", big)
    await runtime.write_file(project, "small.txt", small)
    assert await runtime.read_file(project, "big.bin", 4 * MB) == big
    assert await runtime.read_file(project, "small.txt", MB) == small
    # Replaced in place, the old contents gone, no temporary file left behind.
    await runtime.write_file(project, "big.bin", big[::-1])
    assert await runtime.read_file(project, "big.bin", 4 * MB) == big[::-1]
    listing = await sh(project, "ls -A")
    assert listing.stdout.split() == ["big.bin", "small.txt"]


async def test_a_payload_file_must_hold_what_was_announced(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    sock = str(runtime.runtime_root / project.project_id / "sock")
    fd = local_runtime._memory_file(b"x" * 1000)
    try:
        header = {"op": "write_fd", "path": "short.txt", "size": 5000, "quota_bytes": 100 * MB}
        reply, _ = await channel.call_passing(sock, header, fd, wait_s=30)
    finally:
        os.close(fd)
    assert not reply["ok"] and "does not hold the bytes announced" in reply["error"]["message"]
    with pytest.raises(Exception, match="ENOENT"):
        await runtime.read_file(project, "short.txt", MB)


@contextlib.asynccontextmanager
async def old_agent(got: list[tuple[str, bytes]]) -> AsyncIterator[str]:
    """A socket answering as an agent from before memory files: it knows only `write`."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack(">I", await reader.readexactly(4))
        header = channel._decode(await reader.readexactly(length))
        if header["op"] == "write":
            got.append((header["path"], await reader.readexactly(header["size"])))
            reply: dict[str, object] = {"ok": True}
        else:
            message = f"ValueError(\"unknown operation '{header['op']}'\")"
            reply = {"ok": False, "error": {"code": "EAGENT", "message": message}}
        writer.write(channel.encode(reply))
        await writer.drain()
        writer.close()

    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "sock")
        server = await asyncio.start_unix_server(serve, path)
        try:
            yield path
        finally:
            server.close()
            await server.wait_closed()


async def test_an_older_agent_gets_the_bytes_inline() -> None:
    got: list[tuple[str, bytes]] = []
    data = os.urandom(MB)
    async with old_agent(got) as path:
        header = {"op": "write", "path": "f", "size": len(data), "quota_bytes": 10 * MB}
        reply, _ = await local_runtime._send(path, header, data, 30, 0)
    assert reply == {"ok": True}
    assert got == [("f", data)]


def test_memory_files_are_sealed() -> None:
    fd = local_runtime._memory_file(b"sealed")
    try:
        with pytest.raises(PermissionError):
            os.write(fd, b"changed")
        assert os.pread(fd, 100, 0) == b"sealed"
    finally:
        os.close(fd)
