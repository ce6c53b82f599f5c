"""Loop devices through their ioctls (no losetup or mount(8) process per project start).

A device is attached with autoclear, as `mount -o loop` attaches it: the kernel detaches it
once nothing holds it any more, so after its file system is unmounted, or at once when
mounting fails and the attaching process lets go of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOOP_CTL_GET_FREE = 0x4C82
LOOP_CONFIGURE = 0x4C0A  # Linux 5.8
LO_FLAGS_AUTOCLEAR = 4
LO_NAME_SIZE = 64
LO_KEY_SIZE = 32
# Another process may take the free device first (it then refuses with EBUSY): ask again.
ATTEMPTS = 16


class Unsupported(Exception):
    """This kernel cannot attach a loop device in one ioctl: fall back to mount(8)."""


class _Info(ctypes.Structure):  # struct loop_info64
    _fields_ = (
        ("lo_device", ctypes.c_uint64),
        ("lo_inode", ctypes.c_uint64),
        ("lo_rdevice", ctypes.c_uint64),
        ("lo_offset", ctypes.c_uint64),
        ("lo_sizelimit", ctypes.c_uint64),
        ("lo_number", ctypes.c_uint32),
        ("lo_encrypt_type", ctypes.c_uint32),
        ("lo_encrypt_key_size", ctypes.c_uint32),
        ("lo_flags", ctypes.c_uint32),
        ("lo_file_name", ctypes.c_char * LO_NAME_SIZE),
        ("lo_crypt_name", ctypes.c_char * LO_NAME_SIZE),
        ("lo_encrypt_key", ctypes.c_char * LO_KEY_SIZE),
        ("lo_init", ctypes.c_uint64 * 2),
    )


class _Config(ctypes.Structure):  # struct loop_config
    _fields_ = (
        ("fd", ctypes.c_uint32),
        ("block_size", ctypes.c_uint32),
        ("info", _Info),
        ("reserved", ctypes.c_uint64 * 8),
    )


@contextlib.contextmanager
def attached(image: Path) -> Iterator[str]:
    """A free loop device attached to `image` (read-write, autoclear), held open while
    the block lasts: mount it inside. Raises Unsupported where the kernel lacks
    LOOP_CONFIGURE, OSError when no device can be had."""
    backing = os.open(image, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        device, fd = _configure(backing, os.fsencode(image))
    finally:
        os.close(backing)
    try:
        yield device
    finally:
        os.close(fd)


def _configure(backing: int, name: bytes) -> tuple[str, int]:
    config = _Config()
    config.fd = backing
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR
    config.info.lo_file_name = name[: LO_NAME_SIZE - 1]
    for _ in range(ATTEMPTS):
        device = f"/dev/loop{_free_number()}"
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.ioctl(fd, LOOP_CONFIGURE, bytes(config))
        except OSError as exc:
            os.close(fd)
            if exc.errno == errno.EBUSY:
                continue
            if exc.errno in (errno.EINVAL, errno.ENOTTY):
                raise Unsupported() from exc
            raise
        return device, fd
    raise OSError(errno.EBUSY, "every free loop device was taken meanwhile")


def _free_number() -> int:
    control = os.open("/dev/loop-control", os.O_RDWR | os.O_CLOEXEC)
    try:
        number: int = fcntl.ioctl(control, LOOP_CTL_GET_FREE)
        return number
    finally:
        os.close(control)
