"""Project homes as file system images, so that the kernel holds every project to its disk
and inode quota, whatever writes: commands, Jupyter kernels, copies, the API.

Each home is an ext4 file system in a sparse file, `projects_root/.images/<id>.ext4` (root
only, 0600), made the size of the project's disk quota with one inode per
BYTES_PER_INODE. While the project runs, root mounts it (loop device, nosuid, nodev) on the
home's mount point, where bubblewrap binds it into the sandbox as before. A write past the
quota fails inside the project with ENOSPC, as on a full disk; so does creating a file once
the inodes are used up.

The loop device is attached with autoclear (as mount's `-o loop` does, but by its ioctls:
see calchub.runtime.loop_devices): unmounting the home detaches it, and a crash leaves at
most a mount, which the next start of the project removes.

A larger quota grows the image (and its inodes, which keep their ratio) at the next start,
before it is mounted. A smaller quota does not shrink it: shrinking risks the project's
files for little gain. The API's own quota checks (writes, copies) follow the new quota at
once; the file system keeps its size.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from calchub.runtime import loop_devices, mounts
from calchub.runtime.base import MIB, RuntimeFailure

log = logging.getLogger(__name__)

IMAGES_FOLDER = ".images"
SUFFIX = ".ext4"
PARTIAL = ".partial"  # an image being made from a folder home
CONVERTED = ".converted"  # a folder home once its image took over, until it is removed
BYTES_PER_INODE = 16 * 1024  # ext4's usual ratio
BLOCKS_PER_GROUP = 2048  # 8 MiB of 4 KiB blocks
INODE_BYTES = 256
MIN_BYTES = 8 * MIB  # below this ext4 has no room for its journal
MOUNT_OPTIONS = "loop,nosuid,nodev"
TOOL_TIMEOUT_S = 600.0
LOOP_RELEASE_WAIT_S = 5.0
# program and the Debian package that ships it
TOOLS = (
    ("mkfs.ext4", "e2fsprogs"),
    ("resize2fs", "e2fsprogs"),
    ("e2fsck", "e2fsprogs"),
    ("losetup", "mount"),
    ("mount", "mount"),
)
_SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class DiskLimits:
    """The size of a project's file system and the number of files it may hold."""

    size_bytes: int  # of the image: room for the quota's files and the file system's own
    inodes: int
    journal_mb: int

    @classmethod
    def for_quota(cls, disk_mb: int) -> DiskLimits:
        """The quota is what the project's files may take; the image adds what ext4 needs
        for itself (journal, inode tables, bitmaps), so that the full quota is usable."""
        files = max(MIN_BYTES, disk_mb * MIB)
        inodes = files // BYTES_PER_INODE
        journal_mb = min(128, max(4, files // MIB // 64))
        overhead = journal_mb * MIB + inodes * INODE_BYTES + files // 32 + MIB
        size = -(-(files + overhead) // MIB) * MIB
        return cls(size_bytes=size, inodes=inodes, journal_mb=journal_mb)


def image_path(projects_root: Path, project_id: str) -> Path:
    return projects_root / IMAGES_FOLDER / f"{project_id}{SUFFIX}"


def _images_folder(projects_root: Path) -> Path:
    folder = projects_root / IMAGES_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _run(argv: list[str], what: str, *, success: tuple[int, ...] = (0,)) -> str:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_S,
            env={"PATH": _SBIN_PATH, "LANG": "C.UTF-8"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeFailure(f"{what} failed: {exc}") from None
    if done.returncode not in success:
        detail = (done.stderr or done.stdout).strip() or f"exit {done.returncode}"
        raise RuntimeFailure(f"{what} failed: {detail}")
    return done.stdout


def missing_tool() -> str | None:
    for tool, package in TOOLS:
        if shutil.which(tool, path=_SBIN_PATH) is None:
            return f"{tool} is not installed (Debian: apt-get install {package})"
    return None


@functools.cache
def problem(scratch: Path) -> str | None:
    """Why homes cannot be images here (None: they can): root, the tools, and a trial
    image that really mounts, made in `scratch` (a root-only folder)."""
    if os.geteuid() != 0:
        return "disk images need root (to attach loop devices and mount them)"
    if reason := missing_tool():
        return reason
    if not os.path.exists("/dev/loop-control"):
        return "this machine has no loop devices (/dev/loop-control is missing)"
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".disk-check-") as folder:
        image, target = Path(folder) / "trial.ext4", Path(folder) / "mnt"
        target.mkdir()
        try:
            create(image, DiskLimits.for_quota(0), os.geteuid())
            _mount(image, target)
            mounts.unmount(target)
        except (RuntimeFailure, OSError) as exc:
            with contextlib.suppress(OSError):
                mounts.unmount(target)
            return f"a trial disk image could not be mounted: {exc}"
    return None


def create(image: Path, limits: DiskLimits, uid: int) -> None:
    """A new, empty file system in a sparse file, its root folder owned by `uid`."""
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.ftruncate(fd, limits.size_bytes)
    finally:
        os.close(fd)
    try:
        # No blocks reserved for root (nothing in a project runs as root); lazy
        # initialisation keeps making a large image quick. Inodes come per block group, so
        # small groups make growing the image add inodes in small steps too.
        _run(
            [
                "mkfs.ext4", "-q", "-F", "-b", "4096", "-g", str(BLOCKS_PER_GROUP), "-m", "0",
                "-N", str(limits.inodes), "-I", str(INODE_BYTES),
                "-J", f"size={limits.journal_mb}",
                "-E", f"root_owner={uid}:{uid},nodiscard,lazy_itable_init=1",
                str(image),
            ],
            "making the project's disk image",
        )  # fmt: skip
    except BaseException:
        image.unlink(missing_ok=True)
        raise


def _mount(image: Path, target: Path) -> None:
    _release_loops(image)
    try:
        with loop_devices.attached(image) as device:
            mounts.mount_device(device, target, "ext4")
        return
    except loop_devices.Unsupported:
        pass  # an older kernel: mount(8) knows its ways
    except OSError as exc:
        detail = exc.strerror or str(exc)
        raise RuntimeFailure(f"mounting the project's disk image failed: {detail}") from None
    _run(
        ["mount", "-t", "ext4", "-o", MOUNT_OPTIONS, str(image), str(target)],
        "mounting the project's disk image",
    )


def _loops_of(image: Path) -> list[str]:
    """The loop devices attached to `image`, from sysfs (no losetup process per start)."""
    wanted = os.path.realpath(image)
    found = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        with contextlib.suppress(OSError):
            if backing.read_text().rstrip("\n") == wanted:
                found.append(f"/dev/{backing.parent.parent.name}")
    return found


def _release_loops(image: Path) -> None:
    """Detach loop devices still attached to `image` that nothing mounts (a crash between
    attaching and mounting, or an autoclear the kernel has not finished): mounting would
    otherwise refuse the image as in use."""
    stale = _loops_of(image)
    if not stale:
        return
    mounted = mounts.mounted_sources()
    for device in stale:
        if device in mounted:
            raise RuntimeFailure(f"the project's disk image is still mounted from {device}")
        with contextlib.suppress(RuntimeFailure):
            _run(["losetup", "-d", device], "detaching a stale loop device")
            log.info("detached stale loop device %s of %s", device, image)
    # The kernel lets a device go once nothing holds it (a lazily unmounted file system
    # still in use holds it): until then the image must not be mounted a second time.
    deadline = time.monotonic() + LOOP_RELEASE_WAIT_S
    while _loops_of(image):
        if time.monotonic() > deadline:
            raise RuntimeFailure("the project's disk is still in use; try again shortly")
        time.sleep(0.02)


def attach(image: Path, target: Path, limits: DiskLimits, uid: int) -> None:
    """Mount the project's image on `target` (an empty folder), making it if there is none
    and growing it to `limits` if it is smaller."""
    _images_folder(image.parent.parent)
    if not image.exists():
        create(image, limits, uid)
    if image.stat().st_size < limits.size_bytes:
        _grow(image, limits)
    _mount(image, target)
    try:
        _settle_root(target, uid)
    except BaseException:
        mounts.unmount(target)
        raise


def attach_existing(image: Path, target: Path) -> None:
    """Mount an existing image as it is (no growing, no owner changes): for backups."""
    if not image.is_file():
        raise RuntimeFailure(f"the project's disk image {image.name} is missing")
    _mount(image, target)


def image_ids(projects_root: Path) -> list[str]:
    """The projects whose homes are disk images."""
    try:
        names = os.listdir(projects_root / IMAGES_FOLDER)
    except FileNotFoundError:
        return []
    return sorted(name[: -len(SUFFIX)] for name in names if name.endswith(SUFFIX))


def _grow(image: Path, limits: DiskLimits) -> None:
    """Grow the file system to `limits` before it is mounted (growing online needs
    CAP_SYS_RESOURCE, which containers often lack). A failure leaves the old size: the
    project still starts, with the disk it had."""
    try:
        os.truncate(image, limits.size_bytes)
        # resize2fs insists on a file system checked since it was last mounted.
        # 1 and 2: errors found and corrected (such as a missing lost+found).
        check = ["e2fsck", "-f", "-p", str(image)]
        _run(check, "checking the project's disk image", success=(0, 1, 2))
        _run(["resize2fs", str(image)], "growing the project's disk image")
        log.info("grew the disk image %s to %d MB", image, limits.size_bytes // MIB)
    except (RuntimeFailure, OSError) as exc:
        log.error("%s: %s", image, exc)


def _settle_root(target: Path, uid: int) -> None:
    """The home's root belongs to the project, private to it; mkfs's lost+found, which
    only root could use, is not part of the home (e2fsck makes one when it needs it)."""
    with contextlib.suppress(FileNotFoundError, OSError):
        lost = target / "lost+found"
        if lost.is_dir() and not lost.is_symlink() and lost.stat().st_uid == 0:
            lost.rmdir()
    st = target.lstat()
    if (st.st_uid, st.st_gid) != (uid, uid):
        os.chown(target, uid, uid, follow_symlinks=False)
    os.chmod(target, 0o700, follow_symlinks=False)


def holds_files(folder: Path) -> bool:
    """Whether a folder home has anything in it (only then is it converted)."""
    try:
        with os.scandir(folder) as entries:
            return any(True for _ in entries)
    except (FileNotFoundError, NotADirectoryError):
        return False


def convert(folder: Path, image: Path, target: Path, limits: DiskLimits, uid: int) -> bool:
    """Move a folder home into a new image mounted on `target`; False (folder untouched,
    nothing mounted) when its files do not fit in the quota.

    The folder stays until its image is in place, and goes by one rename after that, so a
    crash at any point leaves either the folder (converted again at the next start) or
    the image as the home, never neither."""
    partial = image.with_name(image.name + PARTIAL)
    converted = image.with_name(image.stem + CONVERTED)
    partial.unlink(missing_ok=True)
    _images_folder(image.parent.parent)
    create(partial, limits, uid)
    try:
        _mount(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    try:
        _settle_root(target, uid)
        rsync = ["rsync", "-aH", "--numeric-ids", "--sparse", f"{folder}/", f"{target}/"]
        _run(rsync, "copying the home into its disk image")
    except RuntimeFailure as exc:
        mounts.unmount(target)
        partial.unlink(missing_ok=True)
        log.warning(
            "project home %s stays a plain folder, without a binding disk quota: it could "
            "not move into a %d MB disk image (%s)",
            folder, limits.size_bytes // MIB, exc,
        )  # fmt: skip
        return False
    except BaseException:
        mounts.unmount(target)
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, image)
    remove_leftovers(converted)
    os.replace(folder, converted)
    remove_leftovers(converted)
    log.info("project home %s moved into the disk image %s", folder, image)
    return True


def remove_leftovers(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def mounted_image(target: Path) -> bool:
    """Whether `target` holds a mounted disk image (rather than a bound folder)."""
    source = mounts.source_of(target)
    return source is not None and source.startswith("/dev/loop")
