"""What a killed write or copy leaves behind (its partial file) is removed when the project
starts again or the next write or copy begins, and the file it was replacing stays whole."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from calchub.runtime import LocalRuntime, ProjectSpec, RuntimeFailure
from tests.runtime.conftest import Projects, Shell, processes_of
from tests.runtime.test_copy import copy

MIB = 1024 * 1024


def home(runtime: LocalRuntime, spec: ProjectSpec) -> Path:
    return runtime.projects_root / spec.project_id


def partial_files(root: Path) -> list[Path]:
    """Files that are not finished files: anything in the partial-file folder, and the
    names writes and rsync give partial files next to their targets."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and (".calchub-tmp" in str(path) or path.name.startswith(".big")):
            found.append(path)
    return found


async def wait_until(found: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 30
    while not found():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.002)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_killed_write_leaves_nothing_once_the_project_starts(
    runtime: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(runtime)
    await runtime.write_file(spec, "doc.txt", b"the original")
    # A write of 8 MiB whose sender stops after 1 MiB, then the project is killed.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(runtime.runtime_root / spec.project_id / "sock"))
    header = json.dumps({"op": "write", "path": "doc.txt", "size": 8 * MIB}).encode()
    sock.sendall(struct.pack(">I", len(header)) + header + b"x" * MIB)
    root = home(runtime, spec)
    await wait_until(lambda: partial_files(root), "the partial file")
    assert any(p.stat().st_size > 0 for p in partial_files(root))
    await runtime.stop(spec.project_id)
    sock.close()
    assert partial_files(root)  # a crash leaves it behind
    assert (root / "doc.txt").read_bytes() == b"the original"

    await runtime.start(spec)
    assert partial_files(root) == []
    assert sorted(p.name for p in root.iterdir()) == ["doc.txt"]
    assert await runtime.read_file(spec, "doc.txt", 100) == b"the original"


def _rsync_processes(uid: int) -> list[int]:
    """rsync processes running as `uid`, and the agent workers that started them."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = dict(
                line.split(":", 1) for line in (entry / "status").read_text().splitlines()
            )
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if int(status["Uid"].split()[0]) != uid or status["State"].strip().startswith("Z"):
            continue
        if os.path.basename(cmdline[0]) == b"rsync":
            pids.add(int(entry.name))
            pids.add(int(status["PPid"]))  # its parent: rsync's client, or the worker
    return sorted(pids)


async def test_a_killed_copys_partial_file_goes_with_the_next_copy(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    src, dst = projects.spec(runtime), projects.spec(runtime)
    # Big enough that the copy is still running when it is caught.
    made = await sh(src, "head -c 400M /dev/zero > big && echo done", timeout=120)
    assert made.stdout == "done\n", made.stderr
    await runtime.write_file(dst, "big", b"the old big")
    dst_home = home(runtime, dst)

    running = asyncio.create_task(copy(runtime, src, "big", dst, "big", overwrite_newer=True))
    try:
        await wait_until(
            lambda: any(p.stat().st_size > 0 for p in partial_files(dst_home)),
            "rsync's partial file",
        )
        # The worker running the copy dies (as in an out-of-memory kill); the project lives.
        for pid in _rsync_processes(dst.uid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with pytest.raises(RuntimeFailure):
            await running
        await wait_until(lambda: not _rsync_processes(dst.uid), "the end of the copy")
    finally:
        if not running.done():
            running.cancel()
    assert (await runtime.status(dst.project_id)).running
    left = partial_files(dst_home)
    assert left and all(".calchub-tmp" in str(p) for p in left)
    assert (dst_home / "big").read_bytes() == b"the old big"

    # The next copy (here: the same one again) clears the debris and completes.
    await copy(runtime, src, "big", dst, "big", overwrite_newer=True)
    assert partial_files(dst_home) == []
    assert sorted(p.name for p in dst_home.iterdir()) == ["big"]
    assert (dst_home / "big").stat().st_size == 400 * MIB
    assert processes_of(dst.uid)  # still running all along
