"""The memory files that carry large writes: one kept per project, never lent to another,
within a size and an idle time."""

from __future__ import annotations

import asyncio
import os

from calchub.runtime.payload_files import PayloadFiles

KB = 1024


def inode(fd: int) -> int:
    return os.fstat(fd).st_ino


def contents(fd: int) -> bytes:
    return os.pread(fd, 10 * 1024 * KB, 0)


async def test_a_project_gets_its_own_kept_file_back_holding_only_the_new_bytes() -> None:
    payloads = PayloadFiles()
    try:
        first = payloads.take("a", b"1" * 300 * KB)
        first_inode = inode(first.readable)
        payloads.give_back("a", first)
        again = payloads.take("a", b"2" * 100 * KB)
        assert inode(again.readable) == first_inode
        assert contents(again.readable) == b"2" * 100 * KB
        other = payloads.take("b", b"3" * 100 * KB)
        assert inode(other.readable) != first_inode  # not lent to another project
        payloads.give_back("a", again)
        payloads.give_back("b", other)
        grown = payloads.take("a", b"4" * 500 * KB)
        assert inode(grown.readable) == first_inode
        assert contents(grown.readable) == b"4" * 500 * KB
        grown.close()
        assert payloads.kept("a") is None
    finally:
        payloads.close()


async def test_kept_files_stay_within_their_limits() -> None:
    payloads = PayloadFiles(max_file=200 * KB, max_bytes=300 * KB)
    try:
        large = payloads.take("a", b"x" * 250 * KB)
        payloads.give_back("a", large)
        assert payloads.kept("a") is None  # too large to keep
        for name in ("b", "c", "d"):
            payloads.give_back(name, payloads.take(name, b"x" * 120 * KB))
        # The least recently used went to stay within the total.
        assert payloads.kept("b") is None
        assert payloads.kept("c") is not None and payloads.kept("d") is not None
        payloads.forget("c")
        assert payloads.kept("c") is None
    finally:
        payloads.close()
    assert payloads.kept("d") is None


async def test_an_idle_kept_file_is_closed() -> None:
    payloads = PayloadFiles(keep_s=0.05)
    try:
        file = payloads.take("a", b"x" * 100 * KB)
        payloads.give_back("a", file)
        assert payloads.kept("a") is file
        await asyncio.sleep(0.2)
        assert payloads.kept("a") is None
    finally:
        payloads.close()
