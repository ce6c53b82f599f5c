"""Homes as disk images (project_disk=image): the kernel holds whatever a project writes to its
disk and inode quota, and everything that touches a home still works. Real loop devices."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from calchub.runtime import (
    ExecRequest,
    ExecResult,
    LocalRuntime,
    ProjectSpec,
    Quota,
    QuotaExceeded,
    RuntimeFailure,
    disk_images,
    mounts,
    procfs,
)
from calchub.runtime.base import MIB
from tests.runtime.conftest import Projects
from tests.runtime.test_copy import copy
from tests.scratch import scratch_folder

QUOTA = Quota(disk_mb=20)


@pytest_asyncio.fixture(scope="module")
async def images() -> AsyncIterator[LocalRuntime]:
    rt = LocalRuntime(scratch_folder("p"), scratch_folder("r"), disk="image")
    check = rt.check_available()
    if not check.available:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and disk images do not work here: {check.reason}")
        pytest.skip(check.reason)
    assert rt.disk_images
    yield rt
    await rt.close()


async def run(rt: LocalRuntime, spec: ProjectSpec, script: str) -> ExecResult:
    return await rt.exec(spec, ExecRequest(script, [], "", 60.0, None, True))


def image_of(rt: LocalRuntime, spec: ProjectSpec) -> Path:
    return disk_images.image_path(rt.projects_root, spec.project_id)


def host(*argv: str, check: bool = True) -> str:
    """Run a program on the host (as root), as an operator or a crash would."""
    done = subprocess.run(argv, capture_output=True, text=True, check=check)
    return done.stdout.strip()


def loops_of(image: Path) -> str:
    return host("losetup", "-n", "-j", str(image))


async def no_loop_device(image: Path) -> bool:
    """Whether `image` has no loop device attached, waiting a little for one on its way
    out: the kernel lets an autoclear device go once the last mount of it is gone, and a
    sandbox's own mounts go a moment after its processes (the next mount waits for that)."""
    for _ in range(100):
        if not loops_of(image):
            return True
        await asyncio.sleep(0.05)
    return False


def home_mount(rt: LocalRuntime, spec: ProjectSpec) -> Path:
    return rt.runtime_root / ".homes" / spec.project_id


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


async def test_a_command_cannot_write_past_the_quota(
    images: LocalRuntime, projects: Projects
) -> None:
    full, other = projects.spec(images, QUOTA), projects.spec(images, QUOTA)
    # The whole quota is there for the project's files.
    free = await run(images, full, "df --output=avail -B1 . | tail -1")
    assert 0.98 * QUOTA.disk_mb * MIB <= int(free.stdout) <= 1.05 * QUOTA.disk_mb * MIB
    three = "for i in 1 2 3; do head -c 15M /dev/zero > big$i; done; du -sk ."
    done = await run(images, full, three)
    assert "No space left on device" in done.stderr
    used_kib = int(done.stdout.split()[0])
    assert used_kib * 1024 <= 1.05 * QUOTA.disk_mb * MIB
    # The host holds no more than the image: the quota and the file system's own needs.
    limits = disk_images.DiskLimits.for_quota(QUOTA.disk_mb)
    assert allocated(image_of(images, full)) <= limits.size_bytes < 1.4 * QUOTA.disk_mb * MIB
    # Through the API, the same full disk is a quota error, not a file error.
    with pytest.raises(QuotaExceeded, match="disk quota exceeded"):
        await images.write_file(full, "more.txt", b"x" * 2 * MIB)
    # Another project is not affected, and freeing space works again.
    await images.write_file(other, "fine.bin", b"y" * 5 * MIB)
    assert await images.read_file(other, "fine.bin", 6 * MIB) == b"y" * 5 * MIB
    assert (await run(images, full, "rm big1 && head -c 1M /dev/zero > small")).exit_code == 0


