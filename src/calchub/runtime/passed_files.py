"""Reading a file whose descriptor a project's agent passed (SCM_RIGHTS) in place of its
bytes: the hub reads the file itself, without the bytes crossing the agent's socket.

The descriptor comes from inside a sandbox, so nothing about it is believed. It must be a
regular file on the file system of the project's home (so not a pipe, socket or device,
whose reads can block forever, nor a file of /proc or /sys, whose contents can depend on who
reads them); at most `limit` bytes are read whatever its size says, so a file that grows
meanwhile costs no more. What the page cache holds is read at once; a read that would wait
for the disk goes to a thread, so the event loop never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat

from calchub.runtime.base import RuntimeFailure

# Read by the worker thread in pieces of this size once the file outgrows what its size
# said: memory follows what is really there, up to the limit.
GROWTH_CHUNK = 1 << 20


class TooLarge(Exception):
    """The file holds more than the limit: `size` bytes at least."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class ReadFailed(Exception):
    """The file system failed the read (EIO and the like)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def malformed() -> RuntimeFailure:
    return RuntimeFailure("the project sent a malformed reply")


async def read_passed_file(fd: int, device: int, limit: int) -> bytes:
    """The contents of the file open as `fd`, which this call closes. Raises TooLarge,
    ReadFailed, or RuntimeFailure when the descriptor is not what a project may pass."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_dev != device:
            raise malformed()
        if st.st_size > limit:
            raise TooLarge(st.st_size)
        # One byte more than the size said: a read that fills it has found the file grown.
        buffer = bytearray(st.st_size + 1)
        got, ended = _read_cached(fd, buffer)
    except BaseException:
        os.close(fd)
        raise
    if ended:
        os.close(fd)
    else:
        # The thread closes the descriptor itself: if this call is cancelled (its deadline
        # passed) while the thread still reads, the number must not be reused meanwhile.
        buffer, got = await asyncio.to_thread(_read_rest_and_close, fd, buffer, got, limit)
    if got > limit:
        raise TooLarge(got)
    return bytes(memoryview(buffer)[:got])


def _read_cached(fd: int, buffer: bytearray) -> tuple[int, bool]:
    """Fill `buffer` from the page cache alone; returns the bytes read and whether the end of
    the file was reached (False: the rest needs the disk, or the buffer is full)."""
    view = memoryview(buffer)
    got = 0
    while got < len(buffer):
        try:
            count = os.preadv(fd, [view[got:]], got, os.RWF_NOWAIT)
        except BlockingIOError:
            return got, False
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                return got, False  # a file system that cannot say: read it the usual way
            raise _failure(exc) from None
        if count == 0:
            return got, True
        got += count
    return got, False


def _read_rest_and_close(fd: int, buffer: bytearray, got: int, limit: int) -> tuple[bytearray, int]:
    try:
        while True:
            if got == len(buffer):
                if got > limit:
                    return buffer, got
                buffer.extend(bytes(min(GROWTH_CHUNK, limit + 1 - got)))
            view = memoryview(buffer)
            try:
                count = os.preadv(fd, [view[got:]], got)
            except OSError as exc:
                raise _failure(exc) from None
            finally:
                view.release()
            if count == 0:
                return buffer, got
            got += count
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _failure(exc: OSError) -> Exception:
    # EBADF (opened for writing only) and the like are the project's doing, not the disk's.
    if exc.errno in (errno.EIO, errno.ENXIO, errno.ESTALE, errno.ETIMEDOUT):
        return ReadFailed(errno.errorcode[exc.errno])
    return malformed()
