"""Large writes travel to the agent as a memory file passed with the request (read-only for
the agent, kept for the project's next write); the agent checks it holds what was
announced, and an agent that predates this gets the bytes inline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from calchub.runtime import LocalRuntime, ProjectSpec, sandbox
from calchub.runtime import channel as channel
from calchub.runtime import local as local_runtime
from calchub.runtime.base import RuntimeFailure
from calchub.runtime.payload_files import PayloadFile, PayloadFiles
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


async def test_writes_that_reuse_a_kept_file_hold_their_own_bytes(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    # Shrinking and growing: a kept file holds exactly the next write's bytes.
    sizes = [2 * MB, 100 * 1024, 3 * MB + 5, 64 * 1024]
    for n, size in enumerate(sizes):
        data = os.urandom(size)
        await runtime.write_file(project, f"w{n}.bin", data)
        assert await runtime.read_file(project, f"w{n}.bin", 4 * MB) == data
        kept = runtime._payloads.kept(project.project_id)
        assert kept is not None and kept.size == size
    await runtime.stop(project.project_id)
    assert runtime._payloads.kept(project.project_id) is None


async def test_reads_and_large_writes_go_on_one_kept_connection(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    kept = channel._kept_unix.here()
    path = str(runtime.runtime_root / project.project_id / "sock")

    def connections() -> list[object]:
        return [received for _, received in kept._idle.get(path, [])]

    data = os.urandom(MB)
    await runtime.write_file(project, "kept.bin", data)
    [connection] = connections()
    for n in range(3):
        assert await runtime.read_file(project, "kept.bin", 2 * MB) == data
        await runtime.write_file(project, "kept.bin", data[n:])
        data = data[n:]
        assert connections() == [connection]


async def test_a_project_that_ends_on_its_own_keeps_no_file(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    await runtime.write_file(project, "big.bin", os.urandom(MB))
    assert runtime._payloads.kept(project.project_id) is not None
    status = await runtime.status(project.project_id)
    assert status.pid is not None
    os.kill(status.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while runtime._payloads.kept(project.project_id) is not None:
        assert time.monotonic() < deadline, "the ended project's file was kept"
        await asyncio.sleep(0.05)


async def test_a_payload_file_must_hold_what_was_announced(
    runtime: LocalRuntime, project: ProjectSpec
) -> None:
    sock = str(runtime.runtime_root / project.project_id / "sock")
    file = PayloadFile.holding(b"x" * 1000)
    try:
        header = {"op": "write_fd", "path": "short.txt", "size": 5000, "quota_bytes": 100 * MB}
        reply, _ = await channel.call_passing(sock, header, file.readable, wait_s=30)
    finally:
        file.close()
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


async def test_a_write_whose_agent_did_not_answer_keeps_no_file() -> None:
    """The agent may still be reading it: written over by the next write, it would take in
    bytes of that one."""
    payloads = PayloadFiles()
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "sock")
        taken: list[int] = []

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            taken.append(1)
            await reader.read()  # never answers

        server = await asyncio.start_unix_server(silent, path)
        try:
            header = {"op": "write", "path": "f", "size": MB, "quota_bytes": 10 * MB}
            with pytest.raises(RuntimeFailure, match="Timed out"):
                await local_runtime._send(path, header, b"x" * MB, 0.3, 0, None, (payloads, "p"))
        finally:
            server.close()
            await server.wait_closed()
    assert taken and payloads.kept("p") is None
    payloads.close()


CHILD = """
import fcntl, os, sys
fd = int(sys.argv[1])
tries = {
    "reopen": lambda: os.open(f"/proc/self/fd/{fd}", os.O_RDWR),
    "write": lambda: os.write(fd, b"changed"),
    "truncate": lambda: os.ftruncate(fd, 1),
    "seal": lambda: fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE),
}
for name, attempt in tries.items():
    try:
        attempt()
        print(name, "done")
    except OSError:
        print(name, "refused")
print("read", os.pread(fd, 100, 0).decode())
"""


def test_the_agent_can_read_a_payload_file_but_not_change_it() -> None:
    """What the agent gets is a read-only descriptor of a file it cannot reopen, grow,
    shrink or seal, as a project's user: only the hub writes it."""
    file = PayloadFile.holding(b"written by the hub")
    try:
        done = subprocess.run(
            [*sandbox.AGENT_PYTHON, "-c", CHILD, str(file.readable)],
            pass_fds=[file.readable],
            user=65534,
            group=65534,
            extra_groups=[],
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.splitlines() == [
            "reopen refused",
            "write refused",
            "truncate refused",
            "seal refused",
            "read written by the hub",
        ]
        assert os.pread(file.readable, 100, 0) == b"written by the hub"
        file.fill(b"the next write")
        assert os.pread(file.readable, 100, 0) == b"the next write"
    finally:
        file.close()
