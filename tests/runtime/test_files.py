"""Reading and writing files in a project, with Node-style errors, the disk quota, and no
way out of the project through symbolic links."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from calchub.runtime import (
    FileFailure,
    LocalRuntime,
    ProjectSpec,
    Quota,
    QuotaExceeded,
    RuntimeFailure,
)
from tests.runtime.conftest import Projects, Shell, host_exists

MB = 1024 * 1024


def host_read(path: str) -> bytes:
    return Path(path).read_bytes()


def host_home(runtime: LocalRuntime, spec: ProjectSpec) -> Path:
    return runtime.projects_root / spec.project_id


async def test_round_trip(runtime: LocalRuntime, project: ProjectSpec) -> None:
    data = "héllo\n".encode() + bytes(range(256))
    await runtime.write_file(project, "notes.bin", data)
    assert await runtime.read_file(project, "notes.bin", 10_000) == data
    assert (host_home(runtime, project) / "notes.bin").read_bytes() == data


async def test_parent_folders_are_created(runtime: LocalRuntime, project: ProjectSpec) -> None:
    await runtime.write_file(project, "a/b/c/d.txt", b"deep")
    assert (
        await runtime.read_file(project, f"/projects/{project.project_id}/a/b/c/d.txt", 10)
        == b"deep"
    )
    made = host_home(runtime, project) / "a/b/c/d.txt"
    assert made.stat().st_uid == project.uid


async def test_overwrite_keeps_the_mode(
    runtime: LocalRuntime, project: ProjectSpec, sh: Shell
) -> None:
    await runtime.write_file(project, "f.txt", b"first version")
    await sh(project, "chmod 600 f.txt")
    await runtime.write_file(project, "f.txt", b"second")
    assert await runtime.read_file(project, "f.txt", 100) == b"second"
    assert (await sh(project, "stat -c %a f.txt")).stdout == "600\n"


def deleted_files_open(uid: int) -> list[str]:
    """What the processes running as `uid` hold open of files that are gone."""
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if not entry.name.isdigit() or entry.stat().st_uid != uid:
                continue
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.endswith(" (deleted)") and "memfd:" not in target:
                        found.append(target)
    return found


async def test_a_replaced_file_is_let_go(runtime: LocalRuntime, project: ProjectSpec) -> None:
    """The agent answers before it closes the file a write replaced (freeing it is the file
    system's slowest part): it closes it all the same."""
    for n, size in enumerate([MB, 10, 200 * 1024, 5, MB]):
        await runtime.write_file(project, "f.bin", bytes([n]) * size)
        assert await runtime.read_file(project, "f.bin", 2 * MB) == bytes([n]) * size
    await asyncio.sleep(0.1)
    assert deleted_files_open(project.uid) == []


async def test_empty_file(runtime: LocalRuntime, project: ProjectSpec) -> None:
    await runtime.write_file(project, "empty", b"")
    assert await runtime.read_file(project, "empty", 0) == b""


async def test_missing_file(runtime: LocalRuntime, project: ProjectSpec) -> None:
    with pytest.raises(FileFailure) as info:
        await runtime.read_file(project, "missing.txt", 100)
    assert info.value.code == "ENOENT"
    assert str(info.value) == (
        f"ENOENT: no such file or directory, open '/projects/{project.project_id}/missing.txt'"
    )


async def test_directory(runtime: LocalRuntime, project: ProjectSpec, sh: Shell) -> None:
    await sh(project, "mkdir adir")
    home = f"/projects/{project.project_id}"
    with pytest.raises(FileFailure) as read:
        await runtime.read_file(project, "adir", 100)
    assert str(read.value) == f"EISDIR: illegal operation on a directory, read '{home}/adir'"
    with pytest.raises(FileFailure) as write:
        await runtime.write_file(project, "adir", b"x")
    assert write.value.code == "EISDIR"


async def test_too_large(runtime: LocalRuntime, project: ProjectSpec) -> None:
    await runtime.write_file(project, "big.txt", b"x" * 11)
    assert await runtime.read_file(project, "big.txt", 11) == b"x" * 11
    with pytest.raises(FileFailure) as info:
        await runtime.read_file(project, "big.txt", 10)
    assert info.value.code == "EFBIG"
    assert info.value.size == 11


async def test_unreadable_file(runtime: LocalRuntime, project: ProjectSpec, sh: Shell) -> None:
    await sh(project, "echo x > locked; chmod 000 locked")
    with pytest.raises(FileFailure) as info:
        await runtime.read_file(project, "locked", 100)
    assert str(info.value).startswith("EACCES: permission denied, open '")


async def test_dot_dot_and_absolute_paths(runtime: LocalRuntime, project: ProjectSpec) -> None:
    hostname = host_read("/etc/hostname")
    assert await runtime.read_file(project, "../../etc/hostname", 1000) == hostname
    assert await runtime.read_file(project, "/etc/hostname", 1000) == hostname
    # '..' out of the home lands in the sandbox's own private /tmp, never on the host.
    await runtime.write_file(project, "../../tmp/calchub-dotdot.txt", b"inside")
    assert await runtime.read_file(project, "/tmp/calchub-dotdot.txt", 100) == b"inside"
    assert not host_exists("/tmp/calchub-dotdot.txt")
    for path in ("/etc/evil", "../evil", "/usr/evil"):
        with pytest.raises(FileFailure) as info:
            await runtime.write_file(project, path, b"x")
        assert info.value.code == "EROFS", path


async def test_symlinks_cannot_leave_the_project(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    a, b = projects.spec(runtime), projects.spec(runtime)
    await runtime.write_file(b, "secret.txt", b"b's secret")
    b_host = host_home(runtime, b)
    await runtime.start(a)
    homes = sorted(runtime.projects_root.iterdir())
    links = {
        "to_b": f"/projects/{b.project_id}",
        "to_b_host": str(b_host),
        "to_secret_host": str(b_host / "secret.txt"),
        "to_root_host": str(runtime.projects_root),
    }
    await sh(a, "; ".join(f"ln -s {target} {name}" for name, target in links.items()))
    for path in ("to_b/secret.txt", "to_b_host/secret.txt", "to_secret_host", "to_root_host"):
        with pytest.raises(FileFailure):
            await runtime.read_file(a, path, 100)
    for path in (
        "to_b/new.txt",
        "to_b_host/new.txt",
        "to_secret_host",
        f"to_root_host/{b.project_id}/x",
    ):
        with contextlib.suppress(FileFailure):
            # A write through a link only ever lands inside A's own view (or fails).
            await runtime.write_file(a, path, b"overwritten")
    assert sorted(p.name for p in b_host.iterdir()) == ["secret.txt"]
    assert (b_host / "secret.txt").read_bytes() == b"b's secret"
    assert sorted(runtime.projects_root.iterdir()) == homes


async def test_a_link_swapped_during_writes_cannot_redirect_them(
    runtime: LocalRuntime, projects: Projects, sh: Shell
) -> None:
    a, b = projects.spec(runtime), projects.spec(runtime)
    await runtime.start(b)
    b_host = host_home(runtime, b)
    swapper = sh(
        a,
        f"end=$((SECONDS+4)); while [ $SECONDS -lt $end ]; do "
        f"rm -rf d; mkdir d; rm -rf d; ln -s /projects/{b.project_id} d; rm -f d; "
        f"ln -s {b_host} d; rm -f d; done",
        timeout=10,
    )
    swapping = asyncio.ensure_future(swapper)
    for i in range(150):
        with contextlib.suppress(RuntimeFailure):
            await runtime.write_file(a, f"d/f{i}.txt", b"x")
    await swapping
    assert list(b_host.iterdir()) == []


async def test_disk_quota(runtime: LocalRuntime, projects: Projects) -> None:
    spec = projects.spec(runtime, Quota(disk_mb=1))
    await runtime.write_file(spec, "one", b"1" * (600 * 1024))
    assert await runtime.disk_usage(spec) >= 600 * 1024
    with pytest.raises(QuotaExceeded) as info:
        await runtime.write_file(spec, "two", b"2" * (600 * 1024))
    assert str(info.value) == "disk quota exceeded: project uses 1 MB of 1 MB"
    assert info.value.needed_bytes == 600 * 1024
    with pytest.raises(FileFailure):
        await runtime.read_file(spec, "two", MB)
    # Replacing a file only needs room for the difference, however quickly it follows the
    # write before it.
    for n in range(5):
        await runtime.write_file(spec, "one", bytes([n]) * (600 * 1024))


async def test_disk_usage(runtime: LocalRuntime, project: ProjectSpec, sh: Shell) -> None:
    before = await runtime.disk_usage(project)
    await runtime.write_file(project, "blob", b"z" * MB)
    after = await runtime.disk_usage(project)
    assert MB <= after - before <= MB + 64 * 1024
    await sh(project, "ln blob hardlink; ln -s blob symlink")
    assert await runtime.disk_usage(project) - after < 8192