async def test_an_inode_flood_stops_at_the_inode_limit(
    images: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(images, QUOTA)
    limits = disk_images.DiskLimits.for_quota(QUOTA.disk_mb)
    script = (
        f"for i in $(seq 1 {limits.inodes * 2}); do : > f$i 2>/dev/null || break; done; "
        "ls | wc -l; touch one-more"
    )
    done = await run(images, spec, script)
    assert "No space left on device" in done.stderr
    # mkfs rounds the inodes up to fill whole inode table blocks in each group.
    assert limits.inodes * 0.9 <= int(done.stdout.split()[0]) <= limits.inodes * 1.05
    # /tmp is not part of the home: a full home does not stop the sandbox's own files.
    assert (await run(images, spec, "echo ok > /tmp/t && cat /tmp/t")).stdout == "ok\n"


async def test_a_larger_quota_grows_the_image_at_the_next_start(
    images: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(images, QUOTA)
    await images.write_file(spec, "kept.txt", b"kept")
    size = "df --output=size,itotal -B1M . | tail -1"
    small = (await run(images, spec, size)).stdout.split()
    assert int(small[0]) <= 1.1 * QUOTA.disk_mb
    await images.stop(spec.project_id)
    bigger = ProjectSpec(spec.project_id, spec.uid, Quota(disk_mb=60))
    await images.start(bigger)
    large = (await run(images, bigger, size)).stdout.split()
    assert int(large[0]) > 40 and int(large[1]) > int(small[1])
    assert (await run(images, bigger, "head -c 35M /dev/zero > big")).exit_code == 0
    assert await images.read_file(bigger, "kept.txt", 10) == b"kept"
    # A smaller quota keeps the file system (and the files) as they are.
    await images.stop(spec.project_id)
    await images.start(spec)
    assert await images.read_file(spec, "kept.txt", 10) == b"kept"


async def test_stop_unmounts_and_frees_the_loop_device(
    images: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(images, QUOTA)
    await images.write_file(spec, "a.txt", b"a")
    image = image_of(images, spec)
    mount = home_mount(images, spec)
    assert disk_images.mounted_image(mount) and loops_of(image)
    # Mounted without setuid programs or devices.
    options = (await run(images, spec, "findmnt -n -o OPTIONS -T .")).stdout
    assert "nosuid" in options and "nodev" in options
    assert (await run(images, spec, "ls -A")).stdout == "a.txt\n"  # no lost+found
    await images.stop(spec.project_id)
    assert not mount.exists() and await no_loop_device(image)
    assert oct(image.stat().st_mode & 0o777) == "0o600" and image.stat().st_uid == 0
    # The home is the image: no folder beside it.
    assert not (images.projects_root / spec.project_id).exists()


async def test_crash_leftovers_are_cleared_at_start(
    images: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(images, QUOTA)
    await images.write_file(spec, "a.txt", b"a")
    await images.stop(spec.project_id)
    image, mount = image_of(images, spec), home_mount(images, spec)
    # A loop device attached to the image and nothing mounted from it, and a mount left
    # on the mount point: what a hub killed at the wrong moment leaves.
    stray = host("losetup", "-f", "--show", str(image))
    try:
        await images.start(spec)
    finally:
        host("losetup", "-d", stray, check=False)
    assert await images.read_file(spec, "a.txt", 10) == b"a"
    await images.stop(spec.project_id)
    mount.mkdir(mode=0o700, parents=True)
    host("mount", "-o", "loop", str(image), str(mount))
    await images.start(spec)
    assert await images.read_file(spec, "a.txt", 10) == b"a"
    await images.stop(spec.project_id)
    assert await no_loop_device(image)


async def test_a_folder_home_moves_into_an_image_on_start(
    images: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(images, QUOTA)
    folder = images.projects_root / spec.project_id
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "notes.txt").write_text("mine")
    os.link(folder / "sub" / "notes.txt", folder / "hard")
    for path in (folder, folder / "sub", folder / "sub" / "notes.txt"):
        os.chown(path, spec.uid, spec.uid)
    await images.start(spec)
    assert not folder.exists() and image_of(images, spec).is_file()
    done = await run(images, spec, "cat sub/notes.txt; echo; stat -c '%u %h' sub/notes.txt")
    assert done.stdout.split() == ["mine", str(spec.uid), "2"]
    assert disk_images.mounted_image(home_mount(images, spec))


async def test_a_folder_home_larger_than_its_quota_stays_a_folder(
    images: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(images, QUOTA)
    folder = images.projects_root / spec.project_id
    folder.mkdir(mode=0o700)
    (folder / "big").write_bytes(b"\0" * 1024 + os.urandom(25 * MIB))
    await images.start(spec)
    assert (await run(images, spec, "stat -c %s big")).stdout.strip() == str(25 * MIB + 1024)
    assert not image_of(images, spec).exists()
    assert not disk_images.mounted_image(home_mount(images, spec))


async def test_an_image_home_counts_what_a_walk_cannot_see(
    images: LocalRuntime, projects: Projects
) -> None:
    """The usage that writes and copies check is the image's own (statvfs), so files in a
    folder the project made unreadable to itself still count, and a write that would pass
    the quota on top of them is refused."""
    spec = projects.spec(images, QUOTA)
    hide = "mkdir hidden && head -c 12M /dev/urandom > hidden/f && chmod 000 hidden"
    assert (await run(images, spec, hide)).exit_code == 0
    used = await images.disk_usage(spec)
    assert 12 * MIB <= used < 13 * MIB
    with pytest.raises(QuotaExceeded, match="project uses 13 MB of 20 MB"):
        await images.write_file(spec, "more.bin", b"m" * 9 * MIB)
    assert (await run(images, spec, "chmod 700 hidden && rm -r hidden")).exit_code == 0
    assert await images.disk_usage(spec) < MIB
    await images.write_file(spec, "more.bin", b"m" * 9 * MIB)


async def test_files_copies_and_adoption_work_on_images(
    images: LocalRuntime, projects: Projects
) -> None:
    src, dst = projects.spec(images, Quota(disk_mb=60)), projects.spec(images, QUOTA)
    await images.write_file(src, "dir/a.txt", b"a")
    await copy(images, src, "dir", dst, "copied")
    assert await images.read_file(dst, "copied/a.txt", 10) == b"a"
    listing = await images.list_directory(dst, "copied", hidden=False)
    assert [entry.name for entry in listing.entries] == ["a.txt"]
    await images.write_file(src, "big.bin", b"z" * 25 * MIB)
    with pytest.raises(QuotaExceeded):
        await copy(images, src, "big.bin", dst, "big.bin")
    # Another runtime on the machine (a restarted hub) adopts the running project: its
    # mount stays, and stopping it there unmounts it.
    other = LocalRuntime(images.projects_root, images.runtime_root, disk="image")
    try:
        await other.start(dst)
        assert (await run(other, dst, "cat copied/a.txt")).stdout == "a"
        await other.stop(dst.project_id)
    finally:
        await other.close()
    assert await no_loop_device(image_of(images, dst))


async def test_backups_read_running_and_stopped_image_homes(
    images: LocalRuntime, projects: Projects
) -> None:
    running, stopped = projects.spec(images, QUOTA), projects.spec(images, QUOTA)
    await images.write_file(running, "r.txt", b"r")
    await images.write_file(stopped, "s.txt", b"s")
    await images.stop(stopped.project_id)
    assert set(images.image_homes()) >= {running.project_id, stopped.project_id}
    async with images.image_home_files(running.project_id) as files:
        assert (files / "r.txt").read_bytes() == b"r"
    async with images.image_home_files(stopped.project_id) as files:
        assert (files / "s.txt").read_bytes() == b"s"
        assert files.stat().st_uid == stopped.uid
    assert not mounts.is_mount_point(home_mount(images, stopped))
    assert await no_loop_device(image_of(images, stopped))
    assert (await images.status(running.project_id)).running
    # A folder with files beside an image is the home (a restore, an interrupted move):
    # the backup copies it as a folder, not the image.
    restored = images.projects_root / stopped.project_id
    restored.mkdir()
    (restored / "newer.txt").write_text("newer")
    try:
        assert stopped.project_id not in images.image_homes()
    finally:
        shutil.rmtree(restored)


async def test_a_stopped_image_home_is_read_without_starting_it(
    images: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(images, QUOTA)
    await images.write_file(spec, "d/a.txt", b"peeked")
    await images.stop(spec.project_id)
    image = image_of(images, spec)
    size = image.stat().st_size
    bigger = ProjectSpec(spec.project_id, spec.uid, Quota(disk_mb=60))
    assert (await images.peek_file(bigger, "d/a.txt", 100)).data == b"peeked"
    listing = await images.peek_directory(bigger, "d", hidden=False)
    assert [entry.name for entry in listing.entries] == ["a.txt"]
    # A read neither starts the project, nor grows its image, nor leaves a mount.
    assert not (await images.status(spec.project_id)).running
    assert image.stat().st_size == size
    assert not home_mount(images, spec).exists() and await no_loop_device(image)
    assert not (images.projects_root / spec.project_id).exists()


async def test_an_image_still_in_use_is_never_mounted_twice(
    images: LocalRuntime, projects: Projects, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = projects.spec(images, QUOTA)
    await images.write_file(spec, "a.txt", b"a")
    await images.stop(spec.project_id)
    image = image_of(images, spec)
    # The image's file system lazily unmounted while something still holds a file in it:
    # it lives on, and a second mount of the image beside it would corrupt both.
    elsewhere = scratch_folder("m")
    host("mount", "-o", "loop", str(image), str(elsewhere))
    held = os.open(elsewhere / "a.txt", os.O_RDONLY)
    try:
        host("umount", "-l", str(elsewhere))
        monkeypatch.setattr(disk_images, "LOOP_RELEASE_WAIT_S", 0.2)
        with pytest.raises(RuntimeFailure, match="still in use"):
            await images.start(spec)
    finally:
        os.close(held)
    await images.start(spec)
    assert await images.read_file(spec, "a.txt", 10) == b"a"


def test_the_mode_falls_back_or_refuses_where_images_do_not_work(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(disk_images, "TOOLS", (("mkfs.nothing", "e2fsprogs-nothing"),))
    required = LocalRuntime(scratch_folder("p"), scratch_folder("r"), disk="image")
    check = required.check_available()
    assert not check.available and not required.disk_images
    assert check.reason == (
        "project_disk is image, but mkfs.nothing is not installed "
        "(Debian: apt-get install e2fsprogs-nothing)"
    )
    automatic = LocalRuntime(scratch_folder("p"), scratch_folder("r"), disk="auto")
    assert automatic.check_available().available and not automatic.disk_images
    assert "PROJECT DISK QUOTAS DO NOT BIND COMMANDS" in caplog.text
    assert "mkfs.nothing is not installed" in caplog.text


async def test_image_homes_stay_images_when_the_mode_changes_to_none(
    images: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(images, QUOTA)
    await images.write_file(spec, "a.txt", b"a")
    await images.stop(spec.project_id)
    folders = LocalRuntime(images.projects_root, images.runtime_root, disk="none")
    try:
        assert folders.check_available().available and not folders.disk_images
        await folders.start(spec)
        assert await folders.read_file(spec, "a.txt", 10) == b"a"
        await folders.stop(spec.project_id)
    finally:
        await folders.close()
    assert await no_loop_device(image_of(images, spec))


async def test_a_project_that_ended_unwatched_is_cleaned_up_at_server_start(
    images: LocalRuntime, projects: Projects
) -> None:
    spec = projects.spec(images, QUOTA)
    # Started by a hub that then went away: nothing watches the sandbox any more.
    gone = LocalRuntime(images.projects_root, images.runtime_root, disk="image")
    assert gone.check_available().available
    await gone.start(spec)
    await gone.close()
    pid = (await images.status(spec.project_id)).pid
    assert pid is not None
    procfs.kill(procfs.tree(pid))
    await asyncio.to_thread(os.waitpid, pid, 0)  # this process launched it: reap it
    assert not (await images.status(spec.project_id)).running
    mount, image = home_mount(images, spec), image_of(images, spec)
    assert disk_images.mounted_image(mount) and loops_of(image)
    assert images.check() is None
    await images.clean_leftovers()
    assert not mount.exists() and await no_loop_device(image)
    assert not (images.runtime_root / spec.project_id).exists()
    # The next start is as usual.
    await images.start(spec)
    assert (await run(images, spec, "echo ok")).stdout == "ok\n"


async def test_an_image_that_does_not_mount_leaves_no_loop_device(
    images: LocalRuntime, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.ext4"
    broken.write_bytes(b"not a file system" * 65536)
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(RuntimeFailure, match="mounting the project's disk image failed"):
        disk_images._mount(broken, target)
    assert not mounts.is_mount_point(target)
    assert await no_loop_device(broken)
